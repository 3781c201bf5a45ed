"""The reconcile annotation of a CloudApp: each new value asks for one reconciliation."""

from __future__ import annotations

import pytest

from controller.operations import ReconcileKind
from controller.reconcilers.apps import RECONCILE_ANNOTATION, reconcile_request

pytestmark = pytest.mark.integration


def test_a_new_value_asks_once_and_implicit_values_ask_for_everything() -> None:
    assert reconcile_request({}, None) is None
    assert reconcile_request({RECONCILE_ANNOTATION: "r1"}, None) == (ReconcileKind.EXPLICIT, "r1")
    assert reconcile_request({RECONCILE_ANNOTATION: "r1"}, "r1") is None
    assert reconcile_request({RECONCILE_ANNOTATION: "implicit-2"}, "r1") == (
        ReconcileKind.IMPLICIT,
        "implicit-2",
    )
