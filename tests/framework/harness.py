"""Shared pieces of the framework's integration tests: the local Mesos timings (the
`start_cluster` fixture in conftest.py starts clusters with them), a leader, a running
`SchedulingService`, a tiny app whose script job records how it was called.

Everything here is real: ZooKeeper (the session fixture), the local Mesos emulator's
master and agents running real processes, pymesos on the wire.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tarfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient
from prometheus_client import CollectorRegistry

from controller.definitions import AppDefinition, JobDefinition
from controller.mesos.calls import MesosConnection
from controller.mesos.driver import MesosDriver
from controller.mesos.events import EventSink
from controller.mesos.service import SchedulingService
from controller.mesos.settings import FrameworkSettings
from controller.operations import EventKind, RuntimeEvent
from controller.resources import CloudAppSpec, CloudJobSpec
from controller.state import AsyncLeadership, Layout, LeaderElection
from devcluster.mesos import AgentSpec, LocalMesos
from tests.waiting import async_wait_for

NAMESPACE = "ns"

# Records its arguments and when it ran, then sleeps for "$2" seconds. If the file
# "fail-next" exists in the out dir, the first run to grab it exits 3 instead. The
# .json and .end files appear whole (renamed into place); .argc and .start are
# written before .json, so a run is complete to read once its .json exists.
# argv: <out dir> <seconds> <sharding context JSON>
JOB_SCRIPT = """#!/bin/sh
out="$1"
name="$out/$(date +%s%N)-$$"
printf '%s\\n' "$#" > "$name.argc"
date +%s.%N > "$name.start"
printf '%s' "$3" > "$name.tmp"
mv "$name.tmp" "$name.json"
if mv "$out/fail-next" "$name.failed" 2>/dev/null; then exit 3; fi
sleep "$2"
date +%s.%N > "$name.tmp"
mv "$name.tmp" "$name.end"
"""
ROOT = Path(__file__).resolve().parents[2]
DEMO_APP = ROOT / "examples" / "demo-app"
NEVER = "0 0 0 1 1 ? 2099"


# Starts a local Mesos with these tests' timings (the `start_cluster` fixture).
StartCluster = Callable[..., LocalMesos]
# The emulator's timings for these tests.
CLUSTER_OPTIONS: dict[str, Any] = {
    "heartbeat_interval": 1.0,
    "offer_refresh": 0.2,
    "default_refuse_seconds": 1.0,
    "status_update_retry": 1.0,
    "status_update_retry_max": 2.0,
}


def framework_settings(master: str, **overrides: Any) -> FrameworkSettings:
    values: dict[str, Any] = {
        "master": master,
        "user": "root",
        "hostname": "127.0.0.1",
        "launch_batch_seconds": 0.05,
        "offer_hold_seconds": 1.0,
        "decline_refuse_seconds": 0.5,
        "idle_refuse_seconds": 1.0,
        "reconcile_interval_seconds": 0,
        "reconcile_backoff_seconds": 0.3,
        "reconcile_backoff_max_seconds": 1.0,
        "misfire_threshold_seconds": 5.0,
    }
    values.update(overrides)
    return FrameworkSettings(**values)


def build_app(root: Path) -> Path:
    """A tarball holding bin/job.sh (above); returns its path."""
    staging = root / "app"
    (staging / "bin").mkdir(parents=True)
    script = staging / "bin" / "job.sh"
    script.write_text(JOB_SCRIPT)
    script.chmod(0o755)
    tarball = root / "app.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(staging / "bin", arcname="bin")
    return tarball


def build_demo_app(root: Path) -> Path:
    """The demo app package (real executor), built by its own build script."""
    output = root / "demo-app.tar.gz"
    subprocess.run([str(DEMO_APP / "build.sh"), str(output)], check=True, capture_output=True)
    return output


def demo_app_definition(tarball: Path, name: str = "demo", **spec: Any) -> AppDefinition:
    """The demo app, its executor started with this test run's Python."""
    fields: dict[str, Any] = {
        "bootstrapScript": f"CLOUDJOB_PYTHON={sys.executable} bin/start-executor.sh",
        "cpuCount": 0.5,
        "memoryMB": 64.0,
    }
    fields.update(spec)
    return app_definition(tarball, name, **fields)


def python_job(name: str, *, app: str = "demo", shards: int = 1, **spec: Any) -> JobDefinition:
    fields: dict[str, Any] = {
        "appName": app,
        "cron": NEVER,
        "shardingTotalCount": shards,
        "cpuCount": 0.25,
        "memoryMB": 32.0,
        "python": {"callable": "demo_jobs.simple:run"},
    }
    fields.update(spec)
    return JobDefinition(namespace=NAMESPACE, name=name, spec=CloudJobSpec.model_validate(fields))


def app_definition(tarball: Path, name: str = "app", **spec: Any) -> AppDefinition:
    fields: dict[str, Any] = {
        "appURL": str(tarball),
        "bootstrapScript": "bin/start.sh",
        "cpuCount": 0.5,
        "memoryMB": 64.0,
    }
    fields.update(spec)
    return AppDefinition(namespace=NAMESPACE, name=name, spec=CloudAppSpec.model_validate(fields))


