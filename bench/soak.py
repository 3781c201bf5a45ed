"""Soak: N cron jobs for an hour on the whole stack, with a fault every few minutes, and
the resources of every process sampled over time to show they stay flat.

    .venv/bin/python bench/soak.py [--jobs 1000] [--duration 3600] [--seed 1]
        [--fault-gap 180] [--faults kill-leader,...] [--interval 30] [--warmup S]
        [--work-dir DIR]

The stack is the scale benchmark's (`bench/scale.py`): a real ZooKeeper, the real
Kubernetes control plane with the CRDs and the chart's RBAC, the controller as `python
-m controller run` with its production defaults, two replicas contending, and the same
workload (one CloudApp, N transient one-shard jobs over ten `S/30` crons, every run
recorded by the job itself). The Mesos emulator runs in this process (`LocalMesos`)
rather than in its own, so that its master and agents can be restarted.

The fault schedule is drawn from `--seed` by the campaign's `plan`
(`devcluster.campaign.faults`), about `--fault-gap` seconds apart, from the kinds this
stack can play: kill -9 of the leader (a new replica starts after the hold, so two
contend again), Mesos master restart, an agent down and up, API server restart and
ZooKeeper restart (the one server stopped and started on its data).

Every `--interval` seconds a sampler records, per live replica, its RSS, open file
descriptors, threads (/proc) and asyncio tasks (its `cloudjob_asyncio_tasks` gauge), and
whether it leads; ZooKeeper's node count (`srvr`); the API server's CloudJobs,
CloudApps, Events and Leases; and the RSS of the API server, etcd, ZooKeeper and this
process (the emulator). At the end it counts runs expected / ran / doubled as the scale
benchmark does and prints, per series, the first sample after the warm-up, the last,
min, max, the slope per hour and whether it is flat (`bench/soak_summary.py`).

Everything lands in the work directory (kept): `samples.csv`, `faults.jsonl`,
`summary.json` and every process's log. Ctrl-C stops the soak and still summarises.
docs/soak.md explains the numbers and has the measured results.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import logging
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError
from scale import Bench, Report, Stopped, interrupt, machine
from scale_measures import misfires, offset_of, tally
from scale_probes import NAMESPACE
from scale_stack import (
    Replica,
    children_of,
    cpu_of,
    leader_identity,
    rss_of,
    scrape,
    start_replica,
    stop_group,
)
from soak_summary import Summary, summaries

from controller.loop_metrics import ASYNCIO_TASKS
from controller.resources import API_VERSION
from controller.state.layout import Layout
from devcluster.campaign.faults import Fault, Kind, plan, timeline
from devcluster.kube import ControlPlane
from devcluster.kube.errors import ApiError
from devcluster.kube.identities import grant_chart_rbac
from devcluster.mesos import AgentSpec, LocalMesos
from devcluster.zookeeper import ZooKeeperServer, node_count

KINDS = (
    Kind.KILL_LEADER,
    Kind.MASTER_RESTART,
    Kind.AGENT_RESTART,
    Kind.APISERVER_RESTART,
    Kind.ZK_SERVER_RESTART,
)
SESSION_TIMEOUT = 10.0  # the controller's default ZooKeeper session
# The API server's objects counted at each sample: label → collection path.
COLLECTIONS = {
    "cloudjobs": f"/apis/{API_VERSION}/cloudjobs",
    "cloudapps": f"/apis/{API_VERSION}/cloudapps",
    "events": "/api/v1/events",
    "leases": "/apis/coordination.k8s.io/v1/leases",
}
# Stack processes by command name (ZooKeeper runs in a JVM).
STACK = {"kube-apiserver": "kube-apiserver", "etcd": "etcd", "java": "zookeeper"}


def proc_status(pid: int) -> tuple[float, int] | None:
    """RSS (MiB) and thread count of a process, from /proc/<pid>/status."""
    rss = rss_of(pid)
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    threads = next(
        (int(line.split()[1]) for line in text.splitlines() if line.startswith("Threads:")), 0
    )
    return (rss or 0.0), threads


def open_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


@dataclass
class Stack:
    """The soak's processes; `replicas` holds every replica started, dead ones too."""

    work: Path
    zookeeper: ZooKeeperServer
    mesos: LocalMesos
    api: ControlPlane
    env: dict[str, str]
    zk: KazooClient
    replicas: list[Replica] = field(default_factory=list)
    killed: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    layout: Layout = field(default_factory=Layout)

    def start_replica(self) -> Replica:
        with self.lock:
            replica = start_replica(f"replica-{len(self.replicas) + 1}", self.work, self.env)
            self.replicas.append(replica)
        return replica

    def live(self) -> list[Replica]:
        with self.lock:
            return [r for r in self.replicas if r.process.poll() is None]

    def leader(self) -> Replica | None:
        try:
            name = leader_identity(self.zk, self.layout)
        except (KazooException, KazooTimeoutError):  # ZooKeeper may be the fault played
            return None
        return next((r for r in self.live() if r.identity == name), None)

    def perform(self, fault: Fault, begin: bool) -> str:
        """Begin or end a fault; says what was done."""
        kind = fault.kind
        if kind is Kind.KILL_LEADER:
            if not begin:
                return f"started {self.start_replica().identity}"
            victim = self.leader()
            if victim is None:
                return "no live leader to kill"
            self.killed.add(victim.identity)
            victim.process.kill()
            victim.process.wait(30)
            return f"kill -9 {victim.identity}"
        if kind is Kind.MASTER_RESTART:
            self.mesos.restart_master(timeout=120)
            return "restarted the Mesos master"
        if kind is Kind.AGENT_RESTART:
            agent = self.mesos.agents[fault.target % len(self.mesos.agents)].agent_id
            if begin:
                self.mesos.bring_agent_down(agent)
                return f"took agent {agent} down"
            self.mesos.bring_agent_up(agent, timeout=120)
            return f"brought agent {agent} up"
        if kind is Kind.APISERVER_RESTART:
            if begin:
                self.api.kill_apiserver()
                return "killed the API server"
            self.api.start_apiserver()
            return "started the API server"
        if begin:
            self.zookeeper.halt()
            return "stopped ZooKeeper"
        self.zookeeper.start(timeout=120)
        return "started ZooKeeper"


