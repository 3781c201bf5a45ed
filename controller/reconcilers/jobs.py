"""Reconcile one CloudJob: bring the scheduling core in line with the job's desired state.

`desired_job` (pure) reads a job object's spec and its app's availability into a
`DesiredJob`; `apply_job` makes the core hold that — a valid job whose app is present
is scheduled (the core leaves a job of a disabled job or app unscheduled, with its
definition stored); a job whose app is missing or invalid is unscheduled. A job whose
spec is invalid is never written: nothing of it reaches ZooKeeper or Mesos, and if
the core holds a valid definition from before the bad edit, that one stays (reported
as Degraded) until the spec is fixed — only `spec.disabled: true` is honoured on it.
Both are idempotent: running them again with the same desired state changes nothing,
which is what lets the periodic refresh repair drift (state wiped while the controller
runs).

`trigger_decision` (pure) says whether the `cloudjob.io/trigger` annotation asks for a
run that has not been carried out yet; `refresh_job_status` builds the status from the
core's `job_runtime`. Called by `controller.handlers` only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from controller import naming
from controller.definitions import JobDefinition
from controller.operations import SchedulingError, SchedulingOperations
from controller.reconcilers.specs import InvalidSpec, parse_job
from controller.reconcilers.status import (
    AppAvailability,
    Counted,
    JobFacts,
    count_runs,
    job_status,
    parse_job_status,
    status_patch,
)

TRIGGER_ANNOTATION = "cloudjob.io/trigger"

AppLookup = Callable[[str, str], AppAvailability]
"""(namespace, app name) → what that app is now."""


@dataclass(frozen=True)
class DesiredJob:
    key: str
    facts: JobFacts
    definition: JobDefinition | None

    @property
    def holdable(self) -> bool:
        """Whether the core should hold the job at all (scheduled, or stored as disabled)."""
        return self.definition is not None and self._app_present

    @property
    def keeps_last_valid(self) -> bool:
        """The spec is invalid but its app is there: whatever valid definition the core
        holds stays as it is (a typo in an edit does not stop a running job)."""
        return self.definition is None and self._app_present

    @property
    def _app_present(self) -> bool:
        return self.facts.app in (AppAvailability.AVAILABLE, AppAvailability.DISABLED)


def desired_job(
    namespace: str,
    name: str,
    generation: int | None,
    spec: Mapping[str, Any],
    apps: AppLookup,
) -> DesiredJob:
    key = naming.object_key(namespace, name)
    raw_app = spec.get("appName")
    app_name = raw_app if isinstance(raw_app, str) and not naming.name_error("", raw_app) else None
    try:
        definition: JobDefinition | None = parse_job(namespace, name, spec)
        problems: tuple[str, ...] = ()
    except InvalidSpec as invalid:
        definition, problems = None, invalid.problems
    app = apps(namespace, app_name) if app_name is not None else AppAvailability.MISSING
    facts = JobFacts(
        namespace=namespace,
        generation=generation,
        problems=problems,
        app_name=app_name,
        app=app,
        disabled=bool(definition.spec.disabled if definition else spec.get("disabled") is True),
        daemon=bool(definition and definition.is_daemon),
    )
    return DesiredJob(key=key, facts=facts, definition=definition)


async def apply_job(ops: SchedulingOperations, desired: DesiredJob) -> None:
    """Schedule a valid job; leave the last valid definition of an invalid one alone (only
    `spec.disabled: true` is honoured, so that it can be stopped); unschedule the rest."""
    if desired.holdable:
        assert desired.definition is not None
        await ops.schedule(desired.definition)
    elif desired.keeps_last_valid:
        if desired.facts.disabled and desired.key in ops.job_keys():
            await ops.disable_job(desired.key)
    else:
        await ops.unschedule(desired.key)


def holds_last_valid(ops: SchedulingOperations, desired: DesiredJob) -> bool:
    """Whether the core holds a definition of this invalid job (its last valid one)."""
    if not desired.keeps_last_valid:
        return False
    try:
        return desired.key in ops.job_keys()
    except SchedulingError:
        return False


class TriggerVerdict(StrEnum):
    NONE = "None"
    RUN = "Run"
    REFUSE = "Refuse"


@dataclass(frozen=True)
class TriggerDecision:
    verdict: TriggerVerdict
    value: str | None = None
    reason: str = ""


def trigger_decision(
    annotations: Mapping[str, str],
    handled: str | None,
    desired: DesiredJob,
) -> TriggerDecision:
    """Each new value of the trigger annotation asks for exactly one run."""
    value = annotations.get(TRIGGER_ANNOTATION)
    if value is None or value == handled:
        return TriggerDecision(TriggerVerdict.NONE)
    if desired.definition is None:
        return TriggerDecision(TriggerVerdict.REFUSE, value, "the spec is invalid")
    if desired.facts.app is not AppAvailability.AVAILABLE:
        return TriggerDecision(
            TriggerVerdict.REFUSE, value, f"its app is {desired.facts.app.value.lower()}"
        )
    if desired.facts.disabled:
        return TriggerDecision(
            TriggerVerdict.REFUSE, value, "the job is disabled; set spec.disabled to false first"
        )
    return TriggerDecision(TriggerVerdict.RUN, value)


def refresh_job_status(
    ops: SchedulingOperations,
    desired: DesiredJob,
    current: Mapping[str, Any] | None,
    *,
    last_trigger: str | None,
    baseline: Counted | None,
    triggered: datetime | None = None,
    now: datetime | None = None,
) -> tuple[dict[str, Any] | None, Counted]:
    """The status patch that makes the job's status match the core's view (None: no
    change), and the run counters to pass back as `baseline` next time."""
    previous = parse_job_status(current)
    facts = replace(desired.facts, held=holds_last_valid(ops, desired))
    runtime = ops.job_runtime(desired.key) if desired.holdable or facts.held else None
    counted = count_runs(previous, runtime, baseline)
    wanted = job_status(
        previous, facts, runtime, now or datetime.now(UTC), counted, triggered=triggered
    )
    wanted = wanted.model_copy(update={"last_trigger": last_trigger or previous.last_trigger})
    return status_patch(current, wanted), counted
