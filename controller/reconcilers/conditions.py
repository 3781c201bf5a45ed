"""Status conditions by the Kubernetes API conventions: a pure helper to set them.

`set_condition` replaces the condition of one type and moves its
`lastTransitionTime` only when its `status` really changes; reason, message and
observedGeneration are updated in place. Used by the status builders in
`controller.reconcilers.status`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from controller.resources import Condition, ConditionStatus


class ConditionType(StrEnum):
    """Every condition type this controller writes (docs/status.md describes each)."""

    READY = "Ready"
    SCHEDULED = "Scheduled"
    APP_AVAILABLE = "AppAvailable"
    DISABLED = "Disabled"
    CANNOT_PLACE = "CannotPlace"
    DEGRADED = "Degraded"


def find_condition(conditions: Sequence[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def set_condition(
    conditions: Sequence[Condition],
    *,
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    now: datetime,
    observed_generation: int | None,
) -> list[Condition]:
    """A copy of `conditions` with the `type_` condition set; the order of types is kept
    and a new type goes last."""
    previous = find_condition(conditions, type_)
    unchanged = previous is not None and previous.status == status
    updated = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=previous.last_transition_time if previous and unchanged else now,
        observed_generation=observed_generation,
    )
    if previous is None:
        return [*conditions, updated]
    return [updated if c.type == type_ else c for c in conditions]


def is_true(conditions: Sequence[Condition], type_: str) -> bool:
    found = find_condition(conditions, type_)
    return found is not None and found.status is ConditionStatus.TRUE
