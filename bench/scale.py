"""Scale benchmark: N cron jobs on the stack a user runs, measured from the outside.

    .venv/bin/python bench/scale.py --jobs 1000 [--window 120] [--kill-leader] [--preload]
        [--create-within 600] [--probes 10] [--json out.json] [--keep]

It starts a real ZooKeeper, the local Mesos emulator (`python -m devcluster.mesos`, 50
agents x 16 cpus, in a process of its own), the real Kubernetes control plane
(`devcluster.kube.ControlPlane`) with the CRDs and the chart's RBAC, and the controller
as `python -m controller run` with its production defaults (only addresses, ports and
the history's directory are set; a second replica with `--kill-leader`). It then creates
one CloudApp and N transient one-shard script jobs spread over ten crons `S/30 * * * * ?`
(N/30 runs a second), and prints, as each becomes known:

- the create rate (objects/s the API server accepted, 8 concurrent clients);
- apply → `Scheduled` p50/p99 and the time until all are Scheduled (a watch on the API
  server: the moment the condition is first seen True, minus the moment the create
  returned);
- over the measurement window: the CPU% (of one core) and RSS of the controller (from
  /proc), and the CPU% of every other process of the stack;
- runs expected / ran / doubled: the job script appends `<start time> <sharding
  context>` to one shared file (O_APPEND); expected fires come from the crons themselves;
- fire → ACCEPT and fire → TASK_RUNNING p50/p99: the emulated master stamps a task
  TASK_STAGING when it takes the task from an ACCEPT call, and keeps the agent's
  TASK_RUNNING stamp; both are read from its `/state`, joined by task id with the fire
  time the job recorded; fire → process start comes from the job's own record;
- a single apply while the N jobs exist → `Scheduled` p50/p99: `--probes` K jobs
  created one at a time, spread evenly over the window, on a cron that never fires during
  the run (timed by the same watch; left out of every other number);
- with `--kill-leader`: kill -9 of the leader a third into the window, then the time
  until the other replica is elected and until its first ACCEPT, and the runs lost and
  doubled around it.

With `--preload` the jobs are created before the controller starts (the API server's
own create rate; Scheduled timed from the controller's start). Every wait is bounded,
creating included (`--create-within`); a saturated controller gives partial numbers,
not a hang. Ctrl-C stops everything it started. docs/scale.md explains each number and
has the measured results.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient
from scale_measures import (
    PERIOD,
    PROBE_CRON,
    RunRecord,
    cron_of,
    delays,
    fire_run_outcomes,
    first_after,
    json_key,
    misfires,
    offset_of,
    parse_run_line,
    probe_name,
    probe_outcome,
    probe_times,
    spread,
    tally,
    unsuccessful,
)
from scale_probes import NAMESPACE, MasterSampler, ScheduledWatch
from scale_single_apply import SingleApplies
from scale_stack import (
    EmulatedMesos,
    Replica,
    children_of,
    cpu_of,
    leader_identity,
    rss_of,
    scrape,
    start_replica,
    stop_group,
)

from controller.resources import API_VERSION
from controller.state.layout import Layout
from devcluster.kube import ControlPlane
from devcluster.kube.errors import ApiError
from devcluster.kube.identities import grant_chart_rbac
from devcluster.zookeeper import ZooKeeperServer

APP = "bench"
CREATE_CLIENTS = 8
SETTLE_SECONDS = 10.0
# How long after the last probe's create the benchmark still waits for probes to be seen
# Scheduled (once the window and the draining of late runs are over).
PROBE_GRACE_SECONDS = 60.0
# The stack's other processes by command name (ZooKeeper runs in a JVM).
COMMANDS = {"java": "zookeeper"}
# The job: one line per run, appended in one write (O_APPEND) to the shared log.
RECORD_SCRIPT = """#!/bin/sh
printf '%s %s\\n' "$(date +%s.%N)" "$1" >> {log}
"""


class Stopped(Exception):
    """Ctrl-C or SIGTERM: unwinds the stack, which stops every process it started."""


def interrupt(*_: object) -> None:
    # Once: a second Ctrl-C must not cut the cleanup short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Stopped


@dataclass
class Report:
    """Lines printed as soon as measured, and the same numbers for `--json`."""

    values: dict[str, Any] = field(default_factory=dict)

    def line(self, label: str, text: str, value: Any = None) -> None:
        print(f"{label:<34} {text}", flush=True)
        if value is not None:
            self.values[json_key(label)] = value


def seconds(spread_of: dict[str, float] | None) -> str:
    if spread_of is None:
        return "no samples"
    return (
        f"p50 {spread_of['p50']:.2f} s, p99 {spread_of['p99']:.2f} s, "
        f"max {spread_of['max']:.2f} s (n={spread_of['n']:.0f})"
    )


def machine() -> dict[str, Any]:
    memory = Path("/proc/meminfo").read_text().splitlines()
    total = next(int(line.split()[1]) for line in memory if line.startswith("MemTotal:"))
    return {
        "cpus": os.cpu_count(),
        "memory_mib": total // 1024,
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


@dataclass
class Bench:
    jobs: int
    window: float
    kill_leader: bool
    agents: int
    cpus: float
    work: Path
    preload: bool = False
    create_within: float = 600.0
    probes: int = 10
    report: Report = field(default_factory=Report)
    layout: Layout = field(default_factory=Layout)

    @property
    def runs_log(self) -> Path:
        return self.work / "runs.log"

    def run(self) -> None:
        rate = self.jobs / PERIOD
        self.report.line(
            "scale benchmark",
            f"{self.jobs} jobs over 10 crons S/30 ({rate:.1f} runs/s), window {self.window:.0f} s,"
            f" {self.agents} agents x {self.cpus:g} cpus, replicas {2 if self.kill_leader else 1}"
            + (", jobs created before the controller starts" if self.preload else "")
            + (f", {self.probes} single applies in the window" if self.probes else ""),
            {
                "jobs": self.jobs,
                "window": self.window,
                "kill_leader": self.kill_leader,
                "preload": self.preload,
                "probes": self.probes,
            },
        )
        about = machine()
        self.report.line(
            "machine",
            f"{about['cpus']} cpus, {about['memory_mib']} MiB, load average at start "
            f"{' '.join(about['loadavg_at_start'])} (shared with other work)",
            about,
        )
        with contextlib.ExitStack() as stack:
            started = time.monotonic()
            zookeeper = ZooKeeperServer(data_dir=self.work / "zookeeper")
            (self.work / "zookeeper").mkdir(parents=True, exist_ok=True)
            zookeeper.start()
            stack.callback(zookeeper.stop)
            mesos = EmulatedMesos.start(self.work, zookeeper.hosts, self.agents, self.cpus)
            stack.callback(stop_group, mesos.process, 30)
            api = ControlPlane(self.work / "kube")
            api.start()
            stack.callback(api.stop)
            api.install_crds()
            identity = grant_chart_rbac(api, self.work)
            env = dict(
                os.environ,
                CLOUDJOB_MESOS__MASTER=f"zk://{zookeeper.hosts}/mesos",
                CLOUDJOB_ZOOKEEPER__HOSTS=zookeeper.hosts,
                CLOUDJOB_KUBERNETES__KUBECONFIG=str(identity.kubeconfig),
                CLOUDJOB_HTTP__HOST="127.0.0.1",
                CLOUDJOB_HISTORY__DATA_DIR=str(self.work / "history"),
            )
            app, jobs = self.manifests()
            api.client().create(app)
            watch = ScheduledWatch(api)
            watch.start()
            stack.callback(watch.stop)
            if self.preload:
                began, accepted = self.create(api, jobs, "create rate, no controller yet")
            replicas = [
                start_replica(f"replica-{n}", self.work, env)
                for n in range(1, 3 if self.kill_leader else 2)
            ]
            for replica in replicas:
                stack.callback(stop_group, replica.process, 20)
            controller_start = time.time()
            zk = KazooClient(hosts=zookeeper.hosts, timeout=10.0)
            zk.start(timeout=30)
            stack.callback(zk.stop)
            leader = self._await_leader(zk, replicas)
            self.report.line(
                "stack up",
                f"{time.monotonic() - started:.1f} s (leader {leader.identity}, pid "
                f"{leader.process.pid}; work directory {self.work})",
                round(time.monotonic() - started, 1),
            )
            if self.preload:
                began = controller_start
                accepted = dict.fromkeys(accepted, controller_start)
                self._await_scheduled(watch, began, accepted, replicas, "controller start")
            else:
                began, accepted = self.create(api, jobs, "create rate")
                self._await_scheduled(watch, began, accepted, replicas, "apply")
            offsets = {
                f"{NAMESPACE}.{self.job_name(n)}": offset_of(n)
                for n in range(self.jobs)
                if self.job_name(n) in accepted
            }
            self._measure(mesos, zk, replicas, leader, offsets, api, watch)
            seen = sum(1 for name in accepted if name in watch.seen)
            if seen < len(accepted):
                self.report.line(
                    "Scheduled by the end",
                    f"{seen}/{len(accepted)} jobs seen Scheduled by the end",
                    seen,
                )

    def _await_leader(
        self, zk: KazooClient, replicas: list[Replica], timeout: float = 120.0
    ) -> Replica:
        by_identity = {replica.identity: replica for replica in replicas}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive(replicas)
            name = leader_identity(zk, self.layout)
            if name in by_identity:
                return by_identity[name]
            time.sleep(0.2)
        raise RuntimeError(f"no replica was elected within {timeout:.0f}s")

    @staticmethod
    def _check_alive(replicas: list[Replica]) -> None:
        for replica in replicas:
            if replica.process.poll() is not None:
                tail = replica.log.read_text(errors="replace").splitlines()[-20:]
                raise RuntimeError(
                    f"{replica.identity} exited with {replica.process.returncode}:\n"
                    + "\n".join(tail)
                )

    def manifests(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        script = self.work / "record.sh"
        script.write_text(RECORD_SCRIPT.format(log=self.runs_log))
        script.chmod(0o755)
        app = {
            "apiVersion": API_VERSION,
            "kind": "CloudApp",
            "metadata": {"name": APP, "namespace": NAMESPACE},
            "spec": {
                "appURL": str(script),
                "bootstrapScript": "./record.sh",
                "cpuCount": 0.1,
                "memoryMB": 32.0,
                # The emulator's fetcher cache races when tasks on one agent share a URI.
                "appCacheEnable": False,
            },
        }
        jobs = [
            self.job_manifest(self.job_name(index), cron_of(index)) for index in range(self.jobs)
        ]
        return app, jobs

    @staticmethod
    def job_manifest(name: str, cron: str) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": "CloudJob",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {
                "appName": APP,
                "cron": cron,
                "shardingTotalCount": 1,
                "cpuCount": 0.1,
                "memoryMB": 16.0,
                "script": {"commandLine": "./record.sh"},
            },
        }

    @staticmethod
    def job_name(index: int) -> str:
        return f"scale-{index:05d}"

    def create(
        self, api: ControlPlane, jobs: list[dict[str, Any]], label: str
    ) -> tuple[float, dict[str, float]]:
        """Create the jobs from concurrent clients, for at most `create_within` seconds:
        when it began, and name → when the API server accepted it."""
        accepted: dict[str, float] = {}
        failures: list[str] = []
        began = time.time()
        deadline = began + self.create_within
        stop = threading.Event()

        def create(chunk: list[dict[str, Any]]) -> None:
            client = api.client()
            for job in chunk:
                if stop.is_set() or time.time() > deadline:
                    return
                try:
                    client.create(job)
                except (ApiError, OSError) as error:
                    failures.append(f"{job['metadata']['name']}: {error}")
                    continue
                accepted[job["metadata"]["name"]] = time.time()

        chunks = [jobs[n::CREATE_CLIENTS] for n in range(CREATE_CLIENTS)]
        with ThreadPoolExecutor(CREATE_CLIENTS) as pool:
            try:
                list(pool.map(create, chunks))
            finally:
                # An interrupt must not wait for the remaining creates.
                stop.set()
        took = max(accepted.values(), default=began) - began
        cut = len(jobs) - len(accepted) - len(failures)
        self.report.line(
            label,
            f"{len(accepted)} objects in {took:.1f} s = {len(accepted) / max(took, 1e-9):.1f}"
            f" objects/s ({CREATE_CLIENTS} clients; {len(failures)} refused"
            + (
                f"; {cut} NOT created within {self.create_within:.0f} s, saturated)" if cut else ")"
            ),
            {
                "created": len(accepted),
                "seconds": round(took, 2),
                "refused": len(failures),
                "not_created": cut,
            },
        )
        for failure in failures[:5]:
            self.report.line("  refused", failure)
        return began, accepted

    def _await_scheduled(
        self,
        watch: ScheduledWatch,
        began: float,
        accepted: dict[str, float],
        replicas: list[Replica],
        since: str,
    ) -> None:
        timeout = 60.0 + len(accepted) / 20
        deadline = time.monotonic() + timeout

        def scheduled() -> int:
            # A create that timed out may still have been made: only count those accepted.
            return sum(1 for name in accepted if name in watch.seen)

        while scheduled() < len(accepted) and time.monotonic() < deadline:
            self._check_alive(replicas)
            time.sleep(0.5)
        latencies = [watch.seen[name] - at for name, at in accepted.items() if name in watch.seen]
        summary = spread(latencies)
        self.report.line(
            f"{since}→Scheduled",
            f"{seconds(summary)}; {scheduled()}/{len(accepted)} Scheduled",
            summary,
        )
        if scheduled() == len(accepted) and accepted:
            everything = max(watch.seen[name] for name in accepted) - began
            self.report.line(
                "all Scheduled",
                f"{everything:.1f} s after the first create"
                if since == "apply"
                else f"{everything:.1f} s after the controller started",
                round(everything, 2),
            )
        else:
            self.report.line(
                "all Scheduled",
                f"NOT within {timeout:.0f} s: {len(accepted) - scheduled()} jobs never "
                "seen Scheduled (saturated); measuring the window anyway",
                "timeout",
            )

    def _measure(
        self,
        mesos: EmulatedMesos,
        zk: KazooClient,
        replicas: list[Replica],
        leader: Replica,
        offsets: dict[str, int],
        api: ControlPlane,
        watch: ScheduledWatch,
    ) -> None:
        runs_per_second = len(offsets) / PERIOD
        # Poll often enough that no task leaves the master's 1000 finished ones unseen.
        sampler = MasterSampler(mesos, max(0.5, min(5.0, 300 / max(runs_per_second, 1.0))))
        window_start = math.ceil(time.time() + SETTLE_SECONDS)
        window_end = window_start + self.window
        applies = SingleApplies(
            api.client(),
            [
                (at, self.job_manifest(probe_name(index), PROBE_CRON))
                for index, at in enumerate(probe_times(window_start, window_end, self.probes))
            ],
        )
        self._sleep_until(window_start, replicas)
        sampler.start()
        applies.start()
        try:
            labels = {mesos.process.pid: "mesos emulator"}
            labels.update({r.process.pid: f"standby {r.identity}" for r in replicas})
            kill = self._window(window_start, window_end, zk, labels, replicas, leader)
            self.drain(offsets, window_start, window_end, replicas)
        finally:
            sampler.stop()
            applies.stop()
            sampler.join(timeout=60)
        sampler.sample()
        records = self.records()
        self._report_runs(records, offsets, window_start, window_end, sampler, replicas)
        if self.probes:
            self._report_single_applies(applies, watch, len(offsets))
        if kill is not None:
            self._report_kill(kill, records, offsets, sampler)

    def _sleep_until(self, moment: float, replicas: list[Replica]) -> None:
        while time.time() < moment:
            self._check_alive(replicas)
            time.sleep(min(0.5, max(0.0, moment - time.time())))

    def _window(
        self,
        start: float,
        end: float,
        zk: KazooClient,
        labels: dict[int, str],
        replicas: list[Replica],
        leader: Replica,
    ) -> tuple[float, float | None] | None:
        """Sample CPU and RSS over [start, end); kill the leader a third in when asked.
        Returns (kill time, new leader elected time) when a kill happened."""
        processes = children_of(os.getpid())
        cpu_start = {pid: cpu_of(pid) for pid in processes}
        rss: list[float] = []
        kill_at = start + self.window / 3 if self.kill_leader else None
        killed: float | None = None
        leader_cpu: float | None = None
        standby_cpu: dict[int, float | None] = {}
        identities: dict[int, str] = {}
        elected: float | None = None
        while time.time() < end:
            if killed is None:
                self._check_alive(replicas)
                sample = rss_of(leader.process.pid)
                if sample:
                    rss.append(sample)
            if kill_at is not None and killed is None and time.time() >= kill_at:
                leader_cpu = cpu_of(leader.process.pid)
                standby_cpu = {r.process.pid: cpu_of(r.process.pid) for r in replicas}
                identities = {r.process.pid: r.identity for r in replicas}
                os.kill(leader.process.pid, signal.SIGKILL)
                killed = time.time()
                self.report.line(
                    "leader killed",
                    f"kill -9 {leader.identity} at +{killed - start:.1f} s into the window",
                    round(killed - start, 1),
                )
            if killed is not None and elected is None:
                name = leader_identity(zk, self.layout)
                if name is not None and name != leader.identity:
                    elected = time.time()
            time.sleep(0.1 if killed is not None and elected is None else 1.0)
        now = time.time()
        wall = now - start
        usage: dict[str, float] = {}
        for pid, name in processes.items():
            before, after = cpu_start[pid], cpu_of(pid)
            if before is None or after is None or pid == leader.process.pid:
                continue
            label = f"{labels.get(pid, COMMANDS.get(name, name))}[{pid}]"
            at_kill = standby_cpu.get(pid)
            if killed is not None and at_kill is not None:
                # The standby leads after the kill: its two roles are apart.
                who = f"{identities[pid]}[{pid}]"
                standing = 100 * (at_kill - before) / (killed - start)
                usage[f"{who} standing by until the kill"] = round(standing, 1)
                leading = 100 * (after - at_kill) / (now - killed)
                usage[f"{who} leading after the kill"] = round(leading, 1)
            else:
                usage[label] = round(100 * (after - before) / wall, 1)
        leader_start = cpu_start.get(leader.process.pid)
        leader_end = leader_cpu if killed is not None else cpu_of(leader.process.pid)
        controller = (
            round(100 * (leader_end - leader_start) / ((killed or time.time()) - start), 1)
            if leader_start is not None and leader_end is not None
            else None
        )
        rss_median = statistics.median(rss) if rss else None
        self.report.line(
            "controller CPU / RSS",
            f"{controller if controller is not None else '?'}% of one core / "
            f"{rss_median or 0:.0f} MiB median, {max(rss, default=0):.0f} MiB max"
            + (" (the leader, until it was killed)" if killed is not None else ""),
            {
                "cpu_percent": controller,
                "rss_mib_median": rss_median,
                "rss_mib_max": max(rss, default=None),
            },
        )
        others = ", ".join(f"{k} {v}%" for k, v in sorted(usage.items(), key=lambda kv: -kv[1]))
        self.report.line("rest of the stack, CPU", others, usage)
        load = Path("/proc/loadavg").read_text().split()[:3]
        self.report.line(
            "load average after the window",
            f"{' '.join(load)} (1, 5, 15 min; {os.cpu_count()} cpus)",
            load,
        )
        if killed is None:
            return None
        return killed, elected

    def drain(
        self, offsets: dict[str, int], start: float, end: float, replicas: list[Replica]
    ) -> None:
        """Wait for late runs of the window's fires to record themselves: until all did,
        or none more for 15 s, and at most 120 s."""
        deadline = time.monotonic() + 120
        quiet_since, ran = time.monotonic(), -1
        while time.monotonic() < deadline and time.monotonic() - quiet_since < 15:
            counted = tally(self.records(), offsets, start, end)
            if counted.ran >= counted.expected:
                return
            if counted.ran > ran:
                quiet_since, ran = time.monotonic(), counted.ran
            time.sleep(2.0)

    def records(self) -> list[RunRecord]:
        if not self.runs_log.exists():
            return []
        lines = self.runs_log.read_text(errors="replace").splitlines()
        return [record for line in lines if (record := parse_run_line(line)) is not None]

    def _report_runs(
        self,
        records: list[RunRecord],
        offsets: dict[str, int],
        start: float,
        end: float,
        sampler: MasterSampler,
        replicas: list[Replica],
    ) -> None:
        counted = tally(records, offsets, start, end)
        self.report.line(
            "runs expected / ran / doubled",
            f"{counted.expected} / {counted.ran} / {counted.doubled} "
            f"(lost {counted.lost}; {counted.stray} runs of no expected fire)",
            {
                "expected": counted.expected,
                "ran": counted.ran,
                "doubled": counted.doubled,
                "lost": counted.lost,
                "stray": counted.stray,
                "ran_by_period": list(counted.by_period),
            },
        )
        skipped = [
            fire
            for replica in replicas
            for fire in misfires(replica.log.read_text(errors="replace"), start, end)
        ]
        self.report.line(
            "cron fires the controller skipped",
            f"{len(skipped)} in the window (noticed too late, as its log says; "
            f"each is a lost run of every job on that cron)",
            len(skipped),
        )
        self._report_unsuccessful()
        self._report_replica_metrics(replicas)
        self.report.line(
            "fires ran per 30 s of the window",
            ", ".join(map(str, counted.by_period)) + f" (of {len(offsets)} each)",
        )
        in_window = [r for r in records if r.fire is not None and start <= r.fire < end]
        fires = {r.task_id: r.fire for r in in_window if r.fire is not None}
        accept = spread(delays(fires, sampler.staging))
        self.report.line("fire→ACCEPT", seconds(accept), accept)
        running = spread(delays(fires, sampler.running))
        self.report.line("fire→TASK_RUNNING", seconds(running), running)
        process = spread(delays(fires, {r.task_id: r.started for r in in_window}))
        self.report.line("fire→process start", seconds(process), process)
        if sampler.errors:
            self.report.line("master /state polls failed", str(sampler.errors), sampler.errors)

    def _report_unsuccessful(self) -> None:
        """The runs the controller's history says ended other than succeeded, the
        master's or the task's message included (any run, in the window or not)."""
        database = self.work / "history" / "history.db"
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
            rows = db.execute(
                "select state, message from runs where outcome is not null"
                " and outcome != 'succeeded'"
            ).fetchall()
        counted = unsuccessful(rows)
        self.report.line(
            "runs not succeeded (history)",
            f"{sum(counted.values())}"
            + "".join(f"; {n} {why}" for why, n in counted.most_common(3)),
            dict(counted),
        )

    def _report_replica_metrics(self, replicas: list[Replica]) -> None:
        """From the live replicas' metrics at the end: the status updates the agents
        sent again while the first copy still waited (each means that replica's status
        path was 10 s or more behind), and what became of the runs cron fires asked for
        (planned ahead and launched at the fire, queued for a launch cycle, merged)."""
        scraped = []
        for replica in replicas:
            if replica.process.poll() is None:
                with contextlib.suppress(OSError, ValueError):
                    scraped.append(scrape(replica.metrics_port))
        if not scraped:
            self.report.line("status updates resent (dropped)", "unknown (no replica answered)")
            self.report.line("cron fire runs by outcome", "unknown (no replica answered)")
            return
        resent = sum(int(m.get("cloudjob_status_updates_resent_total", 0)) for m in scraped)
        self.report.line(
            "status updates resent (dropped)",
            f"{resent} (copies dropped by the controller; an agent resends after 10 s)",
            resent,
        )
        outcomes = fire_run_outcomes(scraped)
        self.report.line(
            "cron fire runs by outcome",
            ", ".join(f"{n} {outcome}" for outcome, n in outcomes.items()) or "none",
            outcomes,
        )

    def _report_single_applies(
        self,
        applies: SingleApplies,
        watch: ScheduledWatch,
        existing: int,
    ) -> None:
        # The creates were due by the window's end; one still in flight (a slow API
        # server) gets the client's own timeout to finish.
        applies.join(timeout=60)
        deadline = max(applies.created.values(), default=0.0) + PROBE_GRACE_SECONDS
        while any(name not in watch.seen for name in applies.created) and time.time() < deadline:
            time.sleep(0.5)
        outcome = probe_outcome(
            self.probes, dict(applies.created), len(applies.refused), dict(watch.seen)
        )
        missing = [
            f"{outcome['not_scheduled']:.0f} NOT Scheduled within "
            f"{PROBE_GRACE_SECONDS:.0f} s of the last create"
            if outcome["not_scheduled"]
            else "",
            f"{outcome['refused']:.0f} refused" if outcome["refused"] else "",
            f"{outcome['not_created']:.0f} not created" if outcome["not_created"] else "",
        ]
        self.report.line(
            "single apply→Scheduled",
            f"while {existing} jobs exist: {seconds(outcome if outcome['scheduled'] else None)}; "
            f"{outcome['scheduled']:.0f}/{self.probes} probes Scheduled"
            + "".join(f"; {text}" for text in missing if text),
            outcome,
        )
        for failure in applies.refused[:5]:
            self.report.line("  refused", failure)

    def _report_kill(
        self,
        kill: tuple[float, float | None],
        records: list[RunRecord],
        offsets: dict[str, int],
        sampler: MasterSampler,
    ) -> None:
        killed, elected = kill
        self.report.line(
            "kill -9 → new leader elected",
            f"{elected - killed:.1f} s" if elected else "no new leader within the window",
            round(elected - killed, 2) if elected else "none",
        )
        # From the election on: a launch stamped between the kill and the election is the
        # killed leader's, an ACCEPT it sent just before it died.
        first = first_after(sampler.staging.values(), elected or killed)
        self.report.line(
            "kill -9 → first launch by new one",
            f"{first - killed:.1f} s (the first TASK_STAGING after the "
            + (f"election; {first - elected:.1f} s after it)" if elected else "kill)")
            if first
            else "none",
            round(first - killed, 2) if first else "none",
        )
        if elected:
            fires = {r.task_id: r.fire for r in records if r.fire is not None}
            due = first_after(fires.values(), elected)
            if due is None:
                self.report.line("new leader's first fire → ACCEPT", "no fire ran after it", "none")
            else:
                ones = {task: fire for task, fire in fires.items() if fire == due}
                lag = spread(delays(ones, sampler.staging))
                self.report.line(
                    "new leader's first fire → ACCEPT",
                    f"the fire {due - elected:.1f} s after the election: "
                    + (seconds(lag) if lag else "no ACCEPT seen"),
                    lag,
                )
        around_end = (first or killed + 60) + 10
        counted = tally(records, offsets, killed - 10, around_end)
        self.report.line(
            "runs around the kill",
            f"fires in [kill-10 s, first launch+10 s]: expected {counted.expected}, ran "
            f"{counted.ran}, lost {counted.lost}, doubled {counted.doubled}",
            {"expected": counted.expected, "ran": counted.ran, "doubled": counted.doubled},
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/scale.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--jobs", type=int, required=True, help="number of CloudJobs")
    parser.add_argument(
        "--window", type=float, default=120.0, help="seconds of runs to count (default 120)"
    )
    parser.add_argument(
        "--kill-leader",
        action="store_true",
        help="run two replicas and kill -9 the leader a third into the window",
    )
    parser.add_argument("--agents", type=int, default=50, help="Mesos agents (default 50)")
    parser.add_argument("--cpus", type=float, default=16.0, help="cpus per agent (default 16)")
    parser.add_argument(
        "--preload",
        action="store_true",
        help="create the jobs before the controller starts (Scheduled is then timed from "
        "its start)",
    )
    parser.add_argument(
        "--create-within",
        type=float,
        default=600.0,
        help="stop creating after this many seconds and measure the jobs created (default 600)",
    )
    parser.add_argument(
        "--probes",
        type=int,
        default=10,
        help="jobs created one at a time during the window to time a single apply → "
        "Scheduled while the N jobs exist (default 10; 0: none)",
    )
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (logs, runs, sandboxes)"
    )
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.window < PERIOD or args.probes < 0:
        parser.error(
            f"--jobs must be at least 1, --window at least {PERIOD} s and --probes at least 0"
        )
    work = Path(tempfile.mkdtemp(prefix="cloudjob-scale-"))
    bench = Bench(
        args.jobs,
        args.window,
        args.kill_leader,
        args.agents,
        args.cpus,
        work,
        preload=args.preload,
        create_within=args.create_within,
        probes=args.probes,
    )
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    status = 0
    try:
        bench.run()
    except Stopped:
        bench.report.line("interrupted", "partial results above", "interrupted")
        status = 130
    except RuntimeError as error:
        bench.report.line("failed", str(error), str(error))
        status = 1
    finally:
        if args.json:
            args.json.write_text(json.dumps(bench.report.values, indent=2) + "\n")
        if args.keep:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
