"""Benchmark: from cron fire to ACCEPT and to the task's start, on the local Mesos.

Starts a real ZooKeeper, the Local Mesos emulator (a test tool, not a production
Mesos) and the scheduling service, schedules J transient script jobs of S shards that
share one cron, lets it fire a few times and prints:

- fire → ACCEPT (`cloudjob_fire_to_accept_seconds`, observed by the framework engine: mean
  and bucket counts);
- fire → process start, per task, as the job script recorded it (p50/p95/max);
- launch cycles, ACCEPT calls, tasks launched, ZooKeeper transactions.

    .venv/bin/python bench/launch_cycle.py [--jobs 100] [--shards 2] [--agents 10] [--fires 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tarfile
import tempfile
import time
from datetime import datetime
from pathlib import Path

from kazoo.client import KazooClient
from prometheus_client import CollectorRegistry

from controller.definitions import AppDefinition, JobDefinition
from controller.mesos.service import SchedulingService
from controller.mesos.settings import FrameworkSettings
from controller.resources import CloudAppSpec, CloudJobSpec
from controller.state import AsyncLeadership, Layout, LeaderElection
from devcluster.mesos import AgentSpec, LocalMesos
from devcluster.zookeeper import ZooKeeperServer

SCRIPT = """#!/bin/sh
date +%s.%N > "$1/$$.start.tmp"
printf '%s' "$2" > "$1/$$.json"
mv "$1/$$.start.tmp" "$1/$$.start"
"""
CRON = "*/5 * * * * ?"


def script_app(root: Path) -> AppDefinition:
    (root / "bin").mkdir()
    (root / "bin" / "job.sh").write_text(SCRIPT)
    (root / "bin" / "job.sh").chmod(0o755)
    tarball = root / "app.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(root / "bin", arcname="bin")
    spec = CloudAppSpec.model_validate(
        {"appURL": str(tarball), "bootstrapScript": "bin/start.sh", "cpuCount": 0.1}
    )
    return AppDefinition(namespace="bench", name="app", spec=spec)


def script_job(index: int, shards: int, out: Path) -> JobDefinition:
    spec = CloudJobSpec.model_validate(
        {
            "appName": "app",
            "cron": CRON,
            "shardingTotalCount": shards,
            "cpuCount": 0.01,
            "memoryMB": 1.0,
            "script": {"commandLine": f"bin/job.sh {out}"},
        }
    )
    return JobDefinition(namespace="bench", name=f"job{index}", spec=spec)


def process_starts(out: Path) -> list[float]:
    latencies = []
    for context in out.glob("*.json"):
        start = context.with_suffix(".start")
        if not start.exists():
            continue
        fire = json.loads(context.read_text())["fire_time"]
        fired = datetime.fromisoformat(fire).timestamp()
        latencies.append(float(start.read_text()) - fired)
    return latencies


async def run(jobs: int, shards: int, agents: int, fires: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="launch-bench-"))
    out = root / "out"
    out.mkdir()
    zookeeper = ZooKeeperServer()
    zookeeper.start()
    cluster = LocalMesos(
        agents=[AgentSpec(cpus=16, mem=16384) for _ in range(agents)],
        heartbeat_interval=5.0,
        offer_refresh=0.2,
    ).start()
    client = KazooClient(hosts=zookeeper.hosts)
    client.start()
    registry = CollectorRegistry()
    layout = Layout("bench")
    settings = FrameworkSettings(
        master=cluster.master_address,
        hostname="127.0.0.1",
        user="root",
        launch_batch_seconds=0.05,
        reconcile_interval_seconds=0,
        idle_refuse_seconds=1.0,
    )
    service = SchedulingService(client, settings, layout=layout, registry=registry)
    leadership = AsyncLeadership(asyncio.get_running_loop())
    election = LeaderElection(client, leadership, layout=layout)
    election.start()
    try:
        await leadership.changes.get()
        await service.start(election)
        await service.put_app(script_app(root))
        for index in range(jobs):
            await service.schedule(script_job(index, shards, out))
        expected = jobs * shards * fires
        deadline = time.monotonic() + 5 * fires + 60
        while time.monotonic() < deadline:
            if len(process_starts(out)) >= expected:
                break
            await asyncio.sleep(0.5)
        for index in range(jobs):
            await service.unschedule(f"bench.job{index}")

        def sample(name: str, **labels: str) -> float:
            return registry.get_sample_value(name, labels or None) or 0.0

        count = sample("cloudjob_fire_to_accept_seconds_count")
        total = sample("cloudjob_fire_to_accept_seconds_sum")
        print(f"{jobs} jobs x {shards} shards on {agents} agents, {fires} fires of {CRON!r}")
        print(f"fire -> ACCEPT: {count:.0f} tasks, mean {total / max(count, 1) * 1000:.0f} ms")
        for bound in ("0.1", "0.25", "0.5", "1.0", "2.0", "5.0"):
            below = sample("cloudjob_fire_to_accept_seconds_bucket", le=bound)
            print(f"  <= {bound:>4} s: {below:.0f}")
        starts = sorted(process_starts(out))
        if starts:
            p95 = starts[int(len(starts) * 0.95) - 1] if len(starts) >= 20 else starts[-1]
            print(
                f"fire -> process start: {len(starts)} tasks, p50 "
                f"{statistics.median(starts) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
                f"max {starts[-1] * 1000:.0f} ms"
            )
        counts = service.view().state.counts.snapshot()
        print(
            f"launch cycles {sample('cloudjob_launch_cycles_total'):.0f}, ACCEPT calls "
            f"{sample('cloudjob_accept_calls_total'):.0f}, tasks launched "
            f"{sample('cloudjob_tasks_launched_total', source='READY'):.0f}, ZooKeeper "
            f"transactions {counts.transactions} ({counts.transaction_ops} ops)"
        )
    finally:
        await service.stop()
        election.stop()
        client.stop()
        client.close()
        cluster.stop()
        zookeeper.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument("--fires", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(run(args.jobs, args.shards, args.agents, args.fires))


if __name__ == "__main__":
    main()
