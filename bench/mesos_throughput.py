"""How many short runs a second the Local Mesos carries on its own, on this machine.

The scale benchmark's workload without the controller, ZooKeeper or Kubernetes: the
emulator in its own process (`python -m devcluster.mesos`, 50 agents x 16 cpus, as
`bench/scale.py` runs it), and a minimal framework in this process that launches R
command tasks once a second on offers it holds, as a cron fire of R jobs would. Each
task is the scale benchmark's job: a fetched shell script that appends one line to a
shared file, `date` included. The framework acknowledges every update at once from
threads of its own. For each rate, after a warm-up, it counts over a window the runs
the tasks themselves recorded and the TASK_FINISHED updates received, and prints
send→TASK_RUNNING (the agent's stamp) and send→TASK_FINISHED received, with the CPU
of the emulator, of its task processes and of this framework. A rate the emulator
cannot carry shows as runs falling short and latencies growing through the window. At
the end it waits for every task to end and counts them all: launched, recorded by the
tasks (and how many distinct), finished and failed, and the acknowledgements that
failed.

    .venv/bin/python bench/mesos_throughput.py [--rates 100,167,333] [--window 60]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pymesos import MesosSchedulerDriver, Scheduler
from scale_stack import EmulatedMesos, stop_group

RECORD_SCRIPT = """#!/bin/sh
printf '%s %s\\n' "$(date +%s.%N)" "$1" >> {log}
"""
# Launches once a second, as the scale benchmark's crons fire once a second.
TICK = 1.0
ACK_THREADS = 4
# A task's resources: the scale benchmark's job.
CPUS = 0.1
MEM = 16.0


class Calls:
    """Scheduler calls over keep-alive connections, one per thread."""

    def __init__(self, url: str) -> None:
        self._address = urllib.parse.urlsplit(url).netloc
        self._local = threading.local()
        self.framework_id = ""
        self.stream_id = ""

    def post(self, call: dict[str, Any]) -> None:
        body = json.dumps({"framework_id": {"value": self.framework_id}, **call})
        headers = {"Content-Type": "application/json", "Mesos-Stream-Id": self.stream_id}
        for attempt in (1, 2):
            connection = getattr(self._local, "connection", None)
            if connection is None:
                connection = http.client.HTTPConnection(self._address, timeout=30)
                self._local.connection = connection
            try:
                connection.request("POST", "/api/v1/scheduler", body, headers)
                reply = connection.getresponse()
                reply.read()
                if reply.status != 202:
                    raise RuntimeError(f"{call['type']}: HTTP {reply.status}")
                return
            except (OSError, http.client.HTTPException):
                connection.close()
                self._local.connection = None
                if attempt == 2:
                    raise


class Framework(Scheduler):  # type: ignore[misc]
    def __init__(self, calls: Calls, script: Path) -> None:
        self._calls = calls
        self._script = script
        self._acks = ThreadPoolExecutor(ACK_THREADS, thread_name_prefix="ack")
        self._lock = threading.Lock()
        self._ended = threading.Condition(self._lock)
        self._offers: list[dict[str, Any]] = []
        self.sent: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.finished: dict[str, float] = {}
        self.failed: dict[str, str] = {}
        self.ack_errors = 0
        self.subscribed = threading.Event()

    def registered(self, driver: Any, framework_id: Any, master_info: Any) -> None:
        self._calls.framework_id = framework_id["value"]
        self._calls.stream_id = str(driver.stream_id)
        self.subscribed.set()

    def resourceOffers(self, driver: Any, offers: list[dict[str, Any]]) -> None:
        with self._lock:
            self._offers.extend(offers)

    def offerRescinded(self, driver: Any, offer_id: Any) -> None:
        with self._lock:
            self._offers = [o for o in self._offers if o["id"] != offer_id]

    def statusUpdate(self, driver: Any, status: dict[str, Any]) -> None:
        now = time.time()
        task_id = status["task_id"]["value"]
        state = status["state"]
        with self._lock:
            if state == "TASK_RUNNING":
                self.running.setdefault(task_id, float(status.get("timestamp", now)))
            elif state == "TASK_FINISHED":
                self.finished.setdefault(task_id, now)
                self._ended.notify_all()
            elif state in ("TASK_FAILED", "TASK_LOST", "TASK_ERROR", "TASK_DROPPED"):
                self.failed[task_id] = f"{state}: {status.get('message', '')}"
                self._ended.notify_all()
        if "uuid" in status:
            ack = {
                "agent_id": status["agent_id"],
                "task_id": status["task_id"],
                "uuid": status["uuid"],
            }
            sent = self._acks.submit(self._calls.post, {"type": "ACKNOWLEDGE", "acknowledge": ack})
            sent.add_done_callback(self._acked)

    def _acked(self, sent: Future[None]) -> None:
        if sent.exception() is not None:
            with self._lock:
                self.ack_errors += 1

    def launch(self, count: int, numbers: Iterator[int]) -> int:
        """Launch up to `count` tasks on the offers held; how many were sent."""
        sent = 0
        while sent < count:
            with self._lock:
                if not self._offers:
                    return sent
                offer = self._offers.pop(0)
            fits = int(min(_scalar(offer, "cpus") / CPUS, _scalar(offer, "mem") / MEM))
            tasks = [self._task(offer, next(numbers)) for _ in range(min(fits, count - sent))]
            now = time.time()
            with self._lock:
                for task in tasks:
                    self.sent[task["task_id"]["value"]] = now
            accept = {
                "offer_ids": [offer["id"]],
                "operations": [{"type": "LAUNCH", "launch": {"task_infos": tasks}}],
                "filters": {"refuse_seconds": 0},
            }
            self._calls.post({"type": "ACCEPT", "accept": accept})
            sent += len(tasks)
        return sent

    def _task(self, offer: dict[str, Any], number: int) -> dict[str, Any]:
        task_id = f"run-{number:07d}"
        return {
            "task_id": {"value": task_id},
            "agent_id": offer["agent_id"],
            "name": task_id,
            "resources": [
                {"name": "cpus", "type": "SCALAR", "scalar": {"value": CPUS}},
                {"name": "mem", "type": "SCALAR", "scalar": {"value": MEM}},
            ],
            "command": {
                "value": "./record.sh",
                "arguments": ["./record.sh", task_id],
                "shell": False,
                "uris": [{"value": str(self._script), "executable": True}],
            },
        }

    def snapshot(
        self,
    ) -> tuple[dict[str, float], dict[str, float], dict[str, float], dict[str, str]]:
        """Copies of (sent, running, finished, failed), which the driver's thread fills."""
        with self._lock:
            return dict(self.sent), dict(self.running), dict(self.finished), dict(self.failed)

    def drain(self, timeout: float) -> bool:
        """Wait until every task sent has ended; whether they all did in `timeout`."""
        with self._ended:
            return self._ended.wait_for(
                lambda: len(self.finished) + len(self.failed) >= len(self.sent), timeout
            )

    def close(self) -> None:
        self._acks.shutdown(wait=False, cancel_futures=True)


