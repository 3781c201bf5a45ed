"""What the console's browser tests run against: the controller's HTTP endpoints (the
history API and the console's built files) over a real ZooKeeper holding jobs and
queues and a real SQLite history holding runs, and Debian's Chromium driven by
Playwright.

The history is written through `HistoryWriter`, as the controller writes it; the
queues through `StateStore`, as the scheduler writes them. Screenshots go to
`artifacts/console/` (git-ignored), one per page.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, sync_playwright
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from controller.api.console import STATIC, ConsoleAssets
from controller.api.server import HistoryApi
from controller.definitions import AppDefinition, JobDefinition
from controller.endpoints import Endpoints, Health
from controller.history.records import Outcome, RunEnded, RunLaunched, RunPlace, Transition
from controller.history.settings import HistorySettings
from controller.history.spool import SpoolUnit
from controller.history.writer import HistoryWriter
from controller.mesos.history_spool import ZkSpool
from controller.operations import ReconcileKind
from controller.state import Layout, StateStore
from tests.history.factories import queue_every_way

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "console"
# Without the background-networking flags Chromium keeps calling home, which on a
# closed network means a stream of failing connections.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPORT_RUNS = 10
"""Runs of team/report, one a minute, 3 shards each: 30 shard runs, more than a page."""


class NodeFence:
    """The write fence of a state store: a node that exists while we 'lead'."""

    def __init__(self, client: KazooClient) -> None:
        self.path = f"/fence-{uuid.uuid4().hex[:8]}"
        client.create(self.path)

    def token(self) -> str:
        return self.path


def _app(namespace: str) -> AppDefinition:
    return AppDefinition(
        namespace=namespace,
        name="app",
        spec={"appURL": f"http://repo/{namespace}/app.tar.gz", "bootstrapScript": "bin/start"},
    )


def _job(namespace: str, name: str, cron: str, shards: int) -> JobDefinition:
    return JobDefinition(
        namespace=namespace,
        name=name,
        spec={
            "appName": "app",
            "cron": cron,
            "shardingTotalCount": shards,
            "cpuCount": 0.1,
            "memoryMB": 32,
            "failover": True,
            "description": f"the {name} job",
            "script": {"commandLine": "bin/run"},
        },
    )


def seed_queues(client: KazooClient, layout: Layout, now: datetime) -> None:
    """team/report: a shard running on host-1, a shard in failover, a run pending;
    ops/cleanup: scheduled; ops/archive: disabled."""
    store = StateStore.on_kazoo(client, NodeFence(client), layout=layout)
    store.load()
    for namespace in ("team", "ops"):
        store.put_app(_app(namespace))
    report = _job("team", "report", "0 * * * * ?", 3)
    store.put_job(report)
    store.put_job(_job("ops", "cleanup", "0 0 3 * * ?", 1))
    store.put_job(_job("ops", "archive", "0 0 4 * * ?", 1))
    store.disable_job("ops.archive")
    queue_every_way(store, report.key, now, "live")
    store.fire([report.key], now + timedelta(seconds=1))


def _run(job: str, shard: int, fire: datetime, outcome: Outcome) -> list[Any]:
    place = RunPlace(
        job_key=job,
        shard=shard,
        task_id=f"{job}@-@{shard}@-@READY@-@agent-{shard}@-@{fire.timestamp():.0f}",
        source="READY",
        agent_id=f"agent-{shard}",
        hostname=f"host-{shard}",
        executor_id=None,
        fire_time=fire,
        launched_at=fire + timedelta(seconds=1),
    )
    failed = outcome is Outcome.FAILED
    sandbox = f"slaves/agent-{shard}/frameworks/f/executors/{job}/runs/latest"
    return [
        RunLaunched(run_key=place.task_id, place=place),
        Transition(
            task_id=place.task_id,
            job_key=job,
            shard=shard,
            state="TASK_RUNNING",
            at=place.launched_at + timedelta(seconds=1),
            source="SOURCE_EXECUTOR",
            agent_id=place.agent_id,
            hostname=place.hostname,
        ),
        RunEnded(
            run_key=place.task_id,
            place=place,
            started_at=place.launched_at,
            ended_at=place.launched_at + timedelta(seconds=4 + shard),
            outcome=outcome,
            state={"succeeded": "TASK_FINISHED", "failed": "TASK_FAILED"}.get(
                outcome.value, "TASK_KILLED"
            ),
            message="Command exited with status 3" if failed else None,
            exit_status=3 if failed else None,
            stderr_tail="Traceback: disk full\nboom" if failed else None,
            sandbox=sandbox,
        ),
    ]


def history_records(now: datetime) -> list[Any]:
    """team/report ran once a minute for REPORT_RUNS minutes until two minutes ago (no
    run ends within the last minute, whose count would change while a test reads it),
    shard 1 of the third-newest run failed; ops/cleanup ran once, half an hour ago, and
    was killed."""
    minute = now.replace(second=0, microsecond=0)
    records: list[Any] = []
    for n in reversed(range(REPORT_RUNS)):
        fire = minute - timedelta(minutes=n + 2)
        for shard in range(3):
            outcome = Outcome.FAILED if (n, shard) == (2, 1) else Outcome.SUCCEEDED
            records += _run("team.report", shard, fire, outcome)
    records += _run("ops.cleanup", 0, minute - timedelta(minutes=30), Outcome.KILLED)
    return records


async def _write(writer: HistoryWriter, records: list[Any], spool: ZkSpool) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop))
    writer.lead(spool)
    writer.submit(SpoolUnit.of(records))
    await writer.wait_until(lambda: writer.buffered == 0 and writer.summaries.loaded)
    stop.set()
    await task


def _in_a_thread(records: list[Any], writer: HistoryWriter, spool: ZkSpool) -> None:
    """Writes the records on an event loop of its own: Playwright's sync API keeps one
    marked running on the test's thread."""
    failure: list[BaseException] = []

    def write() -> None:
        try:
            asyncio.run(_write(writer, records, spool))
        except BaseException as error:
            failure.append(error)

    thread = threading.Thread(target=write)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


