"""Pure builders of CloudJob and CloudApp status from what is desired and what runs.

`job_status` combines the verdict on a job's spec and app (`JobFacts`) with the
scheduling core's `JobRuntime` into a `CloudJobStatus`; `app_status` does the same for
an app and its executors. `status_patch` renders a status for the API and returns None
when nothing changed, so the handlers write status only on change. Times are truncated
to whole seconds (Kubernetes `metav1.Time`) so that equal facts render equally.
The condition types, reasons and states are documented in docs/status.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from controller.operations import ExecutorRuntime, JobRun, JobRuntime
from controller.reconcilers.conditions import ConditionType, set_condition
from controller.resources import (
    ActiveShard,
    AppExecutor,
    CloudAppStatus,
    CloudJobStatus,
    Condition,
    ConditionStatus,
    RecentRun,
    ShardOutcome,
)

TRUE, FALSE, UNKNOWN = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN


class AppAvailability(StrEnum):
    """What a job's app is, as the job sees it."""

    AVAILABLE = "Available"
    MISSING = "Missing"
    DISABLED = "Disabled"
    INVALID = "Invalid"


class JobState(StrEnum):
    """The one-word summary in `status.state` (the printer column)."""

    INVALID = "Invalid"
    APP_MISSING = "AppMissing"
    APP_INVALID = "AppInvalid"
    DISABLED = "Disabled"
    UNSCHEDULED = "Unscheduled"
    CANNOT_PLACE = "CannotPlace"
    RUNNING = "Running"
    PENDING = "Pending"
    SCHEDULED = "Scheduled"
    EXPIRED = "Expired"


@dataclass(frozen=True)
class JobFacts:
    """The desired side of a job: its generation, spec problems, app and disabled flags."""

    namespace: str
    generation: int | None
    problems: tuple[str, ...] = ()
    app_name: str | None = None
    app: AppAvailability = AppAvailability.AVAILABLE
    disabled: bool = False
    daemon: bool = False
    held: bool = False
    """The spec is invalid but the scheduler still holds the job's last valid definition."""


def _second(moment: datetime) -> datetime:
    """In UTC (naive times are taken as UTC) and truncated to the second."""
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.replace(microsecond=0)


def whole_seconds(moment: datetime | None) -> datetime | None:
    return None if moment is None else _second(moment)


def parse_job_status(raw: Mapping[str, Any] | None) -> CloudJobStatus:
    """The job's current status as written before; an unreadable status counts as empty."""
    try:
        return CloudJobStatus.model_validate(dict(raw or {}))
    except ValidationError:
        return CloudJobStatus()


def parse_app_status(raw: Mapping[str, Any] | None) -> CloudAppStatus:
    try:
        return CloudAppStatus.model_validate(dict(raw or {}))
    except ValidationError:
        return CloudAppStatus()


def job_state(facts: JobFacts, runtime: JobRuntime | None) -> JobState:
    if facts.problems:
        return JobState.INVALID
    if facts.app is AppAvailability.MISSING:
        return JobState.APP_MISSING
    if facts.app is AppAvailability.INVALID:
        return JobState.APP_INVALID
    if facts.disabled or facts.app is AppAvailability.DISABLED:
        return JobState.DISABLED
    if runtime is None or not runtime.scheduled:
        return JobState.UNSCHEDULED
    if runtime.unplaceable_reason:
        return JobState.CANNOT_PLACE
    if runtime.active_shards:
        return JobState.RUNNING
    if runtime.pending_runs > 0:
        return JobState.PENDING
    if not facts.daemon and runtime.next_fire_time is None:
        return JobState.EXPIRED
    return JobState.SCHEDULED


