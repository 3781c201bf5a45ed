"""The history's SQL writes and the reads the leader starts from.

`write_batch` turns records into rows in one transaction: a launched run is inserted
unless its row exists; an ended run is inserted or, if its row is still open, closed
(an ended run is never ended twice); a transition is inserted unless its key is there;
a job removal, unless already applied, deletes the job's counters and marks its runs —
so a record written again changes nothing. It answers which records changed a row, for
the summaries. Each ended run is added to its job's counters (`job_totals`) in the
same transaction, and to the runs that ended per hour and per day (`rollups`).
`load_summaries` reads the per-job counters and the recent runs of
jobs not removed. `apply_retention`
deletes by age and by count per job. Used by the writer; SQLAlchemy Core throughout,
the same statements on SQLite and PostgreSQL (the upsert's dialect form aside).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, case, delete, func, select, update
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
    RunPlace,
    Transition,
    transition_key,
)
from controller.history.schema import job_removals, job_totals, runs, transitions
from controller.history.summaries import RunRow, Totals
from controller.operations import ShardRun


def _place_row(run_key: str, place: RunPlace) -> dict[str, Any]:
    return {
        "run_key": run_key,
        "job_key": place.job_key,
        "namespace": place.namespace,
        "job_name": place.job_name,
        "shard": place.shard,
        "task_id": place.task_id,
        "source": place.source,
        "agent_id": place.agent_id,
        "hostname": place.hostname,
        "executor_id": place.executor_id,
        "fire_time": stored(place.fire_time),
        "started_at": stored(place.launched_at),
    }


def _ended_fields(record: RunEnded) -> dict[str, Any]:
    return {
        "started_at": stored(record.started_at),
        "ended_at": stored(record.ended_at),
        "outcome": record.outcome.value,
        "state": record.state,
        "message": record.message,
        "exit_status": record.exit_status,
        "stderr_tail": record.stderr_tail,
        "sandbox": record.sandbox,
    }


def _transition_row(record: Transition) -> dict[str, Any]:
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


Changed = RunLaunched | RunEnded | RunAbandoned | JobRemoved


async def write_batch(
    connection: AsyncConnection, records: Sequence[HistoryRecord]
) -> list[Changed]:
    """Write `records` (inside the caller's transaction); the run and removal records
    that changed a row, in order."""
    changed: list[Changed] = []
    ends: list[tuple[str, datetime, str]] = []
    moves = [_transition_row(r) for r in records if isinstance(r, Transition)]
    if moves:
        await connection.execute(
            _insert(connection, transitions).on_conflict_do_nothing(index_elements=["record_key"]),
            moves,
        )
    for record in records:
        if isinstance(record, JobRemoved):
            if await _remove(connection, record):
                changed.append(record)
            continue
        if isinstance(record, RunLaunched):
            statement = (
                _insert(connection)
                .values(_place_row(record.run_key, record.place))
                .on_conflict_do_nothing(index_elements=["run_key"])
            )
        elif isinstance(record, RunEnded):
            fields = _ended_fields(record)
            statement = (
                _insert(connection)
                .values({**_place_row(record.run_key, record.place), **fields})
                .on_conflict_do_update(
                    index_elements=["run_key"], set_=fields, where=runs.c.outcome.is_(None)
                )
            )
        elif isinstance(record, RunAbandoned):
            statement = (
                update(runs)
                .where(runs.c.run_key == record.run_key, runs.c.outcome.is_(None))
                .values(
                    ended_at=stored(record.ended_at),
                    outcome=Outcome.KILLED.value,
                    message=record.message,
                )
            )
        else:
            continue
        result = await connection.execute(statement)
        if result.rowcount:
            changed.append(record)
            if isinstance(record, RunEnded | RunAbandoned):
                ends.append(await _count(connection, record))
    await rollups.add(connection, ends)
    return changed


@dataclass(frozen=True)
class Loaded:
    totals: dict[str, Totals]
    rows: list[tuple[str, RunRow]]


async def _remove(connection: AsyncConnection, removal: JobRemoved) -> bool:
    """Apply a job removal unless it was applied already; whether it was now."""
    applied = await connection.execute(
        _insert(connection, job_removals)
        .values(
            removal_id=removal.removal_id,
            job_key=removal.job_key,
            removed_at=stored(removal.at),
        )
        .on_conflict_do_nothing(index_elements=["removal_id"])
    )
    if not applied.rowcount:
        return False
    await connection.execute(delete(job_totals).where(job_totals.c.job_key == removal.job_key))
    await connection.execute(
        update(runs)
        .where(runs.c.job_key == removal.job_key, runs.c.removal_id.is_(None))
        .values(removal_id=removal.removal_id)
    )
    return True


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


async def _count(
    connection: AsyncConnection, record: RunEnded | RunAbandoned
) -> tuple[str, datetime, str]:
    """Add an ended run to its job's counters; its namespace, end and outcome."""
    if isinstance(record, RunAbandoned):
        job_key, outcome, seconds = record.job_key, Outcome.KILLED, 0.0
    else:
        job_key, outcome = record.place.job_key, record.outcome
        seconds = max(0.0, (record.ended_at - record.started_at).total_seconds())
    success = stored(record.ended_at) if outcome is Outcome.SUCCEEDED else None
    row = {
        "job_key": job_key,
        "succeeded": int(outcome is Outcome.SUCCEEDED),
        "failed": int(outcome is Outcome.FAILED),
        "killed": int(outcome is Outcome.KILLED),
        "last_success_time": success,
        "last_run_seconds": None if outcome is Outcome.KILLED else seconds,
    }
    insert = (
        postgresql.insert(job_totals)
        if connection.dialect.name == "postgresql"
        else sqlite.insert(job_totals)
    )
    new = insert.excluded
    latest = case(
        (job_totals.c.last_success_time.is_(None), new.last_success_time),
        (new.last_success_time.is_(None), job_totals.c.last_success_time),
        (new.last_success_time > job_totals.c.last_success_time, new.last_success_time),
        else_=job_totals.c.last_success_time,
    )
    await connection.execute(
        insert.values(row).on_conflict_do_update(
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
        )
    )
    # the namespace as the run's row has it (`RunPlace.namespace`)
    return job_key.partition(".")[0], record.ended_at, outcome.value


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
