"""The status-update state machine (SPEC §6): one update in, a list of actions out.

Pure. The service looks up what it knows of the task (`TaskKnowledge`), calls `decide`,
applies the state actions to ZooKeeper, and only then acknowledges the update (if it
carries a uuid). Rules beyond the table of SPEC §6:

- side effects (queue changes, counters) happen only for the task recorded as running
  for its shard, and only on a change of its state, so duplicated, retried and
  reordered updates are harmless; a repeated uuid is recognised and only acknowledged;
- a live task we do not record (a deleted job, a duplicate, an orphan) is killed;
- a task Mesos never ran (DROPPED, or GONE from reconciliation before any agent
  reported it) is re-queued as a failover entry whatever the job's failover flag: its
  run never happened;
- a task killed on purpose (unschedule, disable) never goes back to ready or failover;
- a daemon shard killed while other shards of its job run is relaunched through the
  failover queue (the ready queue only takes a daemon none of whose shards runs);
- `expire_unreachable` turns a task unreachable for too long into a lost one.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from controller.definitions import JobDefinition
from controller.executor.messages import BEGIN, COMPLETE, MessageError, RunReport
from controller.mesos.tasks import MetaInfo, TaskId, TaskIdError
from controller.operations import EventKind, RuntimeEvent

TERMINAL_STATES = frozenset(
    {
        "TASK_FINISHED",
        "TASK_FAILED",
        "TASK_KILLED",
        "TASK_ERROR",
        "TASK_DROPPED",
        "TASK_GONE",
        "TASK_LOST",
        "TASK_GONE_BY_OPERATOR",
    }
)
FAILURE_STATES = frozenset(
    {
        "TASK_LOST",
        "TASK_DROPPED",
        "TASK_GONE",
        "TASK_GONE_BY_OPERATOR",
        "TASK_FAILED",
        "TASK_ERROR",
    }
)
ADRIFT_STATES = frozenset({"TASK_UNREACHABLE", "TASK_UNKNOWN"})
LIVE_STATES = frozenset({"TASK_STAGING", "TASK_STARTING", "TASK_RUNNING"})
# States that prove the task reached its agent.
STARTED_STATES = frozenset(
    {"TASK_STARTING", "TASK_RUNNING", "TASK_KILLING", "TASK_FINISHED", "TASK_FAILED"}
)
DAEMON_BEGIN = BEGIN
DAEMON_COMPLETE = COMPLETE


@dataclass(frozen=True)
class StatusUpdate:
    """A TaskStatus of an UPDATE event (Mesos v1 JSON), reduced to what decisions need."""

    task_id: str
    state: str
    agent_id: str | None = None
    executor_id: str | None = None
    message: str = ""
    reason: str | None = None
    source: str | None = None
    uuid: str | None = None
    timestamp: float | None = None
    data: str | None = None

    @classmethod
    def from_mesos(cls, status: Mapping[str, Any]) -> StatusUpdate:
        def value(key: str) -> str | None:
            inner = status.get(key)
            return str(inner["value"]) if isinstance(inner, Mapping) and "value" in inner else None

        uuid = status.get("uuid")
        timestamp = status.get("timestamp")
        return cls(
            task_id=value("task_id") or "",
            state=str(status.get("state", "")),
            agent_id=value("agent_id"),
            executor_id=value("executor_id"),
            message=str(status.get("message", "") or ""),
            reason=status.get("reason"),
            source=status.get("source"),
            uuid=str(uuid) if uuid else None,
            timestamp=float(timestamp) if timestamp is not None else None,
            data=str(status["data"]) if status.get("data") else None,
        )

    @property
    def acknowledgeable(self) -> bool:
        """Only updates with a uuid come from an agent and wait for an acknowledgement."""
        if not self.uuid:
            return False
        try:
            return len(base64.b64decode(self.uuid, validate=True)) == 16
        except ValueError:
            return False

    @property
    def at(self) -> datetime:
        if self.timestamp is not None:
            return datetime.fromtimestamp(self.timestamp, UTC)
        return datetime.now(UTC)


@dataclass(frozen=True)
class TrackedTask:
    """What the service remembers of a task it recorded as running (memory only)."""

    task_id: TaskId
    hostname: str
    state: str
    since: datetime
    started: bool = False
    idle: bool | None = None
    last_uuid: str | None = None


@dataclass(frozen=True)
class TaskKnowledge:
    """What the service knows about the task an update is about."""

    job: JobDefinition | None
    # The task recorded as running for this update's shard, if it is this very task.
    tracked: TrackedTask | None
    job_disabled: bool = False
    app_disabled: bool = False
    killed_on_purpose: bool = False
    # Another shard of the same job is recorded as running.
    other_shards_running: bool = False


# Actions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kill:
    task_id: str
    agent_id: str | None


@dataclass(frozen=True)
class Track:
    """Replace the in-memory record of a running task."""

    task: TrackedTask


@dataclass(frozen=True)
class RemoveRunning:
    task_id: TaskId


@dataclass(frozen=True)
class RecordFailover:
    meta: MetaInfo
    task_id: TaskId
    # Re-queue even if the job's failover flag is off: the run never happened.
    requeue: bool = False


@dataclass(frozen=True)
class ReadyDaemon:
    job_key: str


@dataclass(frozen=True)
class Count:
    job_key: str
    succeeded: bool
    at: datetime


@dataclass(frozen=True)
class Emit:
    event: RuntimeEvent


Action = Kill | Track | RemoveRunning | RecordFailover | ReadyDaemon | Count | Emit


@dataclass
class Decision:
    actions: list[Action] = field(default_factory=list)
    acknowledge: bool = False

    def of(self, kind: type[Any]) -> list[Any]:
        return [a for a in self.actions if isinstance(a, kind)]


def _event(
    kind: EventKind,
    task: TaskId,
    update: StatusUpdate,
    message: str,
    *,
    warning: bool = False,
) -> Emit:
    details = {"agent": task.agent_id, "launch": task.launch_type.value}
    if update.reason:
        details["reason"] = update.reason
    if update.source:
        details["source"] = update.source
    return Emit(
        RuntimeEvent(
            kind=kind,
            job_key=task.job_key,
            message=message,
            warning=warning,
            task_id=task.value,
            shard=task.shard,
            state=update.state,
            at=update.at,
            details=details,
        )
    )


def _describe(update: StatusUpdate) -> str:
    text = update.state.removeprefix("TASK_").lower().replace("_", " ")
    extra = "; ".join(part for part in (update.reason, update.message) if part)
    return f"{text} ({extra})" if extra else text


def _run_report(update: StatusUpdate) -> RunReport | None:
    """The executor's report of a daemon run (data of a COMPLETE update), if readable."""
    if not update.data:
        return None
    try:
        return RunReport.decode(base64.b64decode(update.data))
    except (MessageError, ValueError):
        return None


