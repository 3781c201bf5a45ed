"""Fixtures of the deployment tests: the loaded Helm chart (the whole-system stack that
runs what the chart renders is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import helm_python
import pytest

from tests.deploy.chart import CHART


@pytest.fixture(scope="session")
def chart() -> Iterator[helm_python.Chart]:
    # Helm logs each symlink it follows (crds/, files/); the tests check those files.
    helm_python.disable_logging()
    with helm_python.Chart.load(CHART) as loaded:
        yield loaded
