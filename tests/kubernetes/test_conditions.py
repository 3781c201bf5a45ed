"""The condition helper moves lastTransitionTime only when a condition's status changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.reconcilers.conditions import find_condition, is_true, set_condition
from controller.resources import ConditionStatus

pytestmark = pytest.mark.unit

T0 = datetime(2025, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def test_a_new_condition_is_appended_with_now_as_transition_time() -> None:
    result = set_condition(
        [],
        type_="Ready",
        status=ConditionStatus.TRUE,
        reason="Scheduled",
        message="m",
        now=T0,
        observed_generation=1,
    )
    assert len(result) == 1
    assert result[0].last_transition_time == T0
    assert result[0].observed_generation == 1
    assert is_true(result, "Ready")


def test_same_status_keeps_the_transition_time_but_updates_reason_message_generation() -> None:
    first = set_condition(
        [],
        type_="Ready",
        status=ConditionStatus.TRUE,
        reason="Scheduled",
        message="a",
        now=T0,
        observed_generation=1,
    )
    second = set_condition(
        first,
        type_="Ready",
        status=ConditionStatus.TRUE,
        reason="Running",
        message="b",
        now=T1,
        observed_generation=2,
    )
    found = find_condition(second, "Ready")
    assert found is not None
    assert found.last_transition_time == T0
    assert (found.reason, found.message, found.observed_generation) == ("Running", "b", 2)


def test_a_status_change_moves_the_transition_time() -> None:
    first = set_condition(
        [],
        type_="Ready",
        status=ConditionStatus.TRUE,
        reason="Scheduled",
        message="",
        now=T0,
        observed_generation=1,
    )
    second = set_condition(
        first,
        type_="Ready",
        status=ConditionStatus.FALSE,
        reason="Disabled",
        message="",
        now=T1,
        observed_generation=1,
    )
    assert second[0].last_transition_time == T1
    assert not is_true(second, "Ready")


def test_other_conditions_and_their_order_are_untouched() -> None:
    conditions = set_condition(
        [],
        type_="A",
        status=ConditionStatus.TRUE,
        reason="r",
        message="",
        now=T0,
        observed_generation=None,
    )
    conditions = set_condition(
        conditions,
        type_="B",
        status=ConditionStatus.FALSE,
        reason="r",
        message="",
        now=T0,
        observed_generation=None,
    )
    updated = set_condition(
        conditions,
        type_="A",
        status=ConditionStatus.FALSE,
        reason="s",
        message="",
        now=T1,
        observed_generation=None,
    )
    assert [c.type for c in updated] == ["A", "B"]
    assert updated[1] == conditions[1]
    assert conditions[0].status is ConditionStatus.TRUE  # the input is not mutated
