"""Benchmark: how long the API answers each console page asks for take with 10,000
jobs in ZooKeeper and a million runs (and as many transitions) in the history.

A real ZooKeeper (the Debian package, as the tests start it) holds 10,000 jobs of 50
namespaces, a third of them with a shard running; the history (SQLite, or with
`--postgresql` a PostgreSQL from the Debian package, as the tests start it) holds the
runs, spread over the last 30 days, 1% of them failed. The runs are inserted into a
database of revision 0002, which is then upgraded (timed): as an installation that
already holds them would be, counted per hour and day by the upgrade.

Each page's requests go through `HistoryApi.answer` (what the health endpoint calls)
twice: as the leader answers them (from its store's memory) and as a standby does
(from its follower of ZooKeeper, whose first read is timed before); three rounds each,
the median and the slowest printed, and each page's total (its requests run one after
the other here; the browser sends them at once).
Run: `.venv/bin/python bench/console_pages.py [jobs] [runs] [--postgresql]`.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient

from controller.api.server import HistoryApi
from controller.definitions import AppDefinition, JobDefinition
from controller.history.database import migrate, open_engine, stored
from controller.history.schema import runs, transitions
from controller.operations import ReconcileKind
from controller.state import LaunchSource, Layout, RunningTask, StateStore
from controller.state.view import View
from devcluster.postgres import PostgresServer
from devcluster.zookeeper import ZooKeeperServer

NOW = datetime.now(UTC).replace(microsecond=0)
NAMESPACES = 50
ROUNDS = 3
CHUNK = 20_000


class Fence:
    def __init__(self, client: KazooClient) -> None:
        self.path = f"/bench-fence-{uuid.uuid4().hex[:8]}"
        client.create(self.path)

    def token(self) -> str:
        return self.path

    def confirm(self, timeout: float) -> bool:
        return True  # the benchmark leads throughout


def job(n: int) -> JobDefinition:
    return JobDefinition(
        namespace=f"team-{n % NAMESPACES}",
        name=f"job-{n}",
        spec={
            "appName": "app",
            "cron": "0 0/5 * * * ?",
            "shardingTotalCount": 3,
            "cpuCount": 0.1,
            "memoryMB": 32,
            "script": {"commandLine": "true"},
        },
    )


def seed_zookeeper(client: KazooClient, layout: Layout, jobs: int) -> StateStore:
    store = StateStore.on_kazoo(client, Fence(client), layout=layout)
    store.load()
    for n in range(NAMESPACES):
        spec = {"appURL": "http://repo/app.tar.gz", "bootstrapScript": "bin/start"}
        store.put_app(AppDefinition(namespace=f"team-{n}", name="app", spec=spec))
    running = []
    for n in range(jobs):
        definition = job(n)
        store.put_job(definition)
        if n % 3 == 0:
            running.append(
                RunningTask(
                    task_id=f"{definition.key}@-@0@-@READY@-@agent-1@-@u{n}",
                    job_key=definition.key,
                    shard=0,
                    source=LaunchSource.READY,
                    agent_id="agent-1",
                    hostname="host-1",
                    launched_at=NOW,
                )
            )
    for start in range(0, len(running), 500):
        batch = running[start : start + 500]
        store.fire([task.job_key for task in batch], NOW)
        store.commit_launch(batch)
    return store


def rows(count: int, jobs: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    span = timedelta(days=30) / count
    run_rows, transition_rows = [], []
    for i in range(count):
        n = i % jobs
        key, namespace, name = (
            f"team-{n % NAMESPACES}.job-{n}",
            f"team-{n % NAMESPACES}",
            f"job-{n}",
        )
        started = stored(NOW - timedelta(days=30) + i * span)
        assert started is not None
        task = f"{key}@-@0@-@READY@-@agent-1@-@r{i}"
        failed = i % 100 == 0
        run_rows.append(
            {
                "run_key": task,
                "job_key": key,
                "namespace": namespace,
                "job_name": name,
                "shard": 0,
                "task_id": task,
                "source": "READY",
                "agent_id": "agent-1",
                "hostname": "host-1",
                "fire_time": started,
                "started_at": started,
                "ended_at": started + timedelta(seconds=5),
                "outcome": "failed" if failed else "succeeded",
                "state": "TASK_FAILED" if failed else "TASK_FINISHED",
                "message": "exit status 1" if failed else None,
            }
        )
        transition_rows.append(
            {
                "task_id": task,
                "job_key": key,
                "namespace": namespace,
                "shard": 0,
                "state": "TASK_RUNNING",
                "at": started,
                "source": "SOURCE_EXECUTOR",
            }
        )
    return run_rows, transition_rows


async def seed_history(url: str, count: int, jobs: int) -> float:
    """Insert the runs at revision 0002, then upgrade; the upgrade's seconds."""
    engine = open_engine(url)
    await migrate(engine, "0002")
    for start in range(0, count, CHUNK):
        run_rows, transition_rows = rows(min(CHUNK, count - start), jobs)
        for row in run_rows:
            row["run_key"] += f"-{start}"
        async with engine.begin() as connection:
            await connection.execute(runs.insert(), run_rows)
            await connection.execute(transitions.insert(), transition_rows)
    began = time.monotonic()
    await migrate(engine)
    upgraded = time.monotonic() - began
    await engine.dispose()
    return upgraded


