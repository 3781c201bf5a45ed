"""What the run history records of a launch and of a status update.

Pure. The launch cycle calls `launched` for every task it committed as running; the
status pipeline calls `of_update` with the update, its decision and what was known
before it, and hands the records to the history only once the decision is durable in
ZooKeeper. The rules:

- every task gets a transition when it is recorded (TASK_STAGING, from the scheduler)
  and whenever an update changes its state, with the update's source, reason and
  message; a daemon's BEGIN and COMPLETE are transitions too (the state stays
  TASK_RUNNING; the message says which);
- a transient task is one run: launched when committed, ended by its terminal update
  (FINISHED: succeeded; KILLED: killed; any other: failed, with the exit status and
  stderr tail the executor put in the message);
- a daemon task reports many runs: each COMPLETE is one run (its report says the
  outcome, the fire time and when the run began — so the start survives a leader
  change; the BEGIN seen in memory stands in for a report without it); a daemon task
  that fails outright ends one failed run, from the BEGIN seen (else its launch). A
  task adrift (unreachable) ends no run: it may come back;
- a task the scheduler drops on purpose (`dropped`: unscheduled, disabled, edited,
  app removed) ends its open run as killed.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import datetime

from controller.definitions import JobDefinition
from controller.executor.messages import BEGIN, COMPLETE, MessageError, RunReport
from controller.history.records import (
    HistoryRecord,
    Outcome,
    RunAbandoned,
    RunEnded,
    RunLaunched,
    RunPlace,
    Transition,
    exit_status,
    failure_cause,
    sandbox_path,
    stderr_tail,
)
from controller.mesos.states import TERMINAL_STATES, StatusSource, StatusUpdate, TaskState
from controller.mesos.statuses import Count, Decision, RemoveRunning, Track, TrackedTask
from controller.state.records import RunningTask


def place_of(task: RunningTask) -> RunPlace:
    return RunPlace(
        job_key=task.job_key,
        shard=task.shard,
        task_id=task.task_id,
        source=task.source.value,
        agent_id=task.agent_id,
        hostname=task.hostname,
        executor_id=task.executor_id,
        fire_time=task.fire_time,
        launched_at=task.launched_at,
    )


def launched(task: RunningTask, job: JobDefinition | None) -> list[HistoryRecord]:
    """A task committed as running: a transition, and for a transient job its run."""
    records: list[HistoryRecord] = [
        Transition(
            task_id=task.task_id,
            job_key=task.job_key,
            shard=task.shard,
            state=TaskState.STAGING.value,
            at=task.launched_at,
            source=StatusSource.SCHEDULER.value,
            message=f"launched from {task.source.value.lower()} on {task.hostname}",
            agent_id=task.agent_id,
            hostname=task.hostname,
        )
    ]
    if job is not None and not job.is_daemon:
        records.append(RunLaunched(run_key=task.task_id, place=place_of(task)))
    return records


def dropped(task: RunningTask, why: str, at: datetime) -> list[HistoryRecord]:
    """A task the scheduler dropped and kills on purpose: a transition, and its run
    (if one is open) ends as killed."""
    message = f"killed by the scheduler: {why}"
    return [
        Transition(
            task_id=task.task_id,
            job_key=task.job_key,
            shard=task.shard,
            state=TaskState.KILLING.value,
            at=at,
            source=StatusSource.SCHEDULER.value,
            message=message,
            agent_id=task.agent_id,
            hostname=task.hostname,
        ),
        RunAbandoned(run_key=task.task_id, job_key=task.job_key, ended_at=at, message=message),
    ]


def of_update(
    update: StatusUpdate,
    decision: Decision,
    *,
    recorded: RunningTask | None,
    tracked: TrackedTask | None,
    job: JobDefinition | None,
    framework_id: str | None,
) -> list[HistoryRecord]:
    """The records of an applied decision about a task recorded as running."""
    if recorded is None or tracked is None or job is None:
        return []
    removed = bool(decision.of(RemoveRunning))
    if not removed and not decision.of(Track):
        return []
    framing = update.state is TaskState.RUNNING and update.message in (BEGIN, COMPLETE)
    records: list[HistoryRecord] = []
    if update.state != tracked.state or update.state in TERMINAL_STATES or framing:
        records.append(_transition(update, recorded))
    place = place_of(recorded)
    sandbox = sandbox_path(
        recorded.agent_id, framework_id, recorded.executor_id or recorded.task_id
    )
    counts = decision.of(Count)
    if not job.is_daemon:
        if removed:
            records.append(_ended(update, recorded.task_id, place, place.launched_at, sandbox))
        return records
    if framing and update.message == COMPLETE and counts:
        report = _report(update)
        fire = report.fire_time if report else None
        key = f"{recorded.task_id}#{update.uuid or update.at.timestamp()}"
        records.append(
            RunEnded(
                run_key=key,
                place=replace(place, fire_time=fire or place.fire_time),
                started_at=(report.started_at if report else None) or tracked.began or update.at,
                ended_at=update.at,
                outcome=Outcome.SUCCEEDED if counts[0].succeeded else Outcome.FAILED,
                state=update.state.value,
                message=(report.detail or None) if report else None,
                exit_status=exit_status(report.detail) if report else None,
                stderr_tail=stderr_tail(report.detail) if report else None,
                sandbox=sandbox,
            )
        )
    elif removed and counts and not counts[0].succeeded:
        started = tracked.began or place.launched_at
        records.append(_ended(update, f"{recorded.task_id}#end", place, started, sandbox))
    return records


def _transition(update: StatusUpdate, task: RunningTask) -> Transition:
    return Transition(
        task_id=task.task_id,
        job_key=task.job_key,
        shard=task.shard,
        state=update.state.value,
        at=update.at,
        source=update.source.value if update.source else None,
        reason=update.reason,
        message=update.message or None,
        agent_id=update.agent_id or task.agent_id,
        hostname=task.hostname,
    )


def _ended(
    update: StatusUpdate,
    run_key: str,
    place: RunPlace,
    started_at: datetime,
    sandbox: str | None,
) -> RunEnded:
    state = update.state
    if state is TaskState.FINISHED:
        outcome = Outcome.SUCCEEDED
    elif state is TaskState.KILLED:
        outcome = Outcome.KILLED
    else:
        outcome = Outcome.FAILED
    message = failure_cause(update.message) or update.reason
    if outcome is not Outcome.FAILED:
        message = update.message or None
    return RunEnded(
        run_key=run_key,
        place=place,
        started_at=started_at,
        ended_at=update.at,
        outcome=outcome,
        state=state.value,
        message=message,
        exit_status=exit_status(update.message),
        stderr_tail=stderr_tail(update.message),
        sandbox=sandbox,
    )


def _report(update: StatusUpdate) -> RunReport | None:
    if not update.data:
        return None
    try:
        return RunReport.decode(base64.b64decode(update.data))
    except (MessageError, ValueError):
        return None