@dataclass(frozen=True)
class Site:
    url: str
    """The endpoints' base URL, e.g. http://127.0.0.1:41234"""
    api: HistoryApi

    def get(self, path: str, **query: str) -> Any:
        status, body = self.api.answer("GET", f"/api/v1/{path}", query)
        assert status == 200, body
        return body


def _refuse_reconcile(kind: ReconcileKind, app: str | None) -> int:
    raise AssertionError("the console never asks for a reconciliation")


@pytest.fixture
def site(zk_client: KazooClient, zk_namespace: str, tmp_path: Path) -> Iterator[Site]:
    if not (STATIC / "index.html").is_file():
        pytest.fail(f"the console is not built in {STATIC}: run scripts/setup")
    now = datetime.now(UTC)
    layout = Layout(zk_namespace)
    seed_queues(zk_client, layout, now)
    url = f"sqlite+aiosqlite:///{tmp_path / 'history.db'}"
    settings = HistorySettings(database_url=SecretStr(url), retry_seconds=0.05)
    _in_a_thread(
        history_records(now),
        HistoryWriter(settings, registry=CollectorRegistry()),
        ZkSpool(zk_client, layout),
    )
    api = HistoryApi(
        database_url=url,
        timeout=5.0,
        zookeeper=lambda: zk_client,
        layout=layout,
        reconcile=_refuse_reconcile,
    )
    endpoints = Endpoints(
        host="127.0.0.1",
        health_port=0,
        metrics_port=0,
        registry=CollectorRegistry(),
        snapshot=lambda: Health("leader", "connected", True, "test", 1),
        api=api.answer,
        console=ConsoleAssets(enabled=True).answer,
    )
    api.start()
    endpoints.start()
    yield Site(f"http://127.0.0.1:{endpoints.health_port}", api)
    endpoints.stop()
    api.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    # Per module, not per session: while Playwright's sync API is open it keeps an
    # event loop marked running on the test thread, which every asyncio test after
    # the console's would trip over.
    if not CHROMIUM.is_file():
        pytest.fail(f"no Chromium at {CHROMIUM}: scripts/setup installs Debian's chromium")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            timezone_id="UTC",
            viewport={"width": 1280, "height": 900},
        )
        yield context
        context.close()


@dataclass
class Tab:
    """A browser page and everything it logged as an error."""

    page: Page
    errors: list[str]

    def open(self, site: Site, fragment: str = "") -> Page:
        self.page.goto(f"{site.url}/console/{fragment}")
        return self.loaded()

    def loaded(self) -> Page:
        """Waits until the page the URL names has its data (after a link or a filter)."""
        self.page.wait_for_function(
            "() => document.querySelector('.content[data-loaded]')?.dataset.route === location.hash"
        )
        return self.page

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture
def tab(browser: BrowserContext) -> Iterator[Tab]:
    page = browser.new_page()
    errors: list[str] = []

    def logged(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            errors.append(f"{message.type}: {message.text}")

    page.on("console", logged)
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    yield Tab(page, errors)
    page.close()
