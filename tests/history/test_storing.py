"""The SQL layer against real SQLite and PostgreSQL: migrations, writes, counters,
summaries and retention."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from controller.history import queries
from controller.history.database import async_url, loaded, migrate, open_engine
from controller.history.records import JobRemoved, Outcome, RunAbandoned, transition_key
from controller.history.schema import job_totals, metadata, run_counts, runs, transitions
from controller.history.storing import apply_retention, load_summaries, write_batch
from tests.history.conftest import Database
from tests.history.factories import T0, ended, launched, transition

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(database: Database) -> AsyncIterator[AsyncEngine]:
    engine = open_engine(database.url)
    await migrate(engine)
    yield engine
    await engine.dispose()


async def test_migrations_are_idempotent_and_build_the_schema_of_the_metadata(
    engine: AsyncEngine,
) -> None:

    await migrate(engine)
    async with engine.connect() as connection:

        def columns(sync: object) -> dict[str, set[str]]:
            inspector = inspect(sync)
            return {
                name: {c["name"] for c in inspector.get_columns(name)}
                for name in inspector.get_table_names()
                if name != "alembic_version"
            }

        found = await connection.run_sync(columns)
        unique = await connection.run_sync(
            lambda sync: {
                i["name"]: bool(i["unique"]) for i in inspect(sync).get_indexes("transitions")
            }
        )
        indexed = await connection.run_sync(
            lambda sync: {
                i["name"]: i["column_names"]
                for i in inspect(sync).get_indexes("runs")
                if i["name"].startswith("ix_")
            }
        )
    assert found == {
        table.name: {c.name for c in table.columns} for table in metadata.sorted_tables
    }
    assert unique["ux_transitions_record_key"]
    assert indexed == {i.name: [c.name for c in i.columns] for i in runs.indexes}


async def test_a_database_of_the_first_revision_is_upgraded_with_its_rows(
    database: Database,
) -> None:
    engine = open_engine(database.url)
    try:
        await migrate(engine, "0001")
        async with engine.begin() as connection:
            await connection.execute(transitions.insert().values(**old_transition()))
            await old_totals(connection)
        await migrate(engine)
        async with engine.begin() as connection:
            await write_batch(connection, [transition(), transition()])
            keys = (await connection.execute(select(transitions.c.record_key))).scalars().all()
            totals = (await connection.execute(select(job_totals))).one()
    finally:
        await engine.dispose()
    assert sorted(keys, key=str) == sorted([None, transition_key(transition())], key=str)
    assert totals.succeeded == 1


def old_transition() -> dict[str, object]:
    move = transition()
    return {
        "task_id": move.task_id,
        "job_key": move.job_key,
        "namespace": "team",
        "shard": move.shard,
        "state": move.state,
        "at": move.at,
    }


async def old_totals(connection: AsyncConnection) -> None:
    """A job's counters as revision 0001 kept them."""
    await connection.execute(
        job_totals.insert().values(job_key="team.report", succeeded=1, failed=0, killed=0)
    )


