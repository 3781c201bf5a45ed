"""Reconcile one CloudApp: the scheduling core holds the app as its spec says.

A valid app is stored with `put_app` (the core disables or enables it, and so
unschedules or reschedules its jobs, per `spec.disabled`); a deleted app is removed
with `remove_app` (its executors get STOP and its jobs are unscheduled, but the jobs
themselves stay: they report the missing app until it returns). An app whose spec is
invalid is never handed to the core. `app_availability` is how a job sees its app.
Idempotent; called by `controller.handlers` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from controller import naming
from controller.definitions import AppDefinition
from controller.operations import ReconcileKind, SchedulingOperations
from controller.reconcilers.specs import InvalidSpec, parse_app
from controller.reconcilers.status import (
    AppAvailability,
    app_status,
    parse_app_status,
    status_patch,
)

RECONCILE_ANNOTATION = "cloudjob.io/reconcile"
IMPLICIT_PREFIX = "implicit"


@dataclass(frozen=True)
class DesiredApp:
    key: str
    generation: int | None
    definition: AppDefinition | None
    problems: tuple[str, ...]

    @property
    def disabled(self) -> bool:
        return self.definition is not None and self.definition.spec.disabled


@dataclass(frozen=True)
class AppSummary:
    """What the app index keeps of each CloudApp for its jobs to look at."""

    valid: bool
    disabled: bool
    deleting: bool


def desired_app(
    namespace: str, name: str, generation: int | None, spec: Mapping[str, Any]
) -> DesiredApp:
    try:
        definition: AppDefinition | None = parse_app(namespace, name, spec)
        problems: tuple[str, ...] = ()
    except InvalidSpec as invalid:
        definition, problems = None, invalid.problems
    return DesiredApp(
        key=naming.object_key(namespace, name),
        generation=generation,
        definition=definition,
        problems=problems,
    )


def summarize(desired: DesiredApp, *, deleting: bool) -> AppSummary:
    return AppSummary(
        valid=desired.definition is not None, disabled=desired.disabled, deleting=deleting
    )


def app_availability(summary: AppSummary | None) -> AppAvailability:
    """A deleting app counts as missing: its jobs must not be scheduled onto it again."""
    if summary is None or summary.deleting:
        return AppAvailability.MISSING
    if not summary.valid:
        return AppAvailability.INVALID
    return AppAvailability.DISABLED if summary.disabled else AppAvailability.AVAILABLE


def reconcile_request(
    annotations: Mapping[str, str], handled: str | None
) -> tuple[ReconcileKind, str] | None:
    """A new value of the reconcile annotation asks for one reconciliation: implicit
    when the value starts with "implicit", else explicit (the app's tasks)."""
    value = annotations.get(RECONCILE_ANNOTATION)
    if value is None or value == handled:
        return None
    kind = ReconcileKind.IMPLICIT if value.startswith(IMPLICIT_PREFIX) else ReconcileKind.EXPLICIT
    return kind, value


async def apply_app(ops: SchedulingOperations, desired: DesiredApp) -> None:
    if desired.definition is not None:
        await ops.put_app(desired.definition)


async def remove_app(ops: SchedulingOperations, namespace: str, name: str) -> None:
    if naming.name_error("CloudApp", name) is None:
        await ops.remove_app(naming.object_key(namespace, name))


def refresh_app_status(
    ops: SchedulingOperations,
    desired: DesiredApp,
    current: Mapping[str, Any] | None,
    now: datetime | None = None,
    last_reconcile: str | None = None,
) -> dict[str, Any] | None:
    executors = ops.app_executors(desired.key) if desired.definition is not None else []
    wanted = app_status(
        parse_app_status(current),
        generation=desired.generation,
        problems=desired.problems,
        disabled=desired.disabled,
        executors=executors,
        now=now or datetime.now(UTC),
    )
    if last_reconcile is not None:
        wanted = wanted.model_copy(update={"last_reconcile": last_reconcile})
    return status_patch(current, wanted)
