"""The history writer against real SQLite and PostgreSQL: it writes off the caller's
path, keeps exact summaries, and survives the database going away — buffering, then
dropping the oldest records, counting and logging what it dropped."""

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

from controller.history.database import open_engine
from controller.history.records import Outcome
from controller.history.schema import runs
from controller.history.settings import HistorySettings
from controller.history.spool import SpoolUnit
from controller.history.writer import HistoryWriter
from controller.mesos.history_spool import ZkSpool
from controller.state.layout import Layout
from devcluster.postgres import PostgresServer
from tests.history.conftest import Database
from tests.history.factories import T0, ended, launched

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
