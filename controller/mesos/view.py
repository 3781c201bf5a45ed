"""What may be read of a running term from outside it: read-only Protocols.

`SchedulingService.view()` hands out the current engine as a `TermView`: whether it
is subscribed, whether a reconciliation run is open, the cron timers, and its state
store as a `StateReader` (the queues as ZooKeeper has them). Diagnostics, tests and
benchmarks read through it; nothing can be changed through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from controller.definitions import AppDefinition, JobDefinition
from controller.producer import TimerKey
from controller.state import FailoverEntry, ReadyEntry, RequestCounts, RunningTask
from controller.state.view import View


class StateReader(Protocol):
    def job(self, job_key: str) -> JobDefinition | None: ...

    def jobs(self) -> Mapping[str, JobDefinition]: ...

    def apps(self) -> Mapping[str, AppDefinition]: ...

    def ready(self) -> Mapping[str, ReadyEntry]: ...

    def failover(self) -> Mapping[str, FailoverEntry]: ...

    def running(self) -> Mapping[str, RunningTask]: ...

    def running_of(self, job_key: str) -> tuple[RunningTask, ...]: ...

    def running_task(self, task_id: str) -> RunningTask | None: ...

    def framework_id(self) -> str | None: ...

    def last_trigger(self, job_key: str) -> str | None: ...

    def snapshot(self) -> View: ...

    @property
    def counts(self) -> RequestCounts: ...


class TermView(Protocol):
    @property
    def subscribed(self) -> bool: ...

    @property
    def reconciling(self) -> bool: ...

    @property
    def state(self) -> StateReader: ...

    def cron_timers(self) -> dict[TimerKey, tuple[str, ...]]: ...
