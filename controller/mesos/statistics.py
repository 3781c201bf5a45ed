"""What the framework has seen of each job since this process started.

`JobStatistics` is owned by `SchedulingService` (it outlives leadership terms, so a
job's counters survive a failover to this process and back) and handed to each term's
engine, whose parts report to it through its methods: the producer's fires, the status
pipeline's outcomes, the launch cycle's unplaceable work. Readers get frozen
`JobStats` snapshots. Asyncio-loop only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime


@dataclass(frozen=True)
class JobStats:
    last_fire_time: datetime | None = None
    last_success_time: datetime | None = None
    succeeded: int = 0
    failed: int = 0
    unplaceable_reason: str | None = None


class JobStatistics:
    def __init__(self) -> None:
        self._jobs: dict[str, JobStats] = {}

    def of(self, job_key: str) -> JobStats:
        return self._jobs.get(job_key, JobStats())

    def fired(self, job_key: str, at: datetime) -> None:
        self._jobs[job_key] = replace(self.of(job_key), last_fire_time=at)

    def succeeded(self, job_key: str, at: datetime) -> None:
        stats = self.of(job_key)
        self._jobs[job_key] = replace(stats, succeeded=stats.succeeded + 1, last_success_time=at)

    def failed(self, job_key: str) -> None:
        stats = self.of(job_key)
        self._jobs[job_key] = replace(stats, failed=stats.failed + 1)

    def unplaceable(self, job_key: str, reason: str) -> bool:
        """Record why the job's work cannot be placed; False when that is known already."""
        stats = self.of(job_key)
        if stats.unplaceable_reason == reason:
            return False
        self._jobs[job_key] = replace(stats, unplaceable_reason=reason)
        return True

    def placeable(self, job_key: str) -> None:
        """The job's work no longer waits for resources."""
        if (stats := self._jobs.get(job_key)) is not None:
            self._jobs[job_key] = replace(stats, unplaceable_reason=None)

    def forget(self, job_key: str) -> None:
        """The job is gone: a job of that name later starts afresh."""
        self._jobs.pop(job_key, None)

    def unplaceable_jobs(self) -> int:
        return sum(1 for stats in self._jobs.values() if stats.unplaceable_reason)
