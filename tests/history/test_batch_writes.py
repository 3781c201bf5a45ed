"""`write_batch` against a record-by-record reference, on SQLite and PostgreSQL: random
sequences of launches, ends, abandons, removals and transitions over a few runs and
jobs, written again in part (a replayed spool) and split into random batches, leave
the same rows in every table and answer the same changed records. And a batch holds
the write lock until it ends, so a second writer never decides on rows it is changing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Table, case, delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from controller.history import rollups
from controller.history.database import migrate, open_engine, stored
from controller.history.records import (
    HistoryRecord,
    JobRemoved,
    Outcome,
    RunAbandoned,
    RunEnded,
    RunLaunched,
    Transition,
)
from controller.history.schema import job_removals, job_totals, run_counts, runs, transitions
from controller.history.storing import transition_row, write_batch
from controller.history.write_plan import Changed, ended_fields, place_row
from tests.history.conftest import Database
from tests.history.factories import T0, ended, launched, place

pytestmark = pytest.mark.integration

RUNS = {  # run key → its job and shard
    "a0": ("team.a", 0),
    "a1": ("team.a", 1),
    "a2": ("team.a", 2),
    "b0": ("team.b", 0),
    "b1": ("team.b", 1),
    "c0": ("other.c", 0),
}
REMOVALS = {"r1": "team.a", "r2": "team.a", "r3": "team.b"}


def _where(run_key: str) -> Any:
    job, shard = RUNS[run_key]
    return place(job, shard, fire=T0 + timedelta(minutes=sorted(RUNS).index(run_key)))


launches = st.builds(lambda k: RunLaunched(k, _where(k)), st.sampled_from(sorted(RUNS)))
ends = st.builds(
    lambda k, outcome, start, seconds, message: RunEnded(
        run_key=k,
        place=_where(k),
        started_at=T0 + timedelta(seconds=start),
        ended_at=T0 + timedelta(seconds=start + seconds),
        outcome=outcome,
        state=f"TASK_{outcome.value.upper()}",
        message=message,
        exit_status=seconds if outcome is Outcome.FAILED else None,
    ),
    st.sampled_from(sorted(RUNS)),
    st.sampled_from([Outcome.SUCCEEDED, Outcome.SUCCEEDED, Outcome.FAILED, Outcome.KILLED]),
    st.integers(0, 3),
    st.integers(0, 40),
    st.sampled_from([None, "boom"]),
)
abandons = st.builds(
    lambda k, at: RunAbandoned(k, RUNS[k][0], T0 + timedelta(seconds=at), "unscheduled"),
    st.sampled_from(sorted(RUNS)),
    st.integers(0, 40),
)
removals = st.builds(
    lambda r, at: JobRemoved(REMOVALS[r], r, T0 + timedelta(seconds=at)),
    st.sampled_from(sorted(REMOVALS)),
    st.integers(0, 40),
)
moves = st.builds(
    lambda k, state: Transition(
        task_id=_where(k).task_id, job_key=RUNS[k][0], shard=RUNS[k][1], state=state, at=T0
    ),
    st.sampled_from(sorted(RUNS)),
    st.sampled_from(["TASK_RUNNING", "TASK_FINISHED"]),
)
records = st.lists(
    st.one_of(launches, launches, ends, ends, ends, abandons, removals, moves),
    min_size=6,
    max_size=30,
)


@st.composite
def written(draw: st.DrawFn) -> list[list[HistoryRecord]]:
    """A sequence, then some of it again, cut into batches."""
    sequence = draw(records)
    if sequence and draw(st.booleans()):
        start = draw(st.integers(0, len(sequence) - 1))
        sequence += sequence[start:]
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(sequence) - 1)), max_size=3)))
    bounds = [0, *(c for c in cuts if c < len(sequence)), len(sequence)]
    return [sequence[a:b] for a, b in pairwise(bounds) if b > a]


@pytest.fixture
async def engine(database: Database) -> AsyncIterator[AsyncEngine]:
    engine = open_engine(database.url)
    await migrate(engine)
    yield engine
    await engine.dispose()


Writer = Callable[[AsyncConnection, Sequence[HistoryRecord]], Awaitable[list[Changed]]]


async def outcome_of(
    engine: AsyncEngine, batches: list[list[HistoryRecord]], writer: Writer
) -> tuple[list[list[Changed]], dict[str, list[tuple[Any, ...]]]]:
    """What `writer` answers for each batch and the tables it leaves; rolled back."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        changed = [await writer(connection, batch) for batch in batches]
        tables = {table.name: await rows_of(connection, table) for table in TABLES}
        await transaction.rollback()
    return changed, tables


TABLES = (runs, job_totals, job_removals, transitions, run_counts)