def _never_ran(update: StatusUpdate, tracked: TrackedTask) -> bool:
    if tracked.started:
        return False
    if update.state == "TASK_DROPPED":
        return True
    return update.state == "TASK_GONE" and update.reason == "REASON_RECONCILIATION"


def decide(update: StatusUpdate, known: TaskKnowledge) -> Decision:
    decision = Decision(acknowledge=update.acknowledgeable)
    actions = decision.actions
    try:
        task = TaskId.parse(update.task_id)
    except TaskIdError:
        if update.state in LIVE_STATES:
            actions.append(Kill(update.task_id, update.agent_id))
        return decision

    tracked = known.tracked
    if tracked is not None and update.uuid and update.uuid == tracked.last_uuid:
        return decision

    if known.job is None:
        if update.state not in TERMINAL_STATES:
            actions.append(Kill(task.value, update.agent_id or task.agent_id))
        if tracked is not None and update.state in TERMINAL_STATES:
            actions.append(RemoveRunning(task))
        if tracked is not None and update.state not in TERMINAL_STATES:
            actions.append(Track(replace(tracked, last_uuid=update.uuid or tracked.last_uuid)))
        return decision

    if tracked is None:
        if update.state in LIVE_STATES:
            actions.append(Kill(task.value, update.agent_id or task.agent_id))
            actions.append(
                _event(
                    EventKind.KILLED,
                    task,
                    update,
                    f"shard {task.shard}: killing task {task.value}, which Mesos runs but "
                    "this job does not record (a duplicate or an orphan)",
                    warning=True,
                )
            )
        return decision

    _decide_tracked(update, known, task, tracked, actions)
    return decision


