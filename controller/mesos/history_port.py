"""What the scheduling core needs of the run history: a place to hand records, and
each job's summary. `controller.history.writer.HistoryWriter` is the real one;
`NoHistory` keeps nothing (a service built without a history, as some tests do).

`SchedulingService` calls `lead` when a term starts (the history migrates and reloads
before it writes again) and `follow` when it ends; the launch cycle and the status
pipeline `submit`; `job_history` feeds `JobRuntime.history`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from controller.history.records import HistoryRecord
from controller.operations import JobHistory


class RunHistory(Protocol):
    def submit(self, records: Sequence[HistoryRecord]) -> None:
        """Take records whose change is durable; must never wait."""

    def lead(self) -> None: ...

    def follow(self) -> None: ...

    def job_history(self, job_key: str) -> JobHistory | None:
        """The job's summary; None while the history has not loaded."""


class NoHistory:
    def submit(self, records: Sequence[HistoryRecord]) -> None:
        pass

    def lead(self) -> None:
        pass

    def follow(self) -> None:
        pass

    def job_history(self, job_key: str) -> JobHistory | None:
        return None