def _app_condition(facts: JobFacts) -> tuple[ConditionStatus, str, str]:
    where = f"CloudApp '{facts.app_name}' in namespace '{facts.namespace}'"
    if facts.problems and facts.app_name is None:
        return UNKNOWN, "InvalidSpec", "the app is unknown until spec.appName is valid"
    match facts.app:
        case AppAvailability.MISSING:
            return (
                FALSE,
                "AppMissing",
                (f"{where} does not exist; create it, or set spec.appName to an existing CloudApp"),
            )
        case AppAvailability.INVALID:
            return FALSE, "AppInvalid", f"{where} has an invalid spec; see its conditions"
        case AppAvailability.DISABLED:
            return TRUE, "AppDisabled", f"{where} exists but is disabled"
        case _:
            return TRUE, "AppAvailable", f"{where} is available"


def _scheduled_condition(
    facts: JobFacts, state: JobState, runtime: JobRuntime | None
) -> tuple[ConditionStatus, str, str]:
    if state is JobState.INVALID and facts.held and runtime is not None and runtime.scheduled:
        return TRUE, "LastValidSpec", "the last valid definition stays scheduled; see Degraded"
    if state is JobState.INVALID and facts.held and facts.disabled:
        return FALSE, "JobDisabled", "the last valid definition is kept, disabled"
    if state is JobState.INVALID:
        return FALSE, "InvalidSpec", "the spec is invalid; see the Ready condition"
    if state is JobState.APP_MISSING:
        return FALSE, "AppMissing", "not scheduled until its CloudApp exists"
    if state is JobState.APP_INVALID:
        return FALSE, "AppInvalid", "not scheduled until its CloudApp's spec is valid"
    if state is JobState.DISABLED:
        reason = "JobDisabled" if facts.disabled else "AppDisabled"
        return FALSE, reason, "not scheduled while disabled"
    if runtime is None or not runtime.scheduled:
        return FALSE, "NotScheduled", "the scheduler does not hold this job (yet)"
    if facts.daemon:
        return TRUE, "Scheduled", "resident tasks are kept running; they time the cron themselves"
    return TRUE, "Scheduled", "registered with the cron producer"


@dataclass(frozen=True)
class Counted:
    """Run counters as shown in status, and the core's counters they were last matched to.

    The core counts from zero in every process; status keeps counting across processes
    by adding what the core counted since this process first reported the job.
    """

    succeeded: int
    failed: int
    core_succeeded: int
    core_failed: int


def count_runs(
    previous: CloudJobStatus, runtime: JobRuntime | None, baseline: Counted | None
) -> Counted:
    """Status counters now; pass the result back in as `baseline` next time.

    The run history's counters, when the core has them, are exact (the database's),
    and become the baseline the core's own counting continues from if the history
    goes away."""
    if runtime is not None and runtime.history is not None:
        history = runtime.history
        return Counted(history.succeeded, history.failed, runtime.succeeded, runtime.failed)
    if runtime is None:
        if baseline is None:
            return Counted(previous.succeeded, previous.failed, 0, 0)
        return baseline
    if baseline is None or runtime.succeeded < baseline.core_succeeded:
        return Counted(previous.succeeded, previous.failed, runtime.succeeded, runtime.failed)
    return Counted(
        succeeded=baseline.succeeded + runtime.succeeded - baseline.core_succeeded,
        failed=baseline.failed + max(0, runtime.failed - baseline.core_failed),
        core_succeeded=runtime.succeeded,
        core_failed=runtime.failed,
    )