def pages() -> dict[str, list[tuple[str, dict[str, str]]]]:
    job_of = {"namespace": "team-7", "job": "job-7"}
    return {
        "overview": [
            ("statistics", {}),
            ("jobs", {"limit": "50"}),
            ("apps", {"limit": "100"}),
            ("queues", {}),
            ("runs", {"outcome": "failed", "limit": "10"}),
        ],
        "overview, one namespace": [
            ("statistics", {"namespace": "team-7"}),
            ("jobs", {"namespace": "team-7", "limit": "50"}),
            ("queues", {"namespace": "team-7"}),
            ("runs", {"namespace": "team-7", "outcome": "failed", "limit": "10"}),
        ],
        "job": [
            ("jobs", job_of),
            ("runs", {**job_of, "limit": "25"}),
            ("transitions", {**job_of, "limit": "25"}),
        ],
        "runs": [("runs", {"limit": "50"})],
        "runs, failed of a namespace": [
            ("runs", {"namespace": "team-7", "outcome": "failed", "limit": "50"})
        ],
        "statistics, per minute": [
            ("statistics", {}),
            ("statistics/results", {"interval": "minute"}),
        ],
        "statistics, per day": [
            ("statistics", {}),
            ("statistics/results", {"interval": "day"}),
        ],
    }


def refuse(kind: ReconcileKind, app: str | None) -> int:
    raise RuntimeError("not asked")


def measure(api: HistoryApi, role: str) -> None:
    for page, requests in pages().items():
        total = 0.0
        for path, query in requests:
            times = []
            for _ in range(ROUNDS):
                started = time.perf_counter()
                status, body = api.answer("GET", f"/api/v1/{path}", query)
                times.append(time.perf_counter() - started)
                assert status == 200, (path, query, body)
            median, slowest = statistics.median(times) * 1000, max(times) * 1000
            total += median
            arguments = "&".join(f"{k}={v}" for k, v in query.items())
            shown = f"{path}?{arguments}" if arguments else path
            print(f"{role:8} {page:28} {shown:56} {median:8.0f} {slowest:8.0f}")
        print(f"{role:8} {page:28} {'(all, one after the other)':56} {total:8.0f}")


def first_answer(api: HistoryApi) -> float:
    """Seconds until the standby's follower has read the tree and answers."""
    began = time.monotonic()
    while api.answer("GET", "/api/v1/jobs", {"limit": "1"})[0] != 200:
        pass
    return time.monotonic() - began


def main(jobs: int, count: int, postgresql: bool) -> None:
    zookeeper = ZooKeeperServer()
    zookeeper.start()
    client = KazooClient(hosts=zookeeper.hosts, timeout=10.0)
    client.start(timeout=20)
    work = Path(tempfile.mkdtemp(prefix="console-bench-"))
    postgres = PostgresServer() if postgresql else None
    if postgres is not None:
        postgres.start()
        url = postgres.create_database("bench")
    else:
        url = f"sqlite+aiosqlite:///{work / 'history.db'}"
    layout = Layout(f"bench-{uuid.uuid4().hex[:8]}")
    try:
        began = time.monotonic()
        store = seed_zookeeper(client, layout, jobs)
        upgraded = asyncio.run(seed_history(url, count, jobs))
        print(f"seeded {jobs} jobs and {count} runs in {time.monotonic() - began:.0f} s")
        print(f"upgrading the history to the newest schema took {upgraded:.1f} s")
        print(f"{'role':8} {'page':28} {'request':56} {'median':>8} {'slowest':>8}  (ms)")
        leading: list[Callable[[], View | None]] = [store.snapshot, lambda: None]
        for role, view in zip(("leader", "standby"), leading, strict=True):
            api = HistoryApi(
                database_url=url,
                timeout=10.0,
                zookeeper=lambda: client,
                layout=layout,
                reconcile=refuse,
                leading=view,
            )
            api.start()
            try:
                if role == "standby":
                    print(f"standby: the follower's first read took {first_answer(api):.1f} s")
                measure(api, role)
            finally:
                api.stop()
    finally:
        client.stop()
        zookeeper.stop()
        if postgres is not None:
            postgres.stop()


if __name__ == "__main__":
    numbers = [int(a) for a in sys.argv[1:] if not a.startswith("--")]
    main(
        numbers[0] if numbers else 10_000,
        numbers[1] if len(numbers) > 1 else 1_000_000,
        "--postgresql" in sys.argv,
    )
