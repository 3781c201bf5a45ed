"""Benchmark: what refreshing job status costs as the number of jobs grows.

Starts a real ZooKeeper, fills a `StateStore` with N transient jobs (each with a pending
run, as right after their cron fired) and prints, for each N:

- **reads per refresh** — one job's pending runs and failover shards read the way the
  runtime view did before (copying the whole ready and failover queues: O(N) each) and
  now (`ready_of`, `failover_of`: O(the job)); and the whole `job_runtime` now. Median
  of 5 rounds over 200 sampled jobs, in microseconds.
- **a refresh of every job** — the status of all N jobs computed once (what a timer per
  object did every `status.min_interval`, i.e. every second) with the old and the new
  reads: seconds of CPU per pass. Over 1 s means one core cannot keep up.
- **the dirty queue with N idle jobs** — the status refresher and the drift sweep
  (`--period`, the `status.refresh_interval`) running for `--seconds`: refreshes and
  status writes per second, and the process's CPU; then every job marked dirty at
  once (all changed): writes per second stay at the rate limit (`--rate`, `--burst`).
  Writes go to a counter, not an API server: this measures the controller's side.

    .venv/bin/python bench/status_refresh.py [--jobs 1000 5000 10000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kazoo.client import KazooClient
from prometheus_client import CollectorRegistry

from controller.definitions import AppDefinition, JobDefinition
from controller.dirty import DirtyQueue, ObjectKind
from controller.mesos import runtime
from controller.mesos.statistics import JobStatistics
from controller.mesos.tracking import TrackedTasks
from controller.operations import ExecutorRuntime, JobRuntime, ShardRuntime
from controller.producer import TransientProducer
from controller.reconcilers.drift import DriftSweep
from controller.reconcilers.handling import ObjectView, Reconciliation
from controller.reconcilers.kubeapi import KubeApi
from controller.reconcilers.pacing import TokenBucket
from controller.reconcilers.recording import EventRecorder, ObjectRef
from controller.reconcilers.refreshing import Known, RefreshMetrics, StatusRefresher
from controller.reconcilers.status import AppAvailability
from controller.resources import CloudAppSpec, CloudJobSpec
from controller.state import AsyncLeadership, Layout, LeaderElection, ReadyEntry, StateStore
from devcluster.zookeeper import ZooKeeperServer

CRON = "0 0 0 1 1 ? 2099"
SAMPLES = 200
ROUNDS = 5
NAMESPACE = "bench"


def job_spec() -> dict[str, Any]:
    return {
        "appName": "app",
        "cron": CRON,
        "shardingTotalCount": 1,
        "cpuCount": 0.01,
        "memoryMB": 1.0,
        "script": {"commandLine": "true"},
    }


def job(index: int) -> JobDefinition:
    spec = CloudJobSpec.model_validate(job_spec())
    return JobDefinition(namespace=NAMESPACE, name=f"job{index}", spec=spec)


class StoreOps:
    """What the reconcilers call, over the real store; `old_reads` copies whole queues
    for each job as the runtime view did before."""

    def __init__(self, store: StateStore, producer: TransientProducer, *, old_reads: bool):
        self.store, self.producer, self.old_reads = store, producer, old_reads
        self.tracked, self.stats = TrackedTasks(), JobStatistics()

    def job_runtime(self, job_key: str) -> JobRuntime:
        if not self.old_reads:
            return runtime.job_runtime(
                job_key,
                store=self.store,
                tracked=self.tracked,
                producer=self.producer,
                stats=self.stats.of(job_key),
                history=None,
            )
        store = self.store
        ready, failover = reads_before(store, job_key)
        shards = tuple(
            ShardRuntime(t.shard, t.task_id, t.agent_id, t.hostname, t.state, t.launched_at)
            for t in store.running_of(job_key)
        )
        return JobRuntime(
            job_key=job_key,
            scheduled=store.job(job_key) is not None and self.producer.is_registered(job_key),
            active_shards=shards,
            next_fire_time=self.producer.next_fire(job_key),
            pending_runs=ready.count if ready else 0,
            failover_shards=failover,
        )

    def job_keys(self) -> frozenset[str]:
        return frozenset(self.store.jobs())

    def app_keys(self) -> frozenset[str]:
        return frozenset(self.store.apps())

    def app_executors(self, app_key: str) -> list[ExecutorRuntime]:
        return []

    async def schedule(self, definition: JobDefinition) -> None:
        await asyncio.to_thread(self.store.put_job, definition)
        self.producer.register(definition.key, definition.spec.cron or CRON)


def median_micros(call: Callable[[str], object], keys: list[str]) -> float:
    rounds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for key in keys:
            call(key)
        rounds.append((time.perf_counter() - started) / len(keys) * 1e6)
    return statistics.median(rounds)


def views(count: int) -> dict[tuple[ObjectKind, str], Known]:
    known = {}
    for index in range(count):
        view = ObjectView(NAMESPACE, f"job{index}", 1, job_spec(), {}, {})
        ref = ObjectRef("cloudjob.io/v1", "CloudJob", NAMESPACE, view.name, f"uid-{index}")
        known[(ObjectKind.JOB, view.key)] = Known(view, ref)
    return known


async def refresh_pass(
    reconciliation: Reconciliation, known: dict[tuple[ObjectKind, str], Known]
) -> float:
    """CPU seconds to compute the status of every job once."""

    started = time.process_time()
    for item in known.values():
        await reconciliation.job_refresh(item.view, available, ignore)
    return time.process_time() - started


def available(namespace: str, name: str) -> AppAvailability:
    return AppAvailability.AVAILABLE


async def queue_run(
    ops: StoreOps, known: dict[tuple[ObjectKind, str], Known], args: argparse.Namespace
) -> None:
    queue = DirtyQueue(min_gap=1.0)
    reconciliation = Reconciliation(ops=ops, dirty=queue)
    writes = 0

    async def write(kind: ObjectKind, view: ObjectView, patch: dict[str, Any]) -> None:
        nonlocal writes
        writes += 1
        item = known[(kind, view.key)]
        status = {**item.view.status, **patch}
        known[(kind, view.key)] = Known(
            ObjectView(view.namespace, view.name, 1, view.spec, status, {}), item.ref
        )

    # Converge first: every status written once, as after the jobs were created.
    for (kind, _), item in list(known.items()):
        patch = await reconciliation.job_refresh(item.view, available, ignore)
        if patch:
            await write(kind, item.view, patch)
    looked_up = 0

    def lookup(kind: ObjectKind, key: str) -> Known | None:
        nonlocal looked_up
        looked_up += 1
        return known.get((kind, key))

    refresher = StatusRefresher(
        queue=queue,
        reconciliation=reconciliation,
        known=lookup,
        apps_now=available,
        recorder=EventRecorder(
            KubeApi(no_api, user_agent="bench"),
            component="bench",
            instance="bench",
            leading=lambda: True,
        ),
        write=write,
        bucket=TokenBucket(args.rate, args.burst),
        metrics=RefreshMetrics(CollectorRegistry()),
    )
    sweep = DriftSweep(
        objects=lambda: list(known), reapply=reconciliation.request_reapply, period=args.period
    )
    stop = asyncio.Event()
    tasks = [asyncio.create_task(refresher.run(stop)), asyncio.create_task(sweep.run(stop))]
    try:
        for label, burst in (("idle", False), ("all changed", True)):
            if burst:
                for kind, key in known:
                    queue.mark(kind, key, urgent=True)
                # every status differs: the next write of each job carries a new time
                for kind, key in list(known):
                    item = known[(kind, key)]
                    known[(kind, key)] = Known(
                        ObjectView(NAMESPACE, item.view.name, 1, item.view.spec, {}, {}),
                        item.ref,
                    )
            refreshes, before, cpu = looked_up, writes, time.process_time()
            await asyncio.sleep(args.seconds)
            print(
                f"    dirty queue, {label:11s}: {(looked_up - refreshes) / args.seconds:8.1f} "
                f"refreshes/s, {(writes - before) / args.seconds:6.1f} writes/s, CPU "
                f"{(time.process_time() - cpu) / args.seconds * 100:5.1f}%, "
                f"{len(queue)} still dirty"
            )
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def run(args: argparse.Namespace) -> None:
    zookeeper = ZooKeeperServer()
    zookeeper.start()
    client = KazooClient(hosts=zookeeper.hosts)
    client.start()
    layout = Layout("bench")
    leadership = AsyncLeadership(asyncio.get_running_loop())
    election = LeaderElection(client, leadership, layout=layout)
    election.start()
    producer = TransientProducer(_never_fires)
    try:
        await leadership.changes.get()
        store = StateStore.on_kazoo(client, election, layout=layout, queue_limit=1_000_000)
        await asyncio.to_thread(store.load)
        spec = CloudAppSpec.model_validate(
            {"appURL": "http://repo/app.tar.gz", "bootstrapScript": "bin/start.sh"}
        )
        store.put_app(AppDefinition(namespace=NAMESPACE, name="app", spec=spec))
        stored = 0
        for count in sorted(args.jobs):
            started = time.monotonic()
            fresh = [job(index) for index in range(stored, count)]
            await asyncio.to_thread(put_jobs, store, fresh)
            for definition in fresh:
                producer.register(definition.key, CRON)
            await asyncio.to_thread(store.fire, [j.key for j in fresh], datetime.now(UTC))
            stored = count
            print(f"{count} jobs (stored in {time.monotonic() - started:.1f} s)")
            keys = [f"{NAMESPACE}.job{index}" for index in range(0, count, count // SAMPLES)]
            new, old = (StoreOps(store, producer, old_reads=o) for o in (False, True))
            before = median_micros(lambda k: reads_before(store, k), keys)
            now = median_micros(lambda k: reads_now(store, k), keys)
            print(
                f"    reads per refresh: before {before:9.1f} µs, now {now:6.1f} µs; "
                f"job_runtime now {median_micros(new.job_runtime, keys):6.1f} µs"
            )
            known = views(count)
            for label, ops in (("before", old), ("now", new)):
                passes = [await refresh_pass(Reconciliation(ops=ops), known) for _ in range(3)]
                print(
                    f"    status of every job, {label:6s}: {statistics.median(passes):7.3f} s CPU"
                    " per pass (a timer per object: one pass per second)"
                )
            await queue_run(new, known, args)
    finally:
        await producer.close()
        election.stop()
        client.stop()
        client.close()
        zookeeper.stop()


def put_jobs(store: StateStore, jobs: list[JobDefinition]) -> None:
    for definition in jobs:
        store.put_job(definition)


def reads_before(store: StateStore, job_key: str) -> tuple[ReadyEntry | None, tuple[int, ...]]:
    """A job's pending runs and failover shards, read from copies of the whole queues."""
    ready = store.ready().get(job_key)
    return ready, tuple(sorted(e.shard for e in store.failover().values() if e.job_key == job_key))


def reads_now(store: StateStore, job_key: str) -> tuple[ReadyEntry | None, tuple[int, ...]]:
    return store.ready_of(job_key), store.failover_of(job_key)


def ignore(*, warning: bool, reason: str, message: str) -> None:
    pass


def no_api() -> Any:
    raise RuntimeError("the bench has no API server")


async def _never_fires(job_keys: tuple[str, ...], fire_time: datetime) -> None:
    raise AssertionError(f"the bench's cron never fires, yet {job_keys} fired")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--period", type=float, default=300.0)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--burst", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