def job_status(
    previous: CloudJobStatus,
    facts: JobFacts,
    runtime: JobRuntime | None,
    now: datetime,
    counted: Counted | None = None,
    triggered: datetime | None = None,
) -> CloudJobStatus:
    """The status a job should show now; counters and past times survive a missing runtime.

    `lastScheduleTime` is the latest of the core's last cron fire, `triggered` (when this
    controller last put a triggered run in the ready queue) and what status showed.

    `counted` (from `count_runs`) gives the counters; without it they stay as they were.
    """
    now = _second(now)
    state = job_state(facts, runtime)
    gen = facts.generation
    conditions: Sequence[Condition] = previous.conditions

    def put(type_: ConditionType, verdict: tuple[ConditionStatus, str, str]) -> None:
        nonlocal conditions
        status, reason, message = verdict
        conditions = set_condition(
            conditions,
            type_=type_,
            status=status,
            reason=reason,
            message=message,
            now=now,
            observed_generation=gen,
        )

    ready = state in (JobState.SCHEDULED, JobState.RUNNING, JobState.PENDING)
    if facts.problems:
        kept = "; the last valid definition is kept (see Degraded)" if facts.held else ""
        put(ConditionType.READY, (FALSE, "InvalidSpec", "; ".join(facts.problems) + kept))
    else:
        put(
            ConditionType.READY,
            (TRUE if ready else FALSE, state.value, _ready_message(state, runtime)),
        )
    put(ConditionType.SCHEDULED, _scheduled_condition(facts, state, runtime))
    put(ConditionType.APP_AVAILABLE, _app_condition(facts))
    if facts.disabled:
        put(ConditionType.DISABLED, (TRUE, "JobDisabled", "spec.disabled is true"))
    elif facts.app is AppAvailability.DISABLED:
        put(ConditionType.DISABLED, (TRUE, "AppDisabled", "the job's CloudApp is disabled"))
    else:
        put(ConditionType.DISABLED, (FALSE, "Enabled", "neither the job nor its app is disabled"))
    unplaceable = runtime.unplaceable_reason if runtime else None
    if unplaceable and (state is JobState.CANNOT_PLACE or facts.held):
        put(ConditionType.CANNOT_PLACE, (TRUE, "InsufficientResources", unplaceable))
    else:
        put(ConditionType.CANNOT_PLACE, (FALSE, "Placeable", "no work is waiting for resources"))
    put(ConditionType.DEGRADED, _degraded(facts))

    held = state not in _NOT_HELD or (state is JobState.INVALID and facts.held)
    live = runtime if runtime is not None and held else None
    if counted is None:
        counted = Counted(previous.succeeded, previous.failed, 0, 0)
    return CloudJobStatus(
        observed_generation=gen,
        conditions=list(conditions),
        state=state.value,
        last_schedule_time=_latest(
            live.last_fire_time if live else None, triggered, previous.last_schedule_time
        ),
        next_schedule_time=whole_seconds(live.next_fire_time) if live else None,
        last_successful_time=_latest(
            live.history.last_success_time if live and live.history else None,
            live.last_success_time if live else None,
            previous.last_successful_time,
        ),
        active_shards=_active_shards(live),
        succeeded=counted.succeeded,
        failed=counted.failed,
        pending_runs=live.pending_runs if live else 0,
        failover_shards=list(live.failover_shards) if live else [],
        recent_runs=(
            _recent_runs(live.history.recent) if live and live.history else previous.recent_runs
        ),
    )


def run_outcome(outcomes: Sequence[str | None]) -> str:
    """A run's outcome from its shards': Running while one runs, then Failed if one
    failed, Killed if one was killed, else Succeeded."""
    if any(o is None for o in outcomes):
        return "Running"
    if "failed" in outcomes:
        return "Failed"
    if "killed" in outcomes:
        return "Killed"
    return "Succeeded"


def _recent_runs(runs: Sequence[JobRun]) -> list[RecentRun]:
    return [
        RecentRun(
            fire_time=whole_seconds(run.fire_time),
            started_at=_second(run.started_at),
            outcome=run_outcome([s.outcome for s in run.shards]),
            shards=[
                ShardOutcome(
                    shard=s.shard,
                    host=s.hostname,
                    outcome=s.outcome,
                    task_id=s.task_id,
                    message=s.message,
                )
                for s in run.shards
            ],
        )
        for run in runs
    ]


_NOT_HELD = (JobState.INVALID, JobState.APP_MISSING, JobState.APP_INVALID)


def _latest(*moments: datetime | None) -> datetime | None:
    known = [_second(m) for m in moments if m is not None]
    return max(known) if known else None


