"""Benchmark: how long placement and a whole launch plan take for large cycles.

Pure CPU work, no I/O: `place` (shards onto agents, executor overhead, all-or-nothing)
and `plan_launch` (placement plus a TaskInfo and a running record per task). Each case
is a launch cycle of J jobs of S shards over A agents; the median of a few rounds is
printed with the per-task cost.

    .venv/bin/python bench/placement.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from controller.definitions import AppDefinition, JobDefinition
from controller.mesos.launcher import LaunchInputs, plan_launch
from controller.mesos.offers import HeldOffer
from controller.mesos.placement import AgentOffer, place
from controller.mesos.tasks import DEFAULT_EXECUTOR_OPTIONS, AppVersion, ExecutorId, app_version
from controller.mesos.work import WorkItem, work_item
from controller.resources import CloudAppSpec, CloudJobSpec
from controller.state.records import LaunchSource, ReadyEntry

ROUNDS = 5
# (jobs, shards per job, agents, strategy)
CASES = [
    (100, 10, 100, "binpack"),
    (100, 10, 100, "spread"),
    (500, 10, 500, "binpack"),
    (1000, 5, 200, "binpack"),
    (50, 100, 1000, "spread"),
    # 200 tasks over 2,000 and 10,000 agents (Fenzo's published 30-60 ms).
    (200, 1, 2000, "binpack"),
    (200, 1, 2000, "spread"),
    (200, 1, 10000, "binpack"),
    (200, 1, 10000, "spread"),
]


def _app(index: int) -> AppDefinition:
    spec = CloudAppSpec.model_validate(
        {
            "appURL": "http://127.0.0.1/app.tar.gz",
            "bootstrapScript": "bin/start.sh",
            "cpuCount": 0.5,
            "memoryMB": 128.0,
        }
    )
    return AppDefinition(namespace="bench", name=f"app{index}", spec=spec)


def _job(index: int, shards: int, strategy: str) -> JobDefinition:
    kind = (
        {"python": {"callable": "jobs.work:run"}}
        if index % 2
        else {"script": {"commandLine": "bin/job.sh --fast"}}
    )
    spec = CloudJobSpec.model_validate(
        {
            "appName": f"app{index % 10}",
            "cron": "0 * * * * ?",
            "shardingTotalCount": shards,
            "cpuCount": 0.1,
            "memoryMB": 64.0,
            "placementStrategy": strategy,
            **kind,
        }
    )
    return JobDefinition(namespace="bench", name=f"job{index}", spec=spec)


def _offers(agents: int, running: AppVersion) -> list[HeldOffer]:
    """Agents of 16 cpus; every third already runs an executor of version `running`."""
    return [
        HeldOffer(
            offer_id=f"offer-{n}",
            agent_id=f"agent-{n}",
            hostname=f"host-{n}",
            cpus=16.0,
            mem=65536.0,
            resources=(
                {"name": "cpus", "type": "SCALAR", "scalar": {"value": 16.0}},
                {"name": "mem", "type": "SCALAR", "scalar": {"value": 65536.0}},
            ),
            executors=frozenset({ExecutorId.of(running, f"agent-{n}")})
            if n % 3 == 0
            else frozenset(),
            received=0.0,
        )
        for n in range(agents)
    ]


def _median_ms(run: Callable[[], object]) -> float:
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def _case(
    apps: dict[str, AppDefinition], jobs_n: int, shards: int, agents_n: int, strategy: str
) -> str:
    jobs = {j.key: j for j in (_job(i, shards, strategy) for i in range(jobs_n))}
    items: list[WorkItem] = [
        work_item(j, apps[j.app_key], LaunchSource.READY, tuple(range(shards)))
        for j in jobs.values()
    ]
    offers = _offers(agents_n, app_version(apps["bench.app0"], DEFAULT_EXECUTOR_OPTIONS))
    agent_offers = [
        AgentOffer(o.agent_id, o.hostname, o.cpus, o.mem, frozenset(e.version for e in o.executors))
        for o in offers
    ]
    placed = len(place(items, agent_offers).assignments)
    place_ms = _median_ms(lambda: place(items, agent_offers))
    now = datetime.now(UTC)
    inputs = LaunchInputs(
        jobs=jobs,
        apps=apps,
        ready={k: ReadyEntry(count=1, fires=(now,)) for k in jobs},
        failover={},
        running=[],
        disabled_jobs=(),
        disabled_apps=(),
        unsettled_jobs=(),
    )
    plan_ms = _median_ms(lambda: plan_launch(inputs, offers, agent_offers, now=now))
    tasks = jobs_n * shards
    return (
        f"{jobs_n:>5} {shards:>6} {agents_n:>6} {strategy:>8} {tasks:>6} "
        f"{place_ms:>9.1f} {place_ms * 1000 / tasks:>8.1f} {plan_ms:>8.1f} "
        f"{plan_ms * 1000 / tasks:>8.1f} {placed:>7}"
    )


def main() -> None:
    apps = {a.key: a for a in (_app(i) for i in range(10))}
    print(
        f"{'jobs':>5} {'shards':>6} {'agents':>6} {'strategy':>8} {'tasks':>6} "
        f"{'place ms':>9} {'us/task':>8} {'plan ms':>8} {'us/task':>8} {'placed':>7}"
    )
    for case in CASES:
        print(_case(apps, *case))


if __name__ == "__main__":
    main()