@dataclass(eq=False)
class Sampler(threading.Thread):
    """Every `interval` seconds, one row per (series, value) appended to `samples.csv`
    and kept in `points` (series → [(seconds since `origin`, value)])."""

    stack: Stack
    origin: float
    interval: float
    path: Path
    points: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))
    errors: int = 0
    # pid → (CPU seconds, wall time) at the last sample, for each replica's CPU share.
    cpu: dict[int, tuple[float, float]] = field(default_factory=dict)
    stop_event: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        super().__init__(name="soak-sampler", daemon=True)

    def run(self) -> None:
        with self.path.open("w", newline="") as out:
            rows = csv.writer(out)
            rows.writerow(["seconds", "epoch", "series", "value"])
            while True:
                now = time.time()
                for series, value in self.sample().items():
                    elapsed = round(now - self.origin, 1)
                    self.points[series].append((elapsed, value))
                    rows.writerow([elapsed, round(now, 1), series, value])
                out.flush()
                if self.stop_event.wait(self.interval):
                    return

    def sample(self) -> dict[str, float]:
        values: dict[str, float] = {}
        for replica in self.stack.live():
            prefix, pid = replica.identity, replica.process.pid
            status, fds = proc_status(pid), open_fds(pid)
            if status is not None:
                values[f"{prefix} rss_mib"] = round(status[0], 1)
                values[f"{prefix} threads"] = status[1]
            if fds is not None:
                values[f"{prefix} fds"] = fds
            used, now = cpu_of(pid), time.time()
            if used is not None:
                before = self.cpu.get(pid)
                if before is not None and now > before[1]:
                    share = 100 * (used - before[0]) / (now - before[1])
                    values[f"{prefix} cpu_percent"] = round(share, 1)
                self.cpu[pid] = (used, now)
            try:
                metrics = scrape(replica.metrics_port)
            except (OSError, ValueError):
                self.errors += 1
                continue
            if ASYNCIO_TASKS in metrics:
                values[f"{prefix} asyncio_tasks"] = metrics[ASYNCIO_TASKS]
            values[f"{prefix} leading"] = metrics.get("cloudjob_scheduler_leading", 0.0)
        for pid, name in children_of(os.getpid()).items():
            if name in STACK and (status := proc_status(pid)) is not None:
                values[f"{STACK[name]} rss_mib"] = round(status[0], 1)
        own = proc_status(os.getpid())
        if own is not None:
            values["soak+emulator rss_mib"] = round(own[0], 1)
        values["soak+emulator fds"] = open_fds(os.getpid()) or 0
        znodes = node_count(self.stack.zookeeper.port)
        if znodes is not None:
            values["zookeeper znodes"] = znodes
        values.update(self._objects())
        values.update(self._mesos())
        return values

    def _mesos(self) -> dict[str, float]:
        """What the master holds: CPUs in use on the agents, tasks not yet ended, and
        executors; tasks or executors that never end would hold the agents' resources."""
        try:
            state = self.stack.mesos.state()
        except (RuntimeError, TimeoutError):
            self.errors += 1
            return {}
        frameworks = state.get("frameworks", [])
        return {
            "mesos used cpus": round(
                sum(a.get("used_resources", {}).get("cpus", 0.0) for a in state.get("slaves", [])),
                1,
            ),
            "mesos active tasks": sum(len(f.get("tasks", [])) for f in frameworks),
            "mesos executors": sum(len(f.get("executors", [])) for f in frameworks),
        }

    def _objects(self) -> dict[str, float]:
        client = self.stack.api.client()
        counted: dict[str, float] = {}
        for label, path in COLLECTIONS.items():
            try:
                listed = client.request("GET", path, params={"limit": "1"})
            except (ApiError, OSError, ValueError):
                self.errors += 1
                continue
            remaining = listed.get("metadata", {}).get("remainingItemCount") or 0
            counted[f"api {label} objects"] = len(listed.get("items", [])) + remaining
        return counted


