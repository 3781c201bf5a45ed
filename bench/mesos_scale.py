"""Scale benchmark for the Local Mesos emulator (a development/test tool).

One process runs the emulated master, N agents and an unmodified pymesos
scheduler that launches M `sleep` command tasks (real processes), holds them
running, then kills them. It prints:

- launch throughput: tasks from the first ACCEPT to the M-th TASK_RUNNING;
- heartbeat lateness seen by the scheduler (inter-arrival time minus the
  heartbeat interval) during the launch burst and while all tasks run;
- the emulator's event-loop lag (delay of a callback scheduled every 50 ms);
- RSS of this process (emulator + driver; task processes not included).

    .venv/bin/python bench/mesos_scale.py [--agents 100] [--tasks 1000] [--hold 30]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from pymesos import MesosSchedulerDriver, Scheduler

from devcluster.mesos import AgentSpec, LocalMesos


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentiles(samples: list[float]) -> str:
    if not samples:
        return "no samples"
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return (
        f"n={len(ordered)} p50={at(0.50) * 1000:.1f}ms p95={at(0.95) * 1000:.1f}ms "
        f"p99={at(0.99) * 1000:.1f}ms max={ordered[-1] * 1000:.1f}ms"
    )


class BenchScheduler(Scheduler):  # type: ignore[misc]
    def __init__(self, tasks: int, per_offer: int) -> None:
        self.total = tasks
        self.per_offer = per_offer
        self.launched = 0
        self.running: set[str] = set()
        self.finished: set[str] = set()
        self.first_accept: float | None = None
        self.all_running_at: float | None = None
        self.heartbeats: list[float] = []
        self.lock = threading.Lock()
        self.done = threading.Event()

    def resourceOffers(self, driver: Any, offers: list[dict[str, Any]]) -> None:
        for offer in offers:
            count = min(self.per_offer, self.total - self.launched)
            if count <= 0:
                driver.declineOffer(offer["id"], {"refuse_seconds": 3600})
                continue
            tasks = []
            for _ in range(count):
                task_id = f"sleep-{self.launched:05d}"
                self.launched += 1
                tasks.append(
                    {
                        "task_id": {"value": task_id},
                        "agent_id": offer["agent_id"],
                        "name": task_id,
                        "resources": [
                            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                            {"name": "mem", "type": "SCALAR", "scalar": {"value": 16}},
                        ],
                        "command": {"value": "exec sleep 3600"},
                    }
                )
            if self.first_accept is None:
                self.first_accept = time.monotonic()
            driver.launchTasks(offer["id"], tasks, {"refuse_seconds": 3600})

    def statusUpdate(self, driver: Any, status: dict[str, Any]) -> None:
        task_id = status["task_id"]["value"]
        with self.lock:
            if status["state"] == "TASK_RUNNING":
                self.running.add(task_id)
                if len(self.running) == self.total and self.all_running_at is None:
                    self.all_running_at = time.monotonic()
                    self.done.set()
            elif status["state"] in ("TASK_KILLED", "TASK_FINISHED", "TASK_FAILED"):
                self.finished.add(task_id)
        if "uuid" in status:
            driver.acknowledgeStatusUpdate(status)

    def processHeartBeat(self, driver: Any) -> None:
        self.heartbeats.append(time.monotonic())


def lateness(stamps: list[float], interval: float, start: float, end: float) -> list[float]:
    window = [t for t in stamps if start <= t <= end]
    return [max(0.0, b - a - interval) for a, b in itertools.pairwise(window)]


class LoopProbe:
    """Measures how late the emulator's event loop runs a callback due every 50 ms."""

    def __init__(self, cluster: LocalMesos) -> None:
        self.samples: list[tuple[float, float]] = []
        self._cluster = cluster
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + 0.05
            await asyncio.sleep(0.05)
            self.samples.append((time.monotonic(), loop.time() - due))

    def start(self) -> None:
        def begin() -> None:
            self._task = asyncio.get_running_loop().create_task(self._run())

        self._cluster.run_on_loop(begin)

    def stop(self) -> None:
        def end() -> None:
            if self._task is not None:
                self._task.cancel()

        self._cluster.run_on_loop(end)

    def window(self, start: float, end: float) -> list[float]:
        return [lag for at, lag in self.samples if start <= at <= end]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument(
        "--hold", type=float, default=30.0, help="seconds to hold all tasks running"
    )
    parser.add_argument("--heartbeat", type=float, default=1.0, help="heartbeat interval (s)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    per_agent = -(-args.tasks // args.agents)
    spec = AgentSpec(cpus=0.1 * per_agent + 1, mem=16.0 * per_agent + 256)
    print(
        f"Local Mesos scale benchmark: {args.agents} agents, {args.tasks} sleep tasks, "
        f"hold {args.hold}s"
    )
    rss_before = rss_mb()
    started = time.monotonic()
    cluster = LocalMesos(
        agents=[spec] * args.agents,
        heartbeat_interval=args.heartbeat,
        offer_refresh=1.0,
    )
    cluster.start(timeout=120)
    print(
        f"cluster up in {time.monotonic() - started:.1f}s, "
        f"RSS {rss_mb():.0f} MB (was {rss_before:.0f} MB)"
    )
    probe = LoopProbe(cluster)
    probe.start()
    scheduler = BenchScheduler(args.tasks, per_agent)
    driver = MesosSchedulerDriver(
        scheduler,
        {"user": "root", "name": "scale-bench", "failover_timeout": 604800.0},
        cluster.master_address,
        use_addict=False,
        implicit_acknowledgements=False,
        failover=True,
    )
    driver.start()
    try:
        if not scheduler.done.wait(600):
            raise SystemExit(f"only {len(scheduler.running)} of {args.tasks} tasks reached RUNNING")
        assert scheduler.first_accept is not None and scheduler.all_running_at is not None
        launch_seconds = scheduler.all_running_at - scheduler.first_accept
        print(
            f"launch: {args.tasks} tasks RUNNING in {launch_seconds:.1f}s "
            f"= {args.tasks / launch_seconds:.0f} tasks/s; RSS {rss_mb():.0f} MB"
        )
        hold_start = time.monotonic()
        time.sleep(args.hold)
        hold_end = time.monotonic()
        state = cluster.state()
        running = sum(
            1 for f in state["frameworks"] for t in f["tasks"] if t["state"] == "TASK_RUNNING"
        )
        print(
            f"steady: {running} tasks RUNNING per /state after {args.hold:.0f}s; "
            f"RSS {rss_mb():.0f} MB"
        )
        burst = lateness(
            scheduler.heartbeats, args.heartbeat, scheduler.first_accept, scheduler.all_running_at
        )
        steady = lateness(scheduler.heartbeats, args.heartbeat, hold_start, hold_end)
        print(f"heartbeat lateness during launch: {percentiles(burst)}")
        print(f"heartbeat lateness while holding: {percentiles(steady)}")
        launch_lag = probe.window(scheduler.first_accept, scheduler.all_running_at)
        print(f"event-loop lag during launch:     {percentiles(launch_lag)}")
        print(
            f"event-loop lag while holding:     {percentiles(probe.window(hold_start, hold_end))}"
        )
        gaps = [b - a for a, b in itertools.pairwise(scheduler.heartbeats)]
        print(
            f"largest gap between heartbeats (whole run): {max(gaps) * 1000:.0f}ms "
            f"(interval {args.heartbeat * 1000:.0f}ms)"
        )
        if steady:
            print(
                f"median heartbeat lateness while holding: {statistics.median(steady) * 1000:.1f}ms"
            )
        kill_start = time.monotonic()
        for index in range(args.tasks):
            driver.killTask({"value": f"sleep-{index:05d}"})
        deadline = time.monotonic() + 120
        while len(scheduler.finished) < args.tasks and time.monotonic() < deadline:
            time.sleep(0.1)
        print(
            f"kill: {len(scheduler.finished)} tasks terminal "
            f"in {time.monotonic() - kill_start:.1f}s"
        )
    finally:
        probe.stop()
        driver.stop(failover=True)
        driver.join()
        cluster.stop()


if __name__ == "__main__":
    main()
