"""The history writer against real SQLite and PostgreSQL and a real ZooKeeper spool:
it writes off the caller's path, keeps exact summaries, survives the database going
away — buffering, then dropping the oldest records (from the spool too), counting and
logging what it dropped — and as a new leader writes, exactly once, what the last one
left in the spool."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import pytest
from kazoo.client import KazooClient
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy import func, select

from controller.history.database import migrate, open_engine
from controller.history.records import HistoryRecord, JobRemoved, Outcome
from controller.history.schema import runs
from controller.history.settings import HistorySettings
from controller.history.spool import SpoolUnit, encode
from controller.history.storing import write_batch
from controller.history.writer import HistoryWriter
from controller.mesos.history_spool import ZkSpool
from controller.state.layout import Layout
from devcluster.postgres import PostgresServer
from tests.history.conftest import Database
from tests.history.factories import T0, ended, launched, transition

pytestmark = pytest.mark.integration


@dataclass
class Running:
    writer: HistoryWriter
    registry: CollectorRegistry
    spool: ZkSpool

    def metric(self, name: str) -> float:
        return self.registry.get_sample_value(name) or 0.0

    async def until(self, check: Callable[[], bool], what: str) -> None:
        try:
            async with asyncio.timeout(30):
                await self.writer.wait_until(check)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}") from None


@pytest.fixture
def spool(zk_client: KazooClient, zk_namespace: str) -> ZkSpool:
    """The spool in a real ZooKeeper, as a store's load leaves it (its parent there)."""
    layout = Layout(zk_namespace)
    zk_client.ensure_path(layout.history_spool)
    return ZkSpool(zk_client, layout)


@pytest.fixture
async def running(database: Database, spool: ZkSpool) -> AsyncIterator[Running]:
    registry = CollectorRegistry()
    settings = HistorySettings(
        database_url=SecretStr(database.url),
        buffer_size=10,
        batch_size=4,
        retry_seconds=0.05,
        timeout_seconds=0.5,
        recent_runs=3,
        retention_days=36500,  # the records date from T0: keep them whatever today is
    )
    writer = HistoryWriter(settings, registry=registry)
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop))
    writer.lead(spool)
    ready = Running(writer, registry, spool)
    await ready.until(lambda: writer.summaries.loaded, "the summaries to load")
    yield ready
    stop.set()
    await task


async def rows(url: str) -> int:
    engine = open_engine(url)
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(select(func.count()).select_from(runs)) or 0)
    finally:
        await engine.dispose()


async def test_runs_are_written_and_summarised_exactly(running: Running) -> None:
    writer = running.writer
    for shard in range(3):
        writer.submit(SpoolUnit.of([launched(shard=shard)]))
    writer.submit(
        SpoolUnit.of([ended(shard=0), ended(shard=1, outcome=Outcome.FAILED), ended(shard=2)])
    )
    writer.submit(SpoolUnit.of([ended(shard=0)]))  # the same end again changes nothing
    await running.until(lambda: writer.buffered == 0, "the buffer to drain")
    history = writer.job_history("team.report")
    assert history is not None
    assert (history.succeeded, history.failed) == (2, 1)
    assert len(history.recent) == 1
    assert [(s.shard, s.outcome, s.hostname) for s in history.recent[0].shards] == [
        (0, "succeeded", "host-0"),
        (1, "failed", "host-1"),
        (2, "succeeded", "host-2"),
    ]
    assert running.metric("cloudjob_history_records_written_total") == 7
    assert writer.health == "ok"


async def test_the_writer_idles_without_a_task_of_its_own_pending(running: Running) -> None:
    # kopf takes every task created while an operator runs for one of its own and waits
    # 5 s for it when the operator stops, at each leadership term's end; the writer
    # outlives the terms.
    writer = running.writer
    before = asyncio.all_tasks()
    for shard in range(3):
        writer.submit(SpoolUnit.of([launched(shard=shard)]))
        await running.until(lambda: writer.buffered == 0, "the buffer to drain")
    for _ in range(5):
        await asyncio.sleep(0)  # the writer is back in its wait
    created = {t for t in asyncio.all_tasks() - before if not t.done()}
    assert created == set()


async def test_a_new_term_reloads_the_same_counters(running: Running) -> None:
    writer = running.writer
    writer.submit(SpoolUnit.of([ended(fire=T0 + timedelta(minutes=n)) for n in range(5)]))
    await running.until(lambda: writer.buffered == 0, "the buffer to drain")
    writer.follow()
    assert writer.job_history("team.report") is None
    writer.lead(running.spool)
    await running.until(lambda: writer.summaries.loaded, "the summaries to reload")
    history = writer.job_history("team.report")
    assert history is not None and history.succeeded == 5
    assert len(history.recent) == 3


@contextmanager
def outage(database: Database, request: pytest.FixtureRequest) -> Iterator[None]:
    """PostgreSQL stopped; SQLite locked by another writer for as long as it lasts."""
    if database.kind == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        server.stop_server()
        try:
            yield
        finally:
            server.start_server()
        return
    path = database.url.split(":///", 1)[1]
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