def read_samples(path: Path) -> dict[str, list[tuple[float, float]]]:
    """The series of a `samples.csv`."""
    points: dict[str, list[tuple[float, float]]] = defaultdict(list)
    with path.open(newline="") as rows:
        for row in csv.DictReader(rows):
            points[row["series"]].append((float(row["seconds"]), float(row["value"])))
    return points


def table(result: dict[str, Summary]) -> str:
    columns = ("n", 4), ("first", 9), ("last", 9), ("min", 9), ("max", 9), ("slope/h", 9)
    header = f"{'series':<34} " + " ".join(f"{name:>{width}}" for name, width in columns) + "  flat"
    lines = [header, "-" * len(header)]
    for series, s in result.items():
        lines.append(
            f"{series:<34} {s.samples:>4} {s.first:>9.1f} {s.last:>9.1f} {s.low:>9.1f} "
            f"{s.high:>9.1f} {s.slope_per_hour:>+9.1f}  {'yes' if s.flat else 'NO'}"
        )
    return "\n".join(lines)


@dataclass
class Soak:
    jobs: int
    duration: float
    seed: int
    fault_gap: float
    kinds: tuple[Kind, ...]
    interval: float
    warmup: float
    role_warmup: float
    agents: int
    cpus: float
    event_ttl: int
    work: Path
    report: Report = field(default_factory=Report)
    played: list[dict[str, Any]] = field(default_factory=list)

    def run(self) -> None:
        bench = Bench(
            self.jobs, self.duration, True, self.agents, self.cpus, self.work, report=self.report
        )
        self.report.line(
            "soak",
            f"{self.jobs} jobs ({self.jobs / 30:.1f} runs/s) for {self.duration:.0f} s, faults "
            f"about every {self.fault_gap:.0f} s (seed {self.seed}), samples every "
            f"{self.interval:.0f} s, warm-up {self.warmup:.0f} s, Event TTL {self.event_ttl} s; "
            f"work directory {self.work}",
        )
        about = machine()
        self.report.line(
            "machine",
            f"{about['cpus']} cpus, {about['memory_mib']} MiB, load average at start "
            f"{' '.join(about['loadavg_at_start'])} (shared with other work)",
            about,
        )
        with contextlib.ExitStack() as exits:
            stack = self._start(exits)
            app, jobs = bench.manifests()
            stack.api.client().create(app)
            for _ in range(2):
                stack.start_replica()
            exits.callback(self._stop_replicas, stack)
            self._await_leader(stack)
            _, accepted = bench.create(stack.api, jobs, "create rate")
            offsets = {
                f"{NAMESPACE}.{bench.job_name(n)}": offset_of(n)
                for n in range(self.jobs)
                if bench.job_name(n) in accepted
            }
            origin = time.time()
            sampler = Sampler(stack, origin, self.interval, self.work / "samples.csv")
            sampler.start()
            try:
                self._play(stack, origin)
            finally:
                sampler.stop_event.set()
                sampler.join(timeout=120)
                end = time.time()
                self._report(bench, stack, sampler, offsets, origin, end)

    def _start(self, exits: contextlib.ExitStack) -> Stack:
        (self.work / "zookeeper").mkdir(parents=True, exist_ok=True)
        zookeeper = ZooKeeperServer(data_dir=self.work / "zookeeper")
        zookeeper.start()
        exits.callback(zookeeper.stop)
        mesos = LocalMesos(
            [
                AgentSpec(cpus=self.cpus, mem=16384.0, hostname=f"agent-{n}")
                for n in range(self.agents)
            ],
            work_dir=self.work / "mesos",
        )
        mesos.start()
        exits.callback(mesos.stop)
        api = ControlPlane(self.work / "kube", event_ttl=self.event_ttl)
        api.start()
        exits.callback(api.stop)
        api.install_crds()
        identity = grant_chart_rbac(api, self.work)
        env = dict(
            os.environ,
            CLOUDJOB_MESOS__MASTER=mesos.master_address,
            CLOUDJOB_ZOOKEEPER__HOSTS=zookeeper.hosts,
            CLOUDJOB_KUBERNETES__KUBECONFIG=str(identity.kubeconfig),
            CLOUDJOB_HTTP__HOST="127.0.0.1",
            CLOUDJOB_HISTORY__DATA_DIR=str(self.work / "history"),
        )
        zk = KazooClient(hosts=zookeeper.hosts, timeout=SESSION_TIMEOUT)
        zk.start(timeout=30)
        exits.callback(zk.stop)
        return Stack(self.work, zookeeper, mesos, api, env, zk)

    @staticmethod
    def _stop_replicas(stack: Stack) -> None:
        for replica in stack.replicas:
            stop_group(replica.process, 20)

    def _await_leader(self, stack: Stack, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = stack.leader()
            if leader is not None:
                self.report.line("leader", leader.identity)
                return
            time.sleep(0.5)
        raise RuntimeError(f"no replica was elected within {timeout:.0f}s")

    def _play(self, stack: Stack, origin: float) -> None:
        """The fault schedule over the duration, keeping two replicas alive."""
        # The last minute without faults: the last samples are of a stack at rest.
        faults = plan(
            random.Random(self.seed),
            duration=max(self.duration - 60, 1),
            kinds=self.kinds,
            mean_gap=self.fault_gap,
            agents=self.agents,
            session_timeout=SESSION_TIMEOUT,
        )
        self.report.line(
            "faults planned", ", ".join(f.describe() for f in faults) or "none", len(faults)
        )
        log = (self.work / "faults.jsonl").open("a")
        pending = timeline(faults)
        try:
            while time.time() < origin + self.duration:
                self._replace_crashed(stack, origin, log)
                if pending and time.time() >= origin + pending[0].at:
                    action = pending.pop(0)
                    fault = faults[action.fault]
                    moment = time.time() - origin
                    try:
                        done = stack.perform(fault, action.begin)
                    except (RuntimeError, TimeoutError, OSError) as error:
                        done = f"FAILED: {error}"
                    entry = {
                        "at": round(moment, 1),
                        "took": round(time.time() - origin - moment, 1),
                        "fault": fault.describe(),
                        "begin": action.begin,
                        "done": done,
                    }
                    self.played.append(entry)
                    log.write(json.dumps(entry) + "\n")
                    log.flush()
                    self.report.line(f"  +{moment:.0f} s {fault.kind}", done)
                    continue
                time.sleep(0.5)
        finally:
            log.close()

    def _replace_crashed(self, stack: Stack, origin: float, log: Any) -> None:
        """A replica that exited without being killed is reported and replaced."""
        for replica in list(stack.replicas):
            if replica.process.poll() is None or replica.identity in stack.killed:
                continue
            stack.killed.add(replica.identity)
            moment = time.time() - origin
            fresh = stack.start_replica()
            entry = {
                "at": round(moment, 1),
                "crashed": replica.identity,
                "code": replica.process.returncode,
                "replaced_by": fresh.identity,
            }
            self.played.append(entry)
            log.write(json.dumps(entry) + "\n")
            self.report.line(
                f"  +{moment:.0f} s CRASH",
                f"{replica.identity} exited {replica.process.returncode}; started {fresh.identity}",
            )

    def _report(
        self,
        bench: Bench,
        stack: Stack,
        sampler: Sampler,
        offsets: dict[str, int],
        origin: float,
        end: float,
    ) -> None:
        bench.drain(offsets, origin, end, stack.live())
        records = bench.records()
        runs: dict[str, Any] = {}
        for label, start in (("whole soak", origin), ("after warm-up", origin + self.warmup)):
            counted = tally(records, offsets, start, end)
            runs[label] = {
                "expected": counted.expected,
                "ran": counted.ran,
                "doubled": counted.doubled,
                "lost": counted.lost,
                "stray": counted.stray,
            }
            self.report.line(
                f"runs expected / ran / doubled, {label}",
                f"{counted.expected} / {counted.ran} / {counted.doubled} (lost {counted.lost}; "
                f"{counted.stray} runs of no expected fire)",
            )
        skipped = sum(
            len(misfires(r.log.read_text(errors="replace"), origin, end)) for r in stack.replicas
        )
        self.report.line(
            "cron fires the controller skipped", f"{skipped} (misfired, as the logs say)"
        )
        begun = [p for p in self.played if p.get("begin")]
        self.report.line(
            "faults played",
            f"{len(begun)} begun, {sum(1 for p in self.played if 'crashed' in p)} crashes replaced",
        )
        result = summaries(sampler.points, warmup=self.warmup, role_warmup=self.role_warmup)
        print(table(result), flush=True)
        grew = [series for series, s in result.items() if not s.flat]
        self.report.line("not flat", ", ".join(grew) if grew else "none")
        load = Path("/proc/loadavg").read_text().split()[:3]
        self.report.line("load average at the end", " ".join(load))
        summary = {
            "settings": {
                "event_ttl": self.event_ttl,
                "jobs": self.jobs,
                "duration": self.duration,
                "seed": self.seed,
                "fault_gap": self.fault_gap,
                "interval": self.interval,
                "warmup": self.warmup,
                "role_warmup": self.role_warmup,
            },
            "runs": runs,
            "misfired_fires": skipped,
            "faults": self.played,
            "sampler_errors": sampler.errors,
            "series": {name: vars(s) for name, s in result.items()},
            "report": self.report.values,
        }
        (self.work / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/soak.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--jobs", type=int, default=1000, help="number of CloudJobs (default 1000)")
    parser.add_argument(
        "--duration",
        type=float,
        default=3600.0,
        help="seconds of soak after the creates (default 3600)",
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="seed of the fault schedule (default 1)"
    )
    parser.add_argument(
        "--fault-gap", type=float, default=180.0, help="mean seconds between faults (default 180)"
    )
    parser.add_argument(
        "--faults", default=",".join(KINDS), help=f"kinds to draw from (default {','.join(KINDS)})"
    )
    parser.add_argument(
        "--interval", type=float, default=30.0, help="seconds between samples (default 30)"
    )
    parser.add_argument(
        "--warmup",
        type=float,
        help="seconds of samples left out of the summary (default a sixth of the duration)",
    )
    parser.add_argument(
        "--role-warmup",
        type=float,
        default=600.0,
        help="seconds after a replica first leads (or stands by) left out of that role's "
        "summary (default 600: a new leader fills its per-job books for about ten minutes)",
    )
    parser.add_argument("--agents", type=int, default=20, help="Mesos agents (default 20)")
    parser.add_argument("--cpus", type=float, default=16.0, help="cpus per agent (default 16)")
    parser.add_argument(
        "--event-ttl",
        type=int,
        default=900,
        help="seconds the API server keeps an Event (default 900, so that their number "
        "levels off within the soak; the API server's own default is an hour)",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        help="where everything is written (default a new temporary directory; kept)",
    )
    parser.add_argument(
        "--summarise",
        type=Path,
        metavar="WORK_DIR",
        help="run nothing: print the summary of an earlier soak's samples.csv again",
    )
    args = parser.parse_args(argv)
    if args.summarise:
        points = read_samples(args.summarise / "samples.csv")
        end = max((t for samples in points.values() for t, _ in samples), default=0.0)
        warmup = args.warmup if args.warmup is not None else end / 6
        print(table(summaries(points, warmup=warmup, role_warmup=args.role_warmup)))
        return 0
    try:
        kinds = tuple(Kind(name) for name in args.faults.split(",") if name)
    except ValueError as error:
        parser.error(str(error))
    if not set(kinds) <= set(KINDS):
        parser.error(f"--faults: this stack plays only {','.join(KINDS)}")
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="cloudjob-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    # The emulator's and kazoo's logs (reconnections during faults) go to a file, not
    # between the lines of the report.
    logging.basicConfig(
        filename=work / "soak.log",
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    soak = Soak(
        jobs=args.jobs,
        duration=args.duration,
        seed=args.seed,
        fault_gap=args.fault_gap,
        kinds=kinds,
        interval=args.interval,
        warmup=args.warmup if args.warmup is not None else args.duration / 6,
        role_warmup=args.role_warmup,
        agents=args.agents,
        cpus=args.cpus,
        event_ttl=args.event_ttl,
        work=work,
    )
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    status = 0
    try:
        soak.run()
    except Stopped:
        soak.report.line("interrupted", "partial results above")
        status = 130
    except RuntimeError as error:
        soak.report.line("failed", str(error))
        status = 1
    finally:
        # The sandboxes of every run are the bulk of the directory and say nothing more.
        shutil.rmtree(work / "mesos", ignore_errors=True)
        print(f"work directory kept: {work}")
    return status


if __name__ == "__main__":
    sys.exit(main())
