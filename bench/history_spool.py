"""Benchmark: what spooling the run history in ZooKeeper costs per run.

Starts a real ZooKeeper, the Local Mesos emulator (a test tool, not a production
Mesos) and the scheduling service twice — once with no history, once with a spooled
one that measures the units handed over — schedules J transient script jobs of S
shards sharing one cron, lets each fire F times and prints, per shard run: the spool
units created (each one more operation in a transaction the change sends anyway, and
one pipelined delete once the writer has committed it), their bytes, and the
ZooKeeper transactions and operations of both runs.

    .venv/bin/python bench/history_spool.py [--jobs 20] [--shards 3] [--agents 5] [--fires 3]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kazoo.client import KazooClient
from launch_cycle import process_starts, script_app, script_job
from prometheus_client import CollectorRegistry

from controller.history.spool import Spool, SpoolUnit, encode
from controller.mesos.history_port import NoHistory, RunHistory
from controller.mesos.service import SchedulingService
from controller.mesos.settings import FrameworkSettings
from controller.state import AsyncLeadership, Layout, LeaderElection
from devcluster.mesos import AgentSpec, LocalMesos
from devcluster.zookeeper import ZooKeeperServer


class SpoolMeter(NoHistory):
    """A spooled history that only measures what it is handed."""

    def __init__(self) -> None:
        self.units = 0
        self.records = 0
        self.bytes = 0

    @property
    def spooled(self) -> bool:
        return True

    def submit(self, unit: SpoolUnit) -> None:
        self.units += 1
        self.records += len(unit.records)
        self.bytes += len(encode(unit.records))

    def lead(self, spool: Spool) -> None:
        pass


@dataclass
class Measured:
    runs: int
    transactions: int
    ops: int


async def measure(history: RunHistory, jobs: int, shards: int, agents: int, fires: int) -> Measured:
    root = Path(tempfile.mkdtemp(prefix="spool-bench-"))
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
    layout = Layout("bench")
    settings = FrameworkSettings(
        master=cluster.master_address,
        hostname="127.0.0.1",
        user="root",
        launch_batch_seconds=0.05,
        reconcile_interval_seconds=0,
        idle_refuse_seconds=1.0,
    )
    service = SchedulingService(
        client, settings, layout=layout, registry=CollectorRegistry(), history=history
    )
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
        # Every task's end, not only its start: wait until nothing is left running.
        while time.monotonic() < deadline:
            state = service.view().state
            if len(process_starts(out)) >= expected and not state.running():
                break
            await asyncio.sleep(0.5)
        counts = service.view().state.counts.snapshot()
        return Measured(len(process_starts(out)), counts.transactions, counts.transaction_ops)
    finally:
        await service.stop()
        election.stop()
        client.stop()
        client.close()
        cluster.stop()
        zookeeper.stop()


async def run(jobs: int, shards: int, agents: int, fires: int) -> None:
    plain = await measure(NoHistory(), jobs, shards, agents, fires)
    meter = SpoolMeter()
    spooled = await measure(meter, jobs, shards, agents, fires)
    print(f"{jobs} jobs x {shards} shards on {agents} agents, {fires} fires each")
    for name, result in (("no history", plain), ("spooled", spooled)):
        print(
            f"{name:>10}: {result.runs} shard runs, {result.transactions} transactions, "
            f"{result.ops} ops ({result.transactions / result.runs:.2f} tx, "
            f"{result.ops / result.runs:.2f} ops per run)"
        )
    runs = spooled.runs
    print(
        f"spool: {meter.units} units ({meter.units / runs:.2f} per run), "
        f"{meter.records} records, {meter.bytes} bytes ({meter.bytes / runs:.0f} per run, "
        f"{meter.bytes / max(meter.units, 1):.0f} per unit); deletes: one per unit"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--shards", type=int, default=3)
    parser.add_argument("--agents", type=int, default=5)
    parser.add_argument("--fires", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(run(args.jobs, args.shards, args.agents, args.fires))


if __name__ == "__main__":
    main()