async def test_database_down_submits_never_wait_and_drops_are_counted_and_logged(
    running: Running,
    database: Database,
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer = running.writer
    writer.submit(SpoolUnit.of([launched(shard=0)]))
    await running.until(lambda: writer.buffered == 0, "the first record to be written")
    caplog.set_level(logging.WARNING, logger="controller.history.writer")
    with outage(database, request):
        writer.submit(SpoolUnit.of([launched(shard=1)]))
        await running.until(
            lambda: writer.health.startswith("unavailable"), "the outage to be seen"
        )
        assert running.metric("cloudjob_history_database_up") == 0
        loop = asyncio.get_running_loop()
        started = loop.time()
        for n in range(2, 16):
            writer.submit(SpoolUnit.of([launched(shard=n)]))
        assert loop.time() - started < 0.1  # submitting never waits for the database
        assert writer.buffered == 10
        assert running.metric("cloudjob_history_records_dropped_total") == 5
        assert "run history database unavailable" in caplog.text
        assert "buffer full" in caplog.text
    await running.until(lambda: writer.buffered == 0, "the buffer to drain after the outage")
    assert writer.health == "ok"
    assert running.metric("cloudjob_history_database_up") == 1
    assert "5 record(s) were dropped" in caplog.text
    assert await rows(database.url) == 11  # the first, and the newest 10


def spool_unit(client: KazooClient, spool: ZkSpool, *records: HistoryRecord) -> SpoolUnit:
    """A unit as a leader's transaction leaves it in the spool."""
    unit = SpoolUnit.of(records)
    client.create(spool.layout.history_unit(unit.name), encode(records))
    return unit


def spool_root(spool: ZkSpool) -> str:
    return spool.layout.history_spool


async def test_a_new_leader_writes_what_a_killed_one_left_in_the_spool_exactly_once(
    database: Database, spool: ZkSpool, zk_client: KazooClient
) -> None:
    launches = [launched(shard=s) for s in range(3)]
    spool_unit(zk_client, spool, *launches, transition())
    spool_unit(zk_client, spool, ended(shard=0), ended(shard=1, outcome=Outcome.FAILED))
    # the killed leader had written this one, not yet deleted it: written again, no change
    written = spool_unit(zk_client, spool, ended(shard=2))
    # The records date from T0: keep them whatever today is.
    settings = HistorySettings(
        database_url=SecretStr(database.url), retry_seconds=0.05, retention_days=36500
    )
    engine = open_engine(database.url)
    await migrate(engine)
    async with engine.begin() as connection:
        await write_batch(connection, written.records)
    await engine.dispose()

    writer = HistoryWriter(settings, registry=CollectorRegistry())
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop))
    writer.lead(spool)
    try:
        async with asyncio.timeout(30):
            await writer.wait_until(
                lambda: (
                    writer.summaries.loaded
                    and writer.buffered == 0
                    and not zk_client.get_children(spool_root(spool))
                )
            )
    finally:
        stop.set()
        await task
    history = writer.job_history("team.report")
    assert history is not None
    # the end written before the takeover is in the loaded counters, and only there
    assert (history.succeeded, history.failed) == (2, 1)
    assert await rows(database.url) == 3


async def test_dropped_units_leave_the_spool_too(
    running: Running, database: Database, request: pytest.FixtureRequest, zk_client: KazooClient
) -> None:
    writer, spool = running.writer, running.spool
    with outage(database, request):
        for n in range(15):
            writer.submit(spool_unit(zk_client, spool, launched(shard=n)))
        assert writer.buffered == 10
        await running.until(
            lambda: len(zk_client.get_children(spool_root(spool))) == 10,
            "the dropped units to leave the spool",
        )
    await running.until(
        lambda: writer.buffered == 0 and not zk_client.get_children(spool_root(spool)),
        "the buffer and the spool to drain",
    )
    assert running.metric("cloudjob_history_records_dropped_total") == 5
    assert await rows(database.url) == 10


async def test_a_job_created_again_after_its_removal_counts_from_zero(running: Running) -> None:
    writer = running.writer
    writer.submit(SpoolUnit.of([ended(shard=0), ended(shard=1, outcome=Outcome.FAILED)]))
    writer.submit(SpoolUnit.of([JobRemoved("team.report", "removal-1", T0 + timedelta(hours=1))]))
    later = T0 + timedelta(hours=2)
    writer.submit(SpoolUnit.of([launched(shard=0, fire=later), ended(shard=0, fire=later)]))
    await running.until(lambda: writer.buffered == 0, "the buffer to drain")

    def counted() -> tuple[int, int, list[int]]:
        history = writer.job_history("team.report")
        assert history is not None
        shards = [s.shard for run in history.recent for s in run.shards]
        return history.succeeded, history.failed, shards

    assert counted() == (1, 0, [0])
    writer.follow()
    writer.lead(running.spool)
    await running.until(lambda: writer.summaries.loaded, "the summaries to reload")
    assert counted() == (1, 0, [0])
    assert await rows(running.writer.settings.url()) == 3, "the removed job's runs stay"