def _scalar(offer: dict[str, Any], name: str) -> float:
    for resource in offer.get("resources", []):
        if resource.get("name") == name and resource.get("type") == "SCALAR":
            return float(resource["scalar"]["value"])
    return 0.0


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(the process's own CPU seconds, its reaped children's)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks, (int(fields[13]) + int(fields[14])) / ticks


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@contextmanager
def emulator(work: Path, agents: int, cpus: float) -> Iterator[EmulatedMesos]:
    mesos = EmulatedMesos.start(work, None, agents, cpus)
    try:
        yield mesos
    finally:
        stop_group(mesos.process, 10)


def measure(
    framework: Framework, rate: float, warmup: float, window: float, runs_log: Path, mesos_pid: int
) -> dict[str, float]:
    numbers = iter(range(len(framework.sent), sys.maxsize))
    begin = time.monotonic()
    launched = 0
    marks: dict[str, Any] = {}
    while (elapsed := time.monotonic() - begin) < warmup + window:
        if elapsed >= warmup and not marks:
            marks = {
                "wall": time.time(),
                "cpu": cpu_seconds(mesos_pid),
                "own": time.process_time(),
                "lines": _lines(runs_log),
            }
        due = int(rate * elapsed) - launched
        if due > 0:
            launched += framework.launch(due, numbers)
        time.sleep(TICK)
    end = time.time()
    cpu = cpu_seconds(mesos_pid)
    own = time.process_time()
    lines = _lines(runs_log)
    span = end - marks["wall"]
    sent, running, finished, failed = framework.snapshot()
    in_window = {t: s for t, s in sent.items() if marks["wall"] <= s < end}
    to_running = [running[t] - s for t, s in in_window.items() if t in running]
    to_finished = [finished[t] - s for t, s in in_window.items() if t in finished]
    return {
        "rate": rate,
        "sent_per_s": len(in_window) / span,
        "recorded_per_s": (lines - marks["lines"]) / span,
        "finished_per_s": sum(marks["wall"] <= f < end for f in finished.values()) / span,
        "running_p50": percentile(to_running, 0.5),
        "running_p99": percentile(to_running, 0.99),
        "finished_p50": percentile(to_finished, 0.5),
        "finished_p99": percentile(to_finished, 0.99),
        "emulator_cpu": 100 * (cpu[0] - marks["cpu"][0]) / span,
        "tasks_cpu": 100 * (cpu[1] - marks["cpu"][1]) / span,
        "framework_cpu": 100 * (own - marks["own"]) / span,
        "failed": float(len(failed)),
    }