async def test_a_transition_written_twice_is_one_row(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await write_batch(connection, [transition(), transition(state="TASK_FAILED")])
        await write_batch(connection, [transition(), transition(state="TASK_FAILED")])
        moves = await connection.scalar(select(func.count()).select_from(transitions))
    assert moves == 2


async def test_a_removal_ends_the_counters_once_and_keeps_the_runs(engine: AsyncEngine) -> None:
    removal = JobRemoved("team.report", "removal-1", T0 + timedelta(hours=1))
    before = [ended(shard=0), ended(shard=1, outcome=Outcome.FAILED)]
    after = [ended(shard=0, fire=T0 + timedelta(hours=2))]
    async with engine.begin() as connection:
        changed = await write_batch(connection, [*before, removal, *after])
        # all of it again, as a new leader writing a spool the last one left
        again = await write_batch(connection, [*before, removal, *after])
    assert removal in changed and again == []
    async with engine.connect() as connection:
        totals = (await connection.execute(select(job_totals))).one()
        kept = await connection.scalar(select(func.count()).select_from(runs))
        summaries = await load_summaries(connection, recent_runs=10)
    assert (totals.succeeded, totals.failed) == (1, 0)
    assert kept == 3
    assert [row.fire_time for _, row in summaries.rows] == [T0 + timedelta(hours=2)]


async def test_a_run_is_launched_then_ended_once_and_counted_once(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        first = await write_batch(connection, [launched(), transition()])
        second = await write_batch(
            connection, [ended(outcome=Outcome.FAILED, message="ValueError: no input")]
        )
        again = await write_batch(connection, [ended(outcome=Outcome.FAILED), launched()])
    assert len(first) == 1 and len(second) == 1 and again == []
    async with engine.connect() as connection:
        row = (await connection.execute(select(runs))).one()
        totals = (await connection.execute(select(job_totals))).one()
        moves = await connection.scalar(select(func.count()).select_from(transitions))
    assert (row.outcome, row.hostname, row.exit_status, row.stderr_tail) == (
        "failed",
        "host-0",
        3,
        "boom",
    )
    assert row.message == "ValueError: no input"
    assert loaded(row.fire_time) == T0
    assert (totals.succeeded, totals.failed, totals.killed) == (0, 1, 0)
    assert moves == 1


async def test_an_end_without_its_launch_is_a_whole_row(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await write_batch(connection, [ended(shard=2)])
    async with engine.connect() as connection:
        row = (await connection.execute(select(runs))).one()
    assert (row.shard, row.agent_id, row.outcome) == (2, "agent-2", "succeeded")


async def test_summaries_load_exact_counters_and_the_newest_runs(engine: AsyncEngine) -> None:
    records = []
    for n in range(5):
        fire = T0 + timedelta(minutes=n)
        for shard in range(3):
            outcome = Outcome.FAILED if shard == 1 and n == 4 else Outcome.SUCCEEDED
            records += [
                launched(shard=shard, fire=fire),
                ended(shard=shard, outcome=outcome, fire=fire),
            ]
    async with engine.begin() as connection:
        await write_batch(connection, records)
    async with engine.connect() as connection:
        loaded_ = await load_summaries(connection, recent_runs=2)
    totals = loaded_.totals["team.report"]
    assert (totals.succeeded, totals.failed) == (14, 1)
    assert totals.last_success_time == T0 + timedelta(minutes=4, seconds=6)
    fires = sorted({row.fire_time for _, row in loaded_.rows})
    assert fires == [T0 + timedelta(minutes=3), T0 + timedelta(minutes=4)]
    assert len(loaded_.rows) == 6


async def test_retention_by_age_and_by_count_keeps_the_counters(engine: AsyncEngine) -> None:
    records = []
    for n in range(6):
        fire = T0 + timedelta(days=n)
        records += [launched(fire=fire), ended(fire=fire), transition()]
    async with engine.begin() as connection:
        await write_batch(connection, records)
        pruned = await apply_retention(
            connection, older_than=T0 + timedelta(days=2), runs_per_job=3
        )
    async with engine.connect() as connection:
        left = [loaded(t) for t in await connection.scalars(select(runs.c.fire_time))]
        totals = (await connection.execute(select(job_totals))).one()
    assert sorted(left) == [T0 + timedelta(days=n) for n in (3, 4, 5)]
    assert pruned.runs == 3
    assert totals.succeeded == 6


async def test_a_dropped_task_ends_its_open_run_as_killed_once(engine: AsyncEngine) -> None:
    run = launched()
    abandoned = RunAbandoned(
        run_key=run.run_key,
        job_key="team.report",
        ended_at=T0 + timedelta(minutes=1),
        message="killed by the scheduler: unscheduled",
    )
    daemon = RunAbandoned(
        run_key="team.resident@-@0@-@READY@-@a@-@u",
        job_key="team.resident",
        ended_at=T0,
        message="killed by the scheduler: unscheduled",
    )
    async with engine.begin() as connection:
        await write_batch(connection, [run])
        changed = await write_batch(connection, [abandoned, daemon, abandoned])
        late = await write_batch(connection, [ended(outcome=Outcome.FAILED)])
    assert changed == [abandoned] and late == []
    async with engine.connect() as connection:
        row = (await connection.execute(select(runs))).one()
        totals = list(await connection.execute(select(job_totals)))
    assert (row.outcome, row.message) == ("killed", "killed by the scheduler: unscheduled")
    assert [(t.job_key, t.killed, t.failed) for t in totals] == [("team.report", 1, 0)]


def test_urls_without_a_driver_get_the_async_one() -> None:
    assert async_url("postgresql://u:p@db:5432/h").drivername == "postgresql+asyncpg"
    assert async_url("postgres://db/h").drivername == "postgresql+asyncpg"
    assert async_url("sqlite:////var/lib/h.db").drivername == "sqlite+aiosqlite"
    assert async_url("postgresql+asyncpg://db/h").drivername == "postgresql+asyncpg"


def counts_of(rows: object) -> list[tuple[str, object, str, str, int]]:
    return sorted(
        (r.span, loaded(r.start), r.namespace, r.outcome, r.runs)  # type: ignore[attr-defined]
        for r in rows  # type: ignore[attr-defined]
    )


async def test_runs_are_counted_per_hour_and_day_once_and_pruned_by_age(
    engine: AsyncEngine,
) -> None:
    day = timedelta(days=1)
    records = [
        ended(shard=0),
        ended(shard=1, outcome=Outcome.FAILED),
        ended(shard=0, fire=T0 + timedelta(minutes=70)),
        ended(job="other.report", fire=T0 + 3 * day),
    ]
    async with engine.begin() as connection:
        await write_batch(connection, records)
        await write_batch(connection, records)
        counted = counts_of(await connection.execute(select(run_counts)))
        await apply_retention(connection, older_than=T0 + 2 * day, runs_per_job=100)
        kept = counts_of(await connection.execute(select(run_counts)))
    hour, today, later = T0, T0.replace(hour=0), T0.replace(hour=0) + 3 * day
    assert counted == [
        ("day", today, "team", "failed", 1),
        ("day", today, "team", "succeeded", 2),
        ("day", later, "other", "succeeded", 1),
        ("hour", hour, "team", "failed", 1),
        ("hour", hour, "team", "succeeded", 1),
        ("hour", hour + timedelta(hours=1), "team", "succeeded", 1),
        ("hour", later + timedelta(hours=12), "other", "succeeded", 1),
    ]
    assert kept == [c for c in counted if c[2] == "other"]


async def test_series_of_whole_and_partial_intervals_count_every_run_once(
    engine: AsyncEngine,
) -> None:
    """Whole hours and days come from the counts, the edges from the runs: any window
    gives the counts of the runs themselves."""
    ends = [T0 + timedelta(minutes=37 * n) for n in range(200)]
    records = [
        ended(job=f"{'team' if n % 3 else 'other'}.report", shard=n, fire=at)
        for n, at in enumerate(ends)
    ]
    async with engine.begin() as connection:
        await write_batch(connection, records)
    windows = [
        ("hour", T0 - timedelta(minutes=10), T0 + timedelta(hours=7, minutes=20)),
        ("hour", T0 + timedelta(minutes=5), T0 + timedelta(minutes=50)),
        ("day", T0 - timedelta(hours=3), T0 + timedelta(days=4, hours=5)),
        ("day", T0.replace(hour=0), T0.replace(hour=0) + timedelta(days=3)),
    ]
    for interval, since, until in windows:
        for namespace in (None, "team"):
            async with engine.connect() as connection:
                wanted = queries.Filter(namespace=namespace)
                series = await queries.result_series(connection, interval, since, until, wanted)
            expected: dict[str, int] = {}
            for n, fire in enumerate(ends):
                at = fire + timedelta(seconds=6)
                if since <= at < until and (namespace is None or n % 3):
                    step = queries.INTERVALS[interval]
                    start = T0.replace(hour=0) + (at - T0.replace(hour=0)) // step * step
                    expected[start.isoformat()] = expected.get(start.isoformat(), 0) + 1
            found = {i["start"]: i["succeeded"] for i in series}
            assert found == expected, (interval, since, until, namespace)


async def test_a_database_of_revision_0002_gets_its_runs_counted(database: Database) -> None:
    engine = open_engine(database.url)
    try:
        await migrate(engine, "0002")
        async with engine.begin() as connection:
            await write_batch(connection, [launched(), launched(shard=1)])
            await connection.execute(
                runs.update().values(ended_at=T0 + timedelta(minutes=90), outcome="failed")
            )
        await migrate(engine)
        async with engine.connect() as connection:
            counted = counts_of(await connection.execute(select(run_counts)))
    finally:
        await engine.dispose()
    assert counted == [
        ("day", T0.replace(hour=0), "team", "failed", 2),
        ("hour", T0 + timedelta(hours=1), "team", "failed", 2),
    ]
