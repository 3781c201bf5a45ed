"""What the run history records: a run launched, a run ended, a task state transition,
a job removed.

Pure values. The scheduling core builds them (`controller.mesos.history_records`)
once a change is durable in ZooKeeper and hands them to the writer; the writer turns
them into rows and, once committed, into the per-job summaries. A run is keyed by
`run_key`: the task id for a transient run (one task, one run), the task id and the
reporting update for a daemon run (one resident task reports many runs); a transition
by `transition_key`. Writing any record twice therefore changes nothing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

_EXIT_STATUS = re.compile(r"\bexit(?:ed with)? status (-?\d+)")
_STDERR = "; stderr: "
STDERR_TAIL = 300
MESSAGE_LIMIT = 1000


class Outcome(StrEnum):
    """How a run ended. A killed run (unscheduled, disabled, edited) neither succeeded
    nor failed."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    KILLED = "killed"


@dataclass(frozen=True)
class RunPlace:
    """Where a run runs and what it is: the facts known when it is launched."""

    job_key: str
    shard: int
    task_id: str
    source: str
    agent_id: str
    hostname: str
    executor_id: str | None
    fire_time: datetime | None
    launched_at: datetime

    @property
    def namespace(self) -> str:
        return self.job_key.partition(".")[0]

    @property
    def job_name(self) -> str:
        return self.job_key.partition(".")[2]


@dataclass(frozen=True)
class RunLaunched:
    """A transient run's task was recorded as running (before Mesos hears of it)."""

    run_key: str
    place: RunPlace


@dataclass(frozen=True)
class RunEnded:
    """A run ended. Carries its place too, so the row is whole even if the launch record
    was never written (dropped, or written by no leader at all)."""

    run_key: str
    place: RunPlace
    started_at: datetime
    ended_at: datetime
    outcome: Outcome
    state: str
    message: str | None = None
    exit_status: int | None = None
    stderr_tail: str | None = None
    sandbox: str | None = None


@dataclass(frozen=True)
class RunAbandoned:
    """The scheduler dropped a task on purpose (job unscheduled, disabled, edited, app
    removed) and killed it: its run, if still open, ends as killed. Only closes a row
    that exists, so a daemon task (whose runs are its reports) adds nothing."""

    run_key: str
    job_key: str
    ended_at: datetime
    message: str


@dataclass(frozen=True)
class Transition:
    """A task's state changed (or a daemon run began or ended), with who said so and why."""

    task_id: str
    job_key: str
    shard: int
    state: str
    at: datetime
    source: str | None = None
    reason: str | None = None
    message: str | None = None
    agent_id: str | None = None
    hostname: str | None = None


@dataclass(frozen=True)
class JobRemoved:
    """A job was deleted (or its app removed): its counters and recent runs end with it,
    so a job created again under the same name starts from zero; its runs stay in the
    history. `removal_id` is unique per removal, so writing the record twice resets
    nothing the second time (not even the runs of the job created since)."""

    job_key: str
    removal_id: str
    at: datetime


HistoryRecord = RunLaunched | RunEnded | RunAbandoned | Transition | JobRemoved


def transition_key(record: Transition) -> str:
    """A transition's identity: the same change reported or written twice is one row."""
    parts = (record.task_id, record.state, record.at.isoformat(), record.message or "")
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def exit_status(message: str | None) -> int | None:
    """The exit status a failure message names ("exit status 3"), if any."""
    if not message:
        return None
    match = _EXIT_STATUS.search(message)
    return int(match.group(1)) if match else None


def stderr_tail(message: str | None) -> str | None:
    """The stderr tail the executor appends to a failure message ("...; stderr: ...")."""
    if not message or _STDERR not in message:
        return None
    return message.rsplit(_STDERR, 1)[1][-STDERR_TAIL:] or None


def failure_cause(message: str | None) -> str | None:
    """The message without its stderr tail: the exception text or exit status."""
    if not message:
        return None
    return message.split(_STDERR, 1)[0][:MESSAGE_LIMIT] or None


def sandbox_path(agent_id: str, framework_id: str | None, executor_id: str) -> str | None:
    """The run's sandbox, relative to the agent's work directory (what the agent's
    /files endpoints browse); None before the framework has an id."""
    if framework_id is None:
        return None
    return f"slaves/{agent_id}/frameworks/{framework_id}/executors/{executor_id}/runs/latest"
