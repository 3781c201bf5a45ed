"""The history's SQL writes and the reads the leader starts from.

`write_batch` turns records into rows in one transaction: a launched run is inserted
unless its row exists; an ended run is inserted or, if its row is still open, closed
(an ended run is never ended twice); an abandoned run's open row is closed as killed;
a transition is inserted unless its key is there; a job removal, unless already
applied, deletes the job's counters and marks its runs — so a record written again
changes nothing. It answers which records changed a row, for the summaries. Each
ended run is added to its job's counters (`job_totals`) in the same transaction, and
to the runs that ended per hour and per day (`rollups`). A batch costs a fixed handful
of statements whatever its size: it takes the write lock, reads the state of its run
keys and removals, lets `write_plan.plan` decide every record in Python, then writes
each table with one executemany statement per segment between removals.
`load_summaries` reads the per-job counters and the recent runs of jobs not removed.
`apply_retention` deletes by age and by count per job. Used by the writer; SQLAlchemy
Core throughout, the same statements on SQLite and PostgreSQL (the upsert's dialect
form and the write lock aside).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, bindparam, case, delete, false, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from controller.history import rollups
from controller.history.database import loaded, stored
from controller.history.records import (
    HistoryRecord,
    JobRemoved,
    Outcome,
    RunAbandoned,
    RunEnded,
    RunLaunched,
    Transition,
    transition_key,
)
from controller.history.schema import job_removals, job_totals, runs, transitions
from controller.history.summaries import RunRow, Totals
from controller.history.write_plan import ENDED_FIELDS, Changed, Segment, plan
from controller.operations import ShardRun


def transition_row(record: Transition) -> dict[str, Any]:
    return {
        "task_id": record.task_id,
        "job_key": record.job_key,
        "namespace": record.job_key.partition(".")[0],
        "shard": record.shard,
        "state": record.state,
        "at": stored(record.at),
        "source": record.source,
        "reason": record.reason,
        "message": record.message,
        "agent_id": record.agent_id,
        "hostname": record.hostname,
        "record_key": transition_key(record),
    }


def _insert(connection: AsyncConnection, table: Table = runs) -> Any:
    """The dialect's INSERT, which has ON CONFLICT."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


RunRecord = RunLaunched | RunEnded | RunAbandoned

# run keys per SELECT: far below the bound parameters a statement may have (SQLite's
# 32,766, asyncpg's 32,767)
_KEYS_PER_SELECT = 5000


async def write_batch(
    connection: AsyncConnection, records: Sequence[HistoryRecord]
) -> list[Changed]:
    """Write `records` (inside the caller's transaction); the run and removal records
    that changed a row, in order."""
    moves = [transition_row(r) for r in records if isinstance(r, Transition)]
    if moves:
        await connection.execute(
            _insert(connection, transitions).on_conflict_do_nothing(index_elements=["record_key"]),
            moves,
        )
    keys = list(dict.fromkeys(r.run_key for r in records if isinstance(r, RunRecord)))
    removal_ids = list(dict.fromkeys(r.removal_id for r in records if isinstance(r, JobRemoved)))
    if not keys and not removal_ids:
        return []
    await _lock(connection)
    found = await _run_states(connection, keys)
    applied = await _applied(connection, removal_ids)
    done = plan(records, found, applied)
    for segment in done.segments:
        await _write_segment(connection, segment)
    await rollups.add(connection, done.ends)
    return done.changed


async def _lock(connection: AsyncConnection) -> None:
    """Hold the history's write lock until the transaction ends. The batch is decided
    on the rows read first: another writer (a previous leader still writing the same
    spool units) must not change them between that read and the writes, or a run
    would be counted by both."""
    if connection.dialect.name == "postgresql":
        # conflicts with itself and with every INSERT, UPDATE and DELETE of runs, not
        # with reads
        await connection.execute(text(f"LOCK TABLE {runs.name} IN SHARE ROW EXCLUSIVE MODE"))
    else:
        # SQLite takes the database's write lock at the first write statement, even
        # one that changes no row
        await connection.execute(delete(job_removals).where(false()))


async def _run_states(connection: AsyncConnection, keys: list[str]) -> dict[str, bool]:
    """Each of `keys` that has a row: whether the row is open."""
    found: dict[str, bool] = {}
    for start in range(0, len(keys), _KEYS_PER_SELECT):
        chunk = keys[start : start + _KEYS_PER_SELECT]
        query = select(runs.c.run_key, runs.c.outcome).where(runs.c.run_key.in_(chunk))
        for run_key, outcome in await connection.execute(query):
            found[run_key] = outcome is None
    return found


async def _applied(connection: AsyncConnection, removal_ids: list[str]) -> set[str]:
    """Which of `removal_ids` were applied already."""
    if not removal_ids:
        return set()
    query = select(job_removals.c.removal_id).where(job_removals.c.removal_id.in_(removal_ids))
    return set((await connection.execute(query)).scalars())


async def _write_segment(connection: AsyncConnection, segment: Segment) -> None:
    """A segment's writes, one executemany statement per table, then its removal. Each
    statement keeps its conflict clause, so none can duplicate a row or reopen one."""
    if segment.runs:
        insert = _insert(connection)
        new = insert.excluded
        await connection.execute(
            insert.on_conflict_do_update(
                index_elements=["run_key"],
                set_={name: new[name] for name in ENDED_FIELDS},
                where=and_(runs.c.outcome.is_(None), new.outcome.is_not(None)),
            ),
            list(segment.runs.values()),
        )
    if segment.abandons:
        await connection.execute(
            update(runs)
            .where(runs.c.run_key == bindparam("key"), runs.c.outcome.is_(None))
            .values(
                ended_at=bindparam("end", type_=runs.c.ended_at.type),
                outcome=Outcome.KILLED.value,
                message=bindparam("why", type_=runs.c.message.type),
            ),
            [
                {"key": row["run_key"], "end": row["ended_at"], "why": row["message"]}
                for row in segment.abandons
            ],
        )
    if segment.totals:
        await _count(connection, [segment.totals[job] for job in sorted(segment.totals)])
    if segment.removal is not None:
        await _remove(connection, segment.removal)