def _lines(path: Path) -> int:
    try:
        with path.open("rb") as runs:
            return sum(1 for _ in runs)
    except FileNotFoundError:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="100,167,333", help="runs a second, comma-separated")
    parser.add_argument("--window", type=float, default=60.0, help="seconds counted per rate")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds before each window")
    parser.add_argument(
        "--drain", type=float, default=300.0, help="seconds to wait for every run to end"
    )
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--cpus", type=float, default=16.0)
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    work = Path(tempfile.mkdtemp(prefix="cloudjob-mesos-throughput-"))
    try:
        runs_log = work / "runs.log"
        script = work / "record.sh"
        script.write_text(RECORD_SCRIPT.format(log=runs_log))
        script.chmod(0o755)
        with emulator(work, args.agents, args.cpus) as mesos:
            calls = Calls(mesos.url)
            framework = Framework(calls, script)
            address = urllib.parse.urlsplit(mesos.url).netloc
            driver = MesosSchedulerDriver(
                framework,
                {"user": "root", "name": "mesos-throughput", "failover_timeout": 0},
                address,
                use_addict=False,
                implicit_acknowledgements=False,
            )
            driver.start()
            try:
                if not framework.subscribed.wait(60):
                    raise RuntimeError("the framework did not subscribe in 60 s")
                print(
                    f"{args.agents} agents x {args.cpus:g} cpus, {os.cpu_count()} cpus here, "
                    f"load average {os.getloadavg()[0]:.2f}; window {args.window:g} s per rate"
                )
                print(
                    "rate/s  sent/s  recorded/s  FINISHED/s  send→RUNNING p50/p99  "
                    "send→FINISHED p50/p99  emulator  its tasks  framework  failed"
                )
                for rate in rates:
                    row = measure(
                        framework, rate, args.warmup, args.window, runs_log, mesos.process.pid
                    )
                    print(
                        f"{row['rate']:6.0f}  {row['sent_per_s']:6.1f}  "
                        f"{row['recorded_per_s']:10.1f}  {row['finished_per_s']:10.1f}  "
                        f"{row['running_p50']:8.2f} / "
                        f"{row['running_p99']:6.2f} s  {row['finished_p50']:8.2f} / "
                        f"{row['finished_p99']:6.2f} s  {row['emulator_cpu']:7.1f}%  "
                        f"{row['tasks_cpu']:8.1f}%  {row['framework_cpu']:8.1f}%  "
                        f"{row['failed']:6.0f}",
                        flush=True,
                    )
                    # Let the rate's backlog drain before the next one.
                    time.sleep(args.warmup)
                ended = framework.drain(args.drain)
                sent, _, finished, failed = framework.snapshot()
                recorded = [line.split()[1] for line in runs_log.read_text().splitlines()]
                print(
                    f"runs launched {len(sent)}, recorded by the tasks {len(recorded)} "
                    f"({len(set(recorded))} distinct), TASK_FINISHED {len(finished)}, "
                    f"failed {len(failed)}, "
                    f"acknowledgements failed {framework.ack_errors}"
                    + ("" if ended else f" (not all ended within {args.drain:g} s)")
                )
                for task_id, why in sorted(failed.items())[:10]:
                    print(f"  {task_id}: {why}")
            finally:
                driver.stop()
                framework.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