def script_job(
    name: str,
    out: Path,
    *,
    cron: str = "*/2 * * * * ?",
    shards: int = 3,
    seconds: float = 0.0,
    app: str = "app",
    **spec: Any,
) -> JobDefinition:
    out.mkdir(parents=True, exist_ok=True)
    fields: dict[str, Any] = {
        "appName": app,
        "cron": cron,
        "shardingTotalCount": shards,
        "cpuCount": 0.5,
        "memoryMB": 32.0,
        "script": {"commandLine": f"bin/job.sh {out} {seconds}"},
    }
    fields.update(spec)
    return JobDefinition(namespace=NAMESPACE, name=name, spec=CloudJobSpec.model_validate(fields))


@dataclass(frozen=True)
class Run:
    """One shard execution as the job script recorded it."""

    context: dict[str, Any]
    argc: int
    started: float
    ended: float | None

    @property
    def shard(self) -> int:
        return int(self.context["sharding_item"])

    @property
    def fire_time(self) -> str | None:
        return self.context.get("fire_time")

    @property
    def task_id(self) -> str:
        return str(self.context["task_id"])


def runs(out: Path) -> list[Run]:
    found = []
    for context_file in sorted(out.glob("*.json")):
        stem = context_file.with_suffix("")
        end = stem.with_suffix(".end")
        found.append(
            Run(
                context=json.loads(context_file.read_text()),
                argc=int(stem.with_suffix(".argc").read_text()),
                started=float(stem.with_suffix(".start").read_text()),
                ended=float(end.read_text()) if end.exists() else None,
            )
        )
    return found


def finished(out: Path) -> list[Run]:
    return [r for r in runs(out) if r.ended is not None]


@dataclass
class Framework:
    """A leader-elected `SchedulingService`, the Mesos connections it was given, and
    what it reported."""

    service: SchedulingService
    election: LeaderElection
    registry: CollectorRegistry
    events: list[RuntimeEvent] = field(default_factory=list)
    connections: list[MesosDriver] = field(default_factory=list)

    @property
    def mesos(self) -> MesosConnection:
        """The current term's connection: calls on it go out as this framework's."""
        assert self.connections, "no term has started"
        return self.connections[-1]

    def metric(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels or None)
        return value or 0.0

    def kinds(self, job_key: str) -> list[EventKind]:
        return [e.kind for e in self.events if e.job_key == job_key]


@asynccontextmanager
async def running_framework(
    zookeeper_hosts: str,
    namespace: str,
    settings: FrameworkSettings,
    *,
    driver: type[MesosDriver] = MesosDriver,
) -> AsyncIterator[Framework]:
    """Elect a leader in `namespace`, start the service with it, stop both afterwards.

    Each term talks to Mesos through a `driver` (a subclass may fail calls on purpose),
    which the framework keeps in `connections`."""
    client = KazooClient(hosts=zookeeper_hosts, timeout=5.0)
    await asyncio.to_thread(client.start, 10)
    leadership = AsyncLeadership(asyncio.get_running_loop())
    election = LeaderElection(client, leadership, layout=Layout(namespace))
    election.start()
    registry = CollectorRegistry()
    connections: list[MesosDriver] = []

    def connect(
        sink: EventSink, may_call: Callable[[], bool], may_subscribe: Callable[[], bool]
    ) -> MesosDriver:
        connection = driver(
            settings,
            sink,
            asyncio.get_running_loop(),
            may_call=may_call,
            may_subscribe=may_subscribe,
        )
        connections.append(connection)
        return connection

    service = SchedulingService(
        client, settings, layout=Layout(namespace), registry=registry, connect=connect
    )
    framework = Framework(service, election, registry, connections=connections)

    async def collect() -> None:
        while True:
            framework.events.append(await service.events.get())

    collector = asyncio.create_task(collect())
    try:
        change = await asyncio.wait_for(leadership.changes.get(), 20)
        assert change.leading, change
        await service.start(election)
        yield framework
    finally:
        collector.cancel()
        await service.stop()
        await asyncio.to_thread(election.stop)
        await asyncio.to_thread(client.stop)
        await asyncio.to_thread(client.close)


def framework_state(cluster: LocalMesos) -> dict[str, Any]:
    frameworks = cluster.state()["frameworks"]
    assert len(frameworks) == 1, frameworks
    return dict(frameworks[0])


def live_tasks(cluster: LocalMesos) -> list[dict[str, Any]]:
    return [t for f in cluster.state()["frameworks"] for t in f["tasks"]]


async def subscribed(framework: Framework) -> None:
    await async_wait_for(
        lambda: framework.service.active and framework.service.view().subscribed,
        what="the framework to subscribe",
    )


@asynccontextmanager
async def every_second(
    zookeeper_hosts: str,
    zk_namespace: str,
    tmp_path: Path,
    start_cluster: StartCluster,
    *,
    seconds: float = 0.0,
) -> AsyncIterator[tuple[Framework, Path]]:
    """A framework running one job every second, each run taking `seconds`; the
    framework and the directory the runs record themselves in."""
    cluster = start_cluster([AgentSpec(cpus=4, mem=4096)])
    settings = framework_settings(cluster.master_address, misfire_threshold_seconds=1.0)
    out = tmp_path / "out"
    async with running_framework(zookeeper_hosts, zk_namespace, settings) as fw:
        await subscribed(fw)
        await fw.service.put_app(app_definition(build_app(tmp_path)))
        await fw.service.schedule(
            script_job("steady", out, cron="* * * * * ?", shards=1, seconds=seconds)
        )
        yield fw, out