def _degraded(facts: JobFacts) -> tuple[ConditionStatus, str, str]:
    if facts.problems and facts.held:
        return (
            TRUE,
            "InvalidSpec",
            "the spec is invalid, so the scheduler keeps the last valid definition "
            "(set spec.disabled to true to stop it, or fix the spec to apply it): "
            + "; ".join(facts.problems),
        )
    return FALSE, "AsSpecified", "the scheduler holds nothing but what the spec says"


def _ready_message(state: JobState, runtime: JobRuntime | None) -> str:
    match state:
        case JobState.RUNNING:
            count = len(runtime.active_shards) if runtime else 0
            return f"{count} shard task(s) active"
        case JobState.PENDING:
            return "a run is waiting for resources"
        case JobState.SCHEDULED:
            return "waiting for the next fire"
        case JobState.EXPIRED:
            return (
                "spec.cron names no time after now (its year field is past), so the job "
                "never fires again; it runs only when triggered (cloudjob.io/trigger)"
            )
        case JobState.CANNOT_PLACE:
            return "work cannot be placed on any agent; see the CannotPlace condition"
        case JobState.DISABLED:
            return "disabled; see the Disabled condition"
        case JobState.UNSCHEDULED:
            return "not yet held by the scheduler"
        case _:
            return "see the AppAvailable condition"


def _active_shards(runtime: JobRuntime | None) -> list[ActiveShard]:
    if runtime is None:
        return []
    return [
        ActiveShard(
            shard=shard.shard,
            task_id=shard.task_id,
            agent=shard.agent_id,
            state=shard.state,
            since=_second(shard.since),
            host=shard.hostname or None,
        )
        for shard in sorted(runtime.active_shards, key=lambda s: (s.shard, s.task_id))
    ]


def app_status(
    previous: CloudAppStatus,
    *,
    generation: int | None,
    problems: Sequence[str],
    disabled: bool,
    executors: Sequence[ExecutorRuntime],
    now: datetime,
) -> CloudAppStatus:
    now = _second(now)
    conditions: Sequence[Condition] = previous.conditions
    if problems:
        ready = (FALSE, "InvalidSpec", "; ".join(problems))
    elif disabled:
        ready = (FALSE, "Disabled", "spec.disabled is true; its jobs are not scheduled")
    else:
        ready = (TRUE, "Available", f"{len(executors)} executor(s) running")
    disabled_condition = (
        (TRUE, "AppDisabled", "spec.disabled is true")
        if disabled
        else (FALSE, "Enabled", "the app is enabled")
    )
    for type_, (status, reason, message) in (
        (ConditionType.READY, ready),
        (ConditionType.DISABLED, disabled_condition),
    ):
        conditions = set_condition(
            conditions,
            type_=type_,
            status=status,
            reason=reason,
            message=message,
            now=now,
            observed_generation=generation,
        )
    return CloudAppStatus(
        observed_generation=generation,
        conditions=list(conditions),
        executors=[
            AppExecutor(agent=e.agent_id, executor_id=e.executor_id, tasks=e.tasks)
            for e in sorted(executors, key=lambda e: e.executor_id)
        ],
    )


def render(status: CloudJobStatus | CloudAppStatus) -> dict[str, Any]:
    """The status as the API stores it (camelCase, RFC 3339 times, no nulls)."""
    rendered: dict[str, Any] = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    return rendered


def status_patch(
    current: Mapping[str, Any] | None, wanted: CloudJobStatus | CloudAppStatus
) -> dict[str, Any] | None:
    """A merge patch for `.status` carrying what differs, or None when nothing does.

    Only fields this controller owns are compared, so fields written by others (kopf's
    own bookkeeping, for one) never cause a write.
    """
    rendered = render(wanted)
    owned = set(type(wanted).model_fields)
    aliases = {type(wanted).model_fields[name].alias or name for name in owned}
    current = current or {}
    patch: dict[str, Any] = {}
    for key in aliases:
        new = rendered.get(key)
        if current.get(key) != new:
            patch[key] = new
    return patch or None
