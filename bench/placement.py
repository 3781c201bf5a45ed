"""Benchmark: how long placement and a whole launch plan take for large cycles.

Pure CPU work, no I/O: `place` (shards onto agents, executor overhead, all-or-nothing)
and `plan_launch` (placement plus a TaskInfo and a running record per task). Each case
is a launch cycle of J jobs of S shards over A agents, which offer the same (16 cpus,
64 GiB: an idle, uniform cluster) or each a different amount (a busy or mixed one); the
median of a few rounds is printed with the per-task cost.

    .venv/bin/python -m bench.placement

Run it as a module from the checkout to be measured: run as a script, `controller` is
imported through the virtualenv's editable install, which may be another checkout's.
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
# (jobs, shards per job, agents, strategy, offers)
CASES = [
    (100, 10, 100, "binpack", "same"),
    (100, 10, 100, "spread", "same"),
    (500, 10, 500, "binpack", "same"),
    (1000, 5, 200, "binpack", "same"),
    (50, 100, 1000, "spread", "same"),
    # 200 tasks over 2,000 and 10,000 agents (Fenzo's published 30-60 ms).
    (200, 1, 2000, "binpack", "same"),
    (200, 1, 2000, "spread", "same"),
    (200, 1, 10000, "binpack", "same"),
    (200, 1, 10000, "spread", "same"),
    (200, 1, 2000, "binpack", "varied"),
    (200, 1, 2000, "spread", "varied"),
    (200, 1, 10000, "binpack", "varied"),
    (200, 1, 10000, "spread", "varied"),
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


def _offer(n: int, cpus: float, mem: float, running: AppVersion) -> HeldOffer:
    """Agent n's offer; every third agent already runs an executor of version `running`."""
    return HeldOffer(
        offer_id=f"offer-{n}",
        agent_id=f"agent-{n}",
        hostname=f"host-{n}",
        cpus=cpus,
        mem=mem,
        resources=(
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}},
        ),
        executors=frozenset({ExecutorId.of(running, f"agent-{n}")}) if n % 3 == 0 else frozenset(),
        received=0.0,
    )


def _offers(agents: int, running: AppVersion, offers: str = "same") -> list[HeldOffer]:
    """16 cpus and 64 GiB each, or ("varied") 4 to 16 cpus and 16 to 64 GiB, stepped by
    primes so that no two of up to 12,001 agents offer the same cpus."""
    if offers == "same":
        return [_offer(n, 16.0, 65536.0, running) for n in range(agents)]
    return [
        _offer(n, 4.0 + (n * 7919) % 12001 / 1000, 16384.0 + (n * 104729) % 49153, running)
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
    apps: dict[str, AppDefinition],
    jobs_n: int,
    shards: int,
    agents_n: int,
    strategy: str,
    offers_kind: str = "same",
) -> str:
    jobs = {j.key: j for j in (_job(i, shards, strategy) for i in range(jobs_n))}
    items: list[WorkItem] = [
        work_item(j, apps[j.app_key], LaunchSource.READY, tuple(range(shards)))
        for j in jobs.values()
    ]
    running = app_version(apps["bench.app0"], DEFAULT_EXECUTOR_OPTIONS)
    offers = _offers(agents_n, running, offers_kind)
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
        f"{jobs_n:>5} {shards:>6} {agents_n:>6} {strategy:>8} {offers_kind:>6} {tasks:>6} "
        f"{place_ms:>9.1f} {place_ms * 1000 / tasks:>8.1f} {plan_ms:>8.1f} "
        f"{plan_ms * 1000 / tasks:>8.1f} {placed:>7}"
    )


def main() -> None:
    apps = {a.key: a for a in (_app(i) for i in range(10))}
    print(
        f"{'jobs':>5} {'shards':>6} {'agents':>6} {'strategy':>8} {'offers':>6} {'tasks':>6} "
        f"{'place ms':>9} {'us/task':>8} {'plan ms':>8} {'us/task':>8} {'placed':>7}"
    )
    for case in CASES:
        print(_case(apps, *case))


if __name__ == "__main__":
    main()
