"""The status-update state machine: one update in, a list of actions out.

Pure. The status pipeline (`status_updates`) looks up what it knows of the task
(`TaskKnowledge`), calls `decide`, applies the state actions to ZooKeeper, and only
then acknowledges the update (if it carries a uuid). The rules (docs/framework.md,
"Status updates", has the table):

- a terminal state removes the task from running; FINISHED counts a success, KILLED
  puts a daemon back (ready, or failover beside running shards), any other terminal
  state counts a failure and fails the shard over when the job asks for it (or is a
  daemon); RUNNING with a daemon's BEGIN / COMPLETE message marks a run's start / end;
- side effects (queue changes, counters) happen only for the task recorded as running
  for its shard, and only on a change of its state, so duplicated, retried and
  reordered updates are harmless; a repeated uuid is recognised and only acknowledged;
- a live task we do not record (a deleted job, a duplicate, an orphan) is killed;
- a task Mesos never ran (DROPPED, or GONE from reconciliation before any agent
  reported it) is re-queued as a failover entry whatever the job's failover flag: its
  run never happened;
- a task killed on purpose (unschedule, disable) never goes back to ready or failover;
- a daemon task killed to move it to a new app version (`replacing`) is relaunched
  through the failover queue, its shard alone, whatever else of its job runs;
- a daemon shard killed while other shards of its job run is relaunched through the
  failover queue (the ready queue only takes a daemon none of whose shards runs);
- `expire_unreachable` turns a task unreachable for too long into a lost one;
  `expire_launch` turns a task staging or starting for too long into a dropped launch.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TypeVar

from controller.definitions import JobDefinition
from controller.executor.messages import BEGIN, COMPLETE, MessageError, RunReport
from controller.mesos.states import (
    ADRIFT_STATES,
    LIVE_STATES,
    REASON_RECONCILIATION,
    STARTED_STATES,
    TERMINAL_STATES,
    StatusSource,
    StatusUpdate,
    TaskState,
)
from controller.mesos.tasks import MetaInfo, TaskId, TaskIdError
from controller.operations import EventKind, RuntimeEvent

DAEMON_BEGIN = BEGIN
DAEMON_COMPLETE = COMPLETE


@dataclass(frozen=True)
class TrackedTask:
    """What the framework remembers of a task it recorded as running (memory only)."""

    task_id: TaskId
    hostname: str
    state: TaskState
    since: datetime
    started: bool = False
    idle: bool | None = None
    last_uuid: str | None = None
    # When the daemon run now under way began (its BEGIN), for the run history.
    began: datetime | None = None


@dataclass(frozen=True)
class TaskKnowledge:
    """What the framework knows about the task an update is about."""

    job: JobDefinition | None
    # The task recorded as running for this update's shard, if it is this very task.
    tracked: TrackedTask | None
    job_disabled: bool = False
    app_disabled: bool = False
    killed_on_purpose: bool = False
    # Another shard of the same job is recorded as running.
    other_shards_running: bool = False
    # Killed by the roll-out of a new app version, to be launched again.
    replacing: bool = False


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
A = TypeVar("A", Kill, Track, RemoveRunning, RecordFailover, ReadyDaemon, Count, Emit)


@dataclass
class Decision:
    actions: list[Action] = field(default_factory=list)
    acknowledge: bool = False

    def of(self, kind: type[A]) -> list[A]:
        """The actions of one kind, in order."""
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
        details["source"] = update.source.value
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
    text = update.state.words
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
    if update.state is TaskState.DROPPED:
        return True
    return update.state is TaskState.GONE and update.reason == REASON_RECONCILIATION


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
        if state is TaskState.FINISHED:
            actions.append(Count(task.job_key, True, update.at))
            actions.append(
                _event(EventKind.SUCCEEDED, task, update, f"shard {task.shard} finished")
            )
        elif state is TaskState.KILLED:
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
                # a shard killed beside running ones comes back through failover; so does
                # a replaced one, which must not wait behind shards replaced with it.
                if known.replacing:
                    actions.append(RecordFailover(task.meta, task, requeue=True))
                elif known.other_shards_running:
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

    if state is TaskState.RUNNING:
        idle, began = tracked.idle, tracked.began
        if update.message == DAEMON_BEGIN:
            idle, began = False, update.at
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
        actions.append(Track(replace(after, idle=idle, began=began)))
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


def lost_update(tracked: TrackedTask, now: datetime, grace_seconds: float) -> StatusUpdate | None:
    """The update the framework makes up for a task adrift for longer than the grace:
    TASK_LOST from SOURCE_SCHEDULER; None while the grace lasts."""
    if tracked.state not in ADRIFT_STATES:
        return None
    if (now - tracked.since).total_seconds() < grace_seconds:
        return None
    task = tracked.task_id
    return StatusUpdate(
        task_id=task.value,
        state=TaskState.LOST,
        agent_id=task.agent_id,
        message=f"{tracked.state.words} for over {grace_seconds:g}s",
        source=StatusSource.SCHEDULER,
        timestamp=now.timestamp(),
    )


def expire_unreachable(known: TaskKnowledge, now: datetime, grace_seconds: float) -> Decision:
    """A task unreachable or unknown for longer than the grace is treated as lost.

    If it comes back later, it is no longer recorded and `decide` kills it, so the work
    never runs twice.
    """
    tracked = known.tracked
    decision = Decision()
    if tracked is None:
        return decision
    lost = lost_update(tracked, now, grace_seconds)
    if lost is None:
        return decision
    task = tracked.task_id
    if known.job is None:
        decision.actions.append(RemoveRunning(task))
        return decision
    decision.actions.append(Kill(task.value, task.agent_id))
    _decide_tracked(lost, known, task, replace(tracked, started=True), decision.actions)
    return decision


def launch_timeout_update(tracked: TrackedTask, now: datetime, timeout: float) -> StatusUpdate:
    """The update the framework makes up for a launch that timed out: TASK_DROPPED from
    SOURCE_SCHEDULER, as if Mesos had dropped the launch."""
    task = tracked.task_id
    return StatusUpdate(
        task_id=task.value,
        state=TaskState.DROPPED,
        agent_id=task.agent_id,
        message=f"{tracked.state.words} for over {timeout:g}s; killed: launch timed out",
        source=StatusSource.SCHEDULER,
        timestamp=now.timestamp(),
    )


def expire_launch(known: TaskKnowledge, now: datetime, timeout: float) -> Decision:
    """A task that stayed staging or starting past the launch timeout ends as a dropped
    launch: its shard is re-queued to run once, whatever the job's failover flag.

    The caller kills it (after this is applied); if it comes back later, it is no longer
    recorded and `decide` kills it again, so the shard never runs twice.
    """
    tracked = known.tracked
    decision = Decision()
    if tracked is None:
        return decision
    task = tracked.task_id
    if known.job is None:
        decision.actions.append(RemoveRunning(task))
        return decision
    # STARTING proves the task reached its agent, but a task that never got to RUNNING
    # ran none of its work: it goes where a dropped launch goes.
    update = launch_timeout_update(tracked, now, timeout)
    _decide_tracked(update, known, task, replace(tracked, started=False), decision.actions)
    return decision
