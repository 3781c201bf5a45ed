"""What the framework has seen of each job since this process started.

`JobStatistics` is owned by `SchedulingService` (it outlives leadership terms, so a
job's counters survive a failover to this process and back) and handed to each term's
engine, whose parts report to it through its methods: the producer's fires, the status
pipeline's outcomes, the launch cycle's unplaceable work. Readers get frozen
`JobStats` snapshots. Every change is reported to `changed` with the job's key (the
service marks the job's status out of date). Asyncio-loop only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime


@dataclass(frozen=True)
class JobStats:
    last_fire_time: datetime | None = None
    last_success_time: datetime | None = None
    succeeded: int = 0
    failed: int = 0
    unplaceable_reason: str | None = None


def _ignore(job_key: str) -> None:
    pass


class JobStatistics:
    def __init__(self, changed: Callable[[str], None] = _ignore) -> None:
        self._jobs: dict[str, JobStats] = {}
        self._changed = changed

    def of(self, job_key: str) -> JobStats:
        return self._jobs.get(job_key, JobStats())

    def fired(self, job_key: str, at: datetime) -> None:
        self._jobs[job_key] = replace(self.of(job_key), last_fire_time=at)
        self._changed(job_key)

    def succeeded(self, job_key: str, at: datetime) -> None:
        stats = self.of(job_key)
        self._jobs[job_key] = replace(stats, succeeded=stats.succeeded + 1, last_success_time=at)
        self._changed(job_key)

    def failed(self, job_key: str) -> None:
        stats = self.of(job_key)
        self._jobs[job_key] = replace(stats, failed=stats.failed + 1)
        self._changed(job_key)

    def unplaceable(self, job_key: str, reason: str) -> bool:
        """Record why the job's work cannot be placed; False when that is known already."""
        stats = self.of(job_key)
        if stats.unplaceable_reason == reason:
            return False
        self._jobs[job_key] = replace(stats, unplaceable_reason=reason)
        self._changed(job_key)
        return True

    def placeable(self, job_key: str) -> None:
        """The job's work no longer waits for resources."""
        stats = self._jobs.get(job_key)
        if stats is not None and stats.unplaceable_reason is not None:
            self._jobs[job_key] = replace(stats, unplaceable_reason=None)
            self._changed(job_key)

    def forget(self, job_key: str) -> None:
        """The job is gone: a job of that name later starts afresh."""
        self._jobs.pop(job_key, None)

    def unplaceable_jobs(self) -> int:
        return sum(1 for stats in self._jobs.values() if stats.unplaceable_reason)
