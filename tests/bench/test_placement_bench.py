"""The placement benchmark still runs against the code it measures (a small case)."""

from __future__ import annotations

import pytest

from bench.placement import _app, _case

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("offers", ["same", "varied"])
def test_a_small_case_places_every_task_and_prints_its_row(offers: str) -> None:
    apps = {a.key: a for a in (_app(i) for i in range(10))}
    row = _case(apps, 4, 2, 3, "spread", offers).split()
    assert row[:6] == ["4", "2", "3", "spread", offers, "8"]
    assert row[-1] == "8"  # placed