async def rows_of(connection: AsyncConnection, table: Table) -> list[tuple[Any, ...]]:
    # ids are left out: a rolled-back PostgreSQL sequence does not start again
    columns = [c for c in table.columns if c.name != "id"]
    return sorted(
        (tuple(row) for row in await connection.execute(select(*columns))),
        key=repr,
    )


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches=written())
async def test_batches_write_what_records_written_one_by_one_write(
    engine: AsyncEngine, batches: list[list[HistoryRecord]]
) -> None:
    expected = await outcome_of(engine, batches, one_by_one)
    found = await outcome_of(engine, batches, write_batch)
    assert found == expected


# The reference: one statement per record, each judged by its own rowcount.


def _insert(connection: AsyncConnection, table: Table) -> Any:
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


async def one_by_one(
    connection: AsyncConnection, records: Sequence[HistoryRecord]
) -> list[Changed]:
    changed: list[Changed] = []
    ends: list[tuple[str, datetime, str]] = []
    for record in records:
        if isinstance(record, Transition):
            await connection.execute(
                _insert(connection, transitions)
                .values(transition_row(record))
                .on_conflict_do_nothing(index_elements=["record_key"])
            )
            continue
        if isinstance(record, JobRemoved):
            if await remove(connection, record):
                changed.append(record)
            continue
        if isinstance(record, RunLaunched):
            statement = (
                _insert(connection, runs)
                .values(place_row(record.run_key, record.place))
                .on_conflict_do_nothing(index_elements=["run_key"])
            )
        elif isinstance(record, RunEnded):
            fields = ended_fields(record)
            statement = (
                _insert(connection, runs)
                .values({**place_row(record.run_key, record.place), **fields})
                .on_conflict_do_update(
                    index_elements=["run_key"], set_=fields, where=runs.c.outcome.is_(None)
                )
            )
        else:
            statement = (
                update(runs)
                .where(runs.c.run_key == record.run_key, runs.c.outcome.is_(None))
                .values(
                    ended_at=stored(record.ended_at),
                    outcome=Outcome.KILLED.value,
                    message=record.message,
                )
            )
        if (await connection.execute(statement)).rowcount:
            changed.append(record)
            if isinstance(record, RunEnded | RunAbandoned):
                ends.append(await count(connection, record))
    await rollups.add(connection, ends)
    return changed


async def remove(connection: AsyncConnection, removal: JobRemoved) -> bool:
    applied = await connection.execute(
        _insert(connection, job_removals)
        .values(
            removal_id=removal.removal_id, job_key=removal.job_key, removed_at=stored(removal.at)
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


async def count(
    connection: AsyncConnection, record: RunEnded | RunAbandoned
) -> tuple[str, datetime, str]:
    if isinstance(record, RunAbandoned):
        job_key, outcome, seconds = record.job_key, Outcome.KILLED, 0.0
    else:
        job_key, outcome = record.place.job_key, record.outcome
        seconds = max(0.0, (record.ended_at - record.started_at).total_seconds())
    insert = _insert(connection, job_totals)
    new = insert.excluded
    latest = case(
        (job_totals.c.last_success_time.is_(None), new.last_success_time),
        (new.last_success_time.is_(None), job_totals.c.last_success_time),
        (new.last_success_time > job_totals.c.last_success_time, new.last_success_time),
        else_=job_totals.c.last_success_time,
    )
    await connection.execute(
        insert.values(
            job_key=job_key,
            succeeded=int(outcome is Outcome.SUCCEEDED),
            failed=int(outcome is Outcome.FAILED),
            killed=int(outcome is Outcome.KILLED),
            last_success_time=stored(record.ended_at) if outcome is Outcome.SUCCEEDED else None,
            last_run_seconds=None if outcome is Outcome.KILLED else seconds,
        ).on_conflict_do_update(
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
    return job_key.partition(".")[0], record.ended_at, outcome.value


async def test_a_batch_holds_the_write_lock_even_when_it_changes_nothing(
    database: Database,
) -> None:
    """The batch decides on the rows it reads first: until it ends, no other writer
    (a previous leader still writing the same units) may change them, or both would
    count the same run."""
    first, second = open_engine(database.url), open_engine(database.url, timeout=0.2)
    batch, late = [launched(), ended()], launched(shard=1)
    try:
        await migrate(first)
        async with first.begin() as connection:
            await write_batch(connection, batch)
        async with first.begin() as connection:
            assert await write_batch(connection, batch) == []
            with pytest.raises(DBAPIError):
                async with second.begin() as other:
                    if database.kind == "postgresql":
                        await other.execute(text("SET LOCAL lock_timeout = '200ms'"))
                    await write_batch(other, [late])
        async with second.begin() as other:
            assert await write_batch(other, [late]) == [late]
    finally:
        await first.dispose()
        await second.dispose()
