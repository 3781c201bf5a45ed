"""Per-job summaries of the run history, exactly as committed to the database.

`Summaries` starts from what the database holds (`load`, when this replica becomes
leader) and then follows every run the writer commits (`launched`, `ended`, and `removed` when a
job is deleted), so its
counters are the database's own: the same after a leader change or a restart. The
scheduling core reads them for `JobRuntime.history` (the CloudJob status) and the
per-job metrics. Grouping shard runs into job runs — the shards of one fire time — is
`group_runs`, pure. Asyncio-loop only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from controller.history.records import JobRemoved, Outcome, RunAbandoned, RunEnded, RunLaunched
from controller.operations import JobHistory, JobRun, ShardRun


@dataclass(frozen=True)
class RunRow:
    """One shard run of the recent window, with what groups it into a job run."""

    run_key: str
    fire_time: datetime | None
    run: ShardRun

    @property
    def group(self) -> datetime:
        return self.fire_time or self.run.started_at


@dataclass(frozen=True)
class Totals:
    succeeded: int = 0
    failed: int = 0
    killed: int = 0
    last_success_time: datetime | None = None
    last_run_seconds: float | None = None


@dataclass
class _Job:
    totals: Totals = field(default_factory=Totals)
    rows: dict[str, RunRow] = field(default_factory=dict)


def group_runs(rows: Iterable[RunRow], limit: int) -> tuple[JobRun, ...]:
    """The newest `limit` job runs (newest first), each with its shards in order."""
    groups: dict[datetime, list[RunRow]] = {}
    for row in rows:
        groups.setdefault(row.group, []).append(row)
    newest = sorted(groups, reverse=True)[:limit]
    return tuple(
        JobRun(
            fire_time=groups[key][0].fire_time,
            started_at=min(r.run.started_at for r in groups[key]),
            shards=tuple(
                sorted((r.run for r in groups[key]), key=lambda s: (s.shard, s.started_at))
            ),
        )
        for key in newest
    )


def shard_run(record: RunLaunched | RunEnded) -> ShardRun:
    place = record.place
    run = ShardRun(
        shard=place.shard,
        task_id=place.task_id,
        agent_id=place.agent_id,
        hostname=place.hostname,
        started_at=place.launched_at,
    )
    if isinstance(record, RunEnded):
        run = replace(
            run,
            started_at=record.started_at,
            ended_at=record.ended_at,
            outcome=record.outcome.value,
            message=record.message,
        )
    return run


def add_outcome(totals: Totals, record: RunEnded) -> Totals:
    seconds = max(0.0, (record.ended_at - record.started_at).total_seconds())
    match record.outcome:
        case Outcome.SUCCEEDED:
            last = totals.last_success_time
            return replace(
                totals,
                succeeded=totals.succeeded + 1,
                last_success_time=record.ended_at if last is None else max(last, record.ended_at),
                last_run_seconds=seconds,
            )
        case Outcome.FAILED:
            return replace(totals, failed=totals.failed + 1, last_run_seconds=seconds)
        case _:
            return replace(totals, killed=totals.killed + 1)


class Summaries:
    def __init__(self, recent_runs: int) -> None:
        self._limit = recent_runs
        self._jobs: dict[str, _Job] = {}
        self._loaded = False

    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self, totals: dict[str, Totals], rows: Iterable[tuple[str, RunRow]]) -> None:
        """Start over from the database's counters and recent shard runs."""
        self._jobs = {key: _Job(totals=value) for key, value in totals.items()}
        for job_key, row in rows:
            self._jobs.setdefault(job_key, _Job()).rows[row.run_key] = row
        for job in self._jobs.values():
            self._trim(job)
        self._loaded = True

    def unload(self) -> None:
        """Another replica writes now: these counters would go stale."""
        self._jobs = {}
        self._loaded = False

    def launched(self, record: RunLaunched) -> None:
        job = self._jobs.setdefault(record.place.job_key, _Job())
        if record.run_key not in job.rows:
            job.rows[record.run_key] = RunRow(
                record.run_key, record.place.fire_time, shard_run(record)
            )
            self._trim(job)

    def ended(self, record: RunEnded) -> None:
        """A run's end was committed (and not already recorded)."""
        job = self._jobs.setdefault(record.place.job_key, _Job())
        job.totals = add_outcome(job.totals, record)
        job.rows[record.run_key] = RunRow(record.run_key, record.place.fire_time, shard_run(record))
        self._trim(job)

    def abandoned(self, record: RunAbandoned) -> None:
        """An open run was ended as killed (its row changed)."""
        job = self._jobs.setdefault(record.job_key, _Job())
        job.totals = replace(job.totals, killed=job.totals.killed + 1)
        row = job.rows.get(record.run_key)
        if row is not None:
            run = replace(
                row.run,
                ended_at=record.ended_at,
                outcome=Outcome.KILLED.value,
                message=record.message,
            )
            job.rows[record.run_key] = replace(row, run=run)

    def removed(self, record: JobRemoved) -> None:
        """The job was removed: a job created again under its name starts from zero."""
        self._jobs.pop(record.job_key, None)

    def of(self, job_key: str) -> JobHistory | None:
        if not self._loaded:
            return None
        job = self._jobs.get(job_key)
        if job is None:
            return JobHistory()
        totals = job.totals
        return JobHistory(
            succeeded=totals.succeeded,
            failed=totals.failed,
            killed=totals.killed,
            last_success_time=totals.last_success_time,
            last_run_seconds=totals.last_run_seconds,
            recent=group_runs(job.rows.values(), self._limit),
        )

    def _trim(self, job: _Job) -> None:
        newest = group_runs(job.rows.values(), self._limit)
        keep = {run.fire_time or run.started_at for run in newest}
        for key in [k for k, row in job.rows.items() if row.group not in keep]:
            del job.rows[key]
