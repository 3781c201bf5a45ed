"""What the scheduling core needs of the run history: a place to hand records, and
each job's summary. `controller.history.writer.HistoryWriter` is the real one;
`NoHistory` keeps nothing (a service built without a history, as some tests do) and
so asks for no spool either.

`SchedulingService` calls `lead` when a term starts (the history adopts the spool,
migrates and reloads before it writes again) and `follow` when it ends; the launch
cycle, the status pipeline and the engine's removals `submit` units through
`history_handoff`; `job_history` feeds `JobRuntime.history`.
"""

from __future__ import annotations

from typing import Protocol

from controller.history.spool import Spool, SpoolUnit
from controller.operations import JobHistory


class RunHistory(Protocol):
    @property
    def spooled(self) -> bool:
        """Whether records ride the spool (False: nothing would ever drain it)."""

    def submit(self, unit: SpoolUnit) -> None:
        """Take a unit whose change is committed; must never wait."""

    def lead(self, spool: Spool) -> None: ...

    def follow(self) -> None: ...

    def job_history(self, job_key: str) -> JobHistory | None:
        """The job's summary; None while the history has not loaded."""


class NoHistory:
    @property
    def spooled(self) -> bool:
        return False

    def submit(self, unit: SpoolUnit) -> None:
        pass

    def lead(self, spool: Spool) -> None:
        pass

    def follow(self) -> None:
        pass

    def job_history(self, job_key: str) -> JobHistory | None:
        return None