def _decide_tracked(
    update: StatusUpdate,
    known: TaskKnowledge,
    task: TaskId,
    tracked: TrackedTask,
    actions: list[Action],
) -> None:
    job = known.job
    assert job is not None
    state = update.state
    changed = state != tracked.state
    started = tracked.started or state in STARTED_STATES
    after = replace(
        tracked,
        state=state,
        since=update.at if changed else tracked.since,
        started=started,
        last_uuid=update.uuid or tracked.last_uuid,
    )

    if state in TERMINAL_STATES:
        actions.append(RemoveRunning(task))
        if state == "TASK_FINISHED":
            actions.append(Count(task.job_key, True, update.at))
            actions.append(
                _event(EventKind.SUCCEEDED, task, update, f"shard {task.shard} finished")
            )
        elif state == "TASK_KILLED":
            actions.append(
                _event(EventKind.KILLED, task, update, f"shard {task.shard} {_describe(update)}")
            )
            if (
                job.is_daemon
                and not known.killed_on_purpose
                and not known.job_disabled
                and not known.app_disabled
            ):
                # The ready queue takes a daemon only when none of its shards runs, so
                # a shard killed beside running ones comes back through failover.
                if known.other_shards_running:
                    actions.append(RecordFailover(task.meta, task))
                else:
                    actions.append(ReadyDaemon(task.job_key))
        else:
            actions.append(Count(task.job_key, False, update.at))
            actions.append(
                _event(
                    EventKind.FAILED,
                    task,
                    update,
                    f"shard {task.shard} {_describe(update)}",
                    warning=True,
                )
            )
            actions.extend(_failover(update, known, task, tracked))
        return

    if state == "TASK_RUNNING":
        idle = tracked.idle
        if update.message == DAEMON_BEGIN:
            idle = False
        elif update.message == DAEMON_COMPLETE:
            idle = True
            report = _run_report(update)
            if report is None or report.outcome == "succeeded":
                actions.append(Count(task.job_key, True, update.at))
                actions.append(
                    _event(EventKind.SUCCEEDED, task, update, f"shard {task.shard} completed a run")
                )
            else:
                actions.append(Count(task.job_key, False, update.at))
                actions.append(
                    _event(
                        EventKind.FAILED,
                        task,
                        update,
                        f"shard {task.shard} run failed: {report.detail or 'no detail'}",
                        warning=True,
                    )
                )
        actions.append(Track(replace(after, idle=idle)))
        if changed:
            actions.append(
                _event(EventKind.TASK_STATE, task, update, f"shard {task.shard} running")
            )
        return

    actions.append(Track(after))
    if state in ADRIFT_STATES and changed:
        actions.append(Count(task.job_key, False, update.at))
        actions.append(
            _event(
                EventKind.TASK_STATE,
                task,
                update,
                f"shard {task.shard} {_describe(update)}; kept as running, it may come back",
                warning=True,
            )
        )


def _failover(
    update: StatusUpdate, known: TaskKnowledge, task: TaskId, tracked: TrackedTask
) -> list[Action]:
    job = known.job
    assert job is not None
    if known.killed_on_purpose or known.job_disabled or known.app_disabled:
        return []
    if _never_ran(update, tracked):
        return [
            RecordFailover(task.meta, task, requeue=True),
            _event(
                EventKind.FAILOVER,
                task,
                update,
                f"shard {task.shard} never started on Mesos; re-queued to run once",
            ),
        ]
    if job.spec.failover or job.is_daemon:
        return [
            RecordFailover(task.meta, task),
            _event(
                EventKind.FAILOVER,
                task,
                update,
                f"shard {task.shard} failed over; it runs again on the next offer",
            ),
        ]
    return []


def expire_unreachable(known: TaskKnowledge, now: datetime, grace_seconds: float) -> Decision:
    """A task unreachable or unknown for longer than the grace is treated as lost.

    If it comes back later, it is no longer recorded and `decide` kills it, so the work
    never runs twice.
    """
    tracked = known.tracked
    decision = Decision()
    if tracked is None or tracked.state not in ADRIFT_STATES:
        return decision
    if (now - tracked.since).total_seconds() < grace_seconds:
        return decision
    task = tracked.task_id
    lost = StatusUpdate(
        task_id=task.value,
        state="TASK_LOST",
        agent_id=task.agent_id,
        message=f"{tracked.state.removeprefix('TASK_').lower()} for over {grace_seconds:g}s",
        source="SOURCE_SCHEDULER",
        timestamp=now.timestamp(),
    )
    if known.job is None:
        decision.actions.append(RemoveRunning(task))
        return decision
    decision.actions.append(Kill(task.value, task.agent_id))
    _decide_tracked(lost, known, task, replace(tracked, started=True), decision.actions)
    return decision
