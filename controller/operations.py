"""The seam between the Kubernetes layer and the scheduling core.

The reconcilers call `SchedulingOperations`; the scheduling core (the Mesos
subsystem with its ZooKeeper state) implements it. Neither side sees the other's
types: only definitions, keys and the plain runtime facts below. The core reports
what happens through `RuntimeEvent`s, which the Kubernetes layer turns into
status patches and Kubernetes Events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from controller.definitions import AppDefinition, JobDefinition


class SchedulingError(RuntimeError):
    """An operation could not be carried out now (retry later)."""


class QueueFull(SchedulingError):
    """The ready queue already holds the configured maximum of job entries."""


@dataclass(frozen=True)
class ShardRuntime:
    shard: int
    task_id: str
    agent_id: str
    hostname: str
    state: str
    since: datetime


@dataclass(frozen=True)
class ShardRun:
    """One shard's part of a run, as the run history holds it (`outcome` None: running)."""

    shard: int
    task_id: str
    agent_id: str
    hostname: str
    started_at: datetime
    ended_at: datetime | None = None
    outcome: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class JobRun:
    """One run of a job: the shards that ran for one fire time (or one daemon report)."""

    fire_time: datetime | None
    started_at: datetime
    shards: tuple[ShardRun, ...]


@dataclass(frozen=True)
class JobHistory:
    """What the run history's database holds of a job: exact counters and recent runs
    (newest first). Counters and times are the database's, so they agree across leader
    changes and restarts."""

    succeeded: int = 0
    failed: int = 0
    killed: int = 0
    last_success_time: datetime | None = None
    last_run_seconds: float | None = None
    recent: tuple[JobRun, ...] = ()


@dataclass(frozen=True)
class JobRuntime:
    """What the core knows of one job now; the source of its status."""

    job_key: str
    scheduled: bool
    active_shards: tuple[ShardRuntime, ...] = ()
    last_fire_time: datetime | None = None
    next_fire_time: datetime | None = None
    last_success_time: datetime | None = None
    succeeded: int = 0
    failed: int = 0
    pending_runs: int = 0
    unplaceable_reason: str | None = None
    failover_shards: tuple[int, ...] = ()
    history: JobHistory | None = None
    """None while the run history has not loaded (its database unreachable since start)."""


@dataclass(frozen=True)
class ExecutorRuntime:
    agent_id: str
    hostname: str
    executor_id: str
    tasks: int


class TriggerResult(StrEnum):
    """What `SchedulingOperations.trigger` did with a token."""

    RAN = "Ran"
    """The token was new: its one run was requested now."""
    ALREADY_HANDLED = "AlreadyHandled"
    """The core had handled this token before (perhaps under an earlier leader): nothing ran."""


class ReconcileKind(StrEnum):
    """An on-demand reconciliation (the original's explicit and implicit operations)."""

    EXPLICIT = "explicit"
    """Ask the master about every task recorded as running (of one app's jobs, or all)."""
    IMPLICIT = "implicit"
    """Ask the master to report every task of the framework it knows."""


class EventKind(StrEnum):
    FIRED = "Fired"
    LAUNCHED = "Launched"
    TASK_STATE = "TaskState"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    FAILOVER = "Failover"
    UNPLACEABLE = "Unplaceable"
    KILLED = "Killed"


@dataclass(frozen=True)
class RuntimeEvent:
    """One thing that happened to a job, for its status and a Kubernetes Event."""

    kind: EventKind
    job_key: str
    message: str
    warning: bool = False
    task_id: str | None = None
    shard: int | None = None
    state: str | None = None
    at: datetime | None = None
    details: dict[str, str] = field(default_factory=dict)


class SchedulingOperations(Protocol):
    """Plain async operations; each is idempotent for the same desired state."""

    async def put_app(self, app: AppDefinition) -> None:
        """Store or update an app's definition (enabled or disabled per its spec)."""

    async def remove_app(self, app_key: str) -> None:
        """Unschedule the app's jobs and send STOP to every executor of the app."""

    async def disable_app(self, app_key: str) -> None: ...

    async def enable_app(self, app_key: str) -> None: ...

    async def schedule(self, job: JobDefinition) -> None:
        """Store the job's definition and (unless it or its app is disabled) schedule it;
        if it was scheduled with another definition, reschedule it."""

    async def unschedule(self, job_key: str) -> None:
        """Kill the job's tasks, drop it from every queue and forget its definition."""

    async def disable_job(self, job_key: str) -> None: ...

    async def enable_job(self, job_key: str) -> None: ...

    async def trigger(self, job_key: str, token: str) -> TriggerResult:
        """One extra run now, at most once per `token` (the trigger annotation's value):
        transient → one more ready run; daemon → a message to its executors. The core
        records the last handled token with the run it causes, so a token it has seen
        before runs nothing (ALREADY_HANDLED) whichever leader handled it."""

    async def reconcile(self, kind: ReconcileKind, app_key: str | None = None) -> int:
        """Reconcile now; how many tasks the master was asked about (0 for implicit).
        Raises SchedulingError while not subscribed to a master."""

    def job_runtime(self, job_key: str) -> JobRuntime: ...

    def job_keys(self) -> frozenset[str]:
        """Keys of every job the core holds a definition of (scheduled or not)."""

    def app_keys(self) -> frozenset[str]:
        """Keys of every app the core holds a definition of."""

    def app_executors(self, app_key: str) -> list[ExecutorRuntime]: ...