@dataclass(frozen=True)
class Loaded:
    totals: dict[str, Totals]
    rows: list[tuple[str, RunRow]]


async def _remove(connection: AsyncConnection, removal: JobRemoved) -> None:
    """Apply a job removal: record it, delete the job's counters, mark its runs."""
    await connection.execute(
        _insert(connection, job_removals)
        .values(
            removal_id=removal.removal_id,
            job_key=removal.job_key,
            removed_at=stored(removal.at),
        )
        .on_conflict_do_nothing(index_elements=["removal_id"])
    )
    await connection.execute(delete(job_totals).where(job_totals.c.job_key == removal.job_key))
    await connection.execute(
        update(runs)
        .where(runs.c.job_key == removal.job_key, runs.c.removal_id.is_(None))
        .values(removal_id=removal.removal_id)
    )


async def load_summaries(connection: AsyncConnection, recent_runs: int) -> Loaded:
    """Every job's counters, and the shard runs of its newest `recent_runs` job runs
    (the runs of removed jobs left out)."""
    totals = {
        row.job_key: Totals(
            succeeded=row.succeeded,
            failed=row.failed,
            killed=row.killed,
            last_success_time=loaded(row.last_success_time),
            last_run_seconds=row.last_run_seconds,
        )
        for row in await connection.execute(select(job_totals))
    }
    group = func.coalesce(runs.c.fire_time, runs.c.started_at)
    ranked = (
        select(
            runs,
            func.dense_rank()
            .over(partition_by=runs.c.job_key, order_by=group.desc())
            .label("rank"),
        )
        .where(runs.c.removal_id.is_(None))
        .subquery()
    )
    rows: list[tuple[str, RunRow]] = []
    for row in await connection.execute(select(ranked).where(ranked.c.rank <= recent_runs)):
        rows.append((row.job_key, run_row(row)))
    return Loaded(totals, rows)


async def _count(connection: AsyncConnection, increments: list[dict[str, Any]]) -> None:
    """Add counter increments (`job_totals` rows, one per job) to the jobs' counters."""
    insert = _insert(connection, job_totals)
    new = insert.excluded
    latest = case(
        (job_totals.c.last_success_time.is_(None), new.last_success_time),
        (new.last_success_time.is_(None), job_totals.c.last_success_time),
        (new.last_success_time > job_totals.c.last_success_time, new.last_success_time),
        else_=job_totals.c.last_success_time,
    )
    await connection.execute(
        insert.on_conflict_do_update(
            index_elements=["job_key"],
            set_={
                "succeeded": job_totals.c.succeeded + new.succeeded,
                "failed": job_totals.c.failed + new.failed,
                "killed": job_totals.c.killed + new.killed,
                "last_success_time": latest,
                "last_run_seconds": func.coalesce(
                    new.last_run_seconds, job_totals.c.last_run_seconds
                ),
            },
        ),
        increments,
    )


def run_row(row: Any) -> RunRow:
    return RunRow(
        run_key=row.run_key,
        fire_time=loaded(row.fire_time),
        run=ShardRun(
            shard=row.shard,
            task_id=row.task_id,
            agent_id=row.agent_id,
            hostname=row.hostname,
            started_at=loaded(row.started_at),  # type: ignore[arg-type]
            ended_at=loaded(row.ended_at),
            outcome=row.outcome,
            message=row.message,
        ),
    )


@dataclass(frozen=True)
class Retained:
    runs: int
    transitions: int


async def apply_retention(
    connection: AsyncConnection, *, older_than: datetime, runs_per_job: int
) -> Retained:
    """Delete runs and transitions older than `older_than`, and every job's runs beyond
    its newest `runs_per_job` (and the transitions of their tasks), and the hourly and
    daily counts of intervals that ended before `older_than`."""
    cutoff = stored(older_than)
    await rollups.prune(connection, older_than)
    old_runs = await connection.execute(
        delete(runs).where(and_(runs.c.ended_at.is_not(None), runs.c.started_at < cutoff))
    )
    old_moves = await connection.execute(delete(transitions).where(transitions.c.at < cutoff))
    ranked = select(
        runs.c.id,
        runs.c.task_id,
        func.row_number()
        .over(partition_by=runs.c.job_key, order_by=(runs.c.started_at.desc(), runs.c.id.desc()))
        .label("rank"),
    ).subquery()
    excess = select(ranked.c.id).where(ranked.c.rank > runs_per_job)
    excess_tasks = select(ranked.c.task_id).where(ranked.c.rank > runs_per_job)
    moves = await connection.execute(
        delete(transitions).where(
            transitions.c.task_id.in_(excess_tasks),
            transitions.c.task_id.not_in(
                select(ranked.c.task_id).where(ranked.c.rank <= runs_per_job)
            ),
        )
    )
    extra = await connection.execute(delete(runs).where(runs.c.id.in_(excess)))
    return Retained(
        runs=(old_runs.rowcount or 0) + (extra.rowcount or 0),
        transitions=(old_moves.rowcount or 0) + (moves.rowcount or 0),
    )
