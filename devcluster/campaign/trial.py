"""One trial of the campaign: start the stack, let the jobs run, play the seed's fault
schedule, let it settle, and check the ledger.

`run_trial` is the imperative shell around the pure parts: the schedule
(`devcluster.campaign.faults`), the ledger (`devcluster.campaign.ledger`) and the
checker (`devcluster.campaign.checker`). Every wait is time-boxed, and every process the
trial starts is ended when it returns or raises (Ctrl-C included). Called by
`python -m devcluster.campaign` and by the short campaign test.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kazoo.protocol.states import ZnodeStat

from devcluster.campaign.checker import CronJob, Rules, TriggerJob, Window
from devcluster.campaign.evidence import Evidence, judge, save
from devcluster.campaign.faults import (
    AGENT_FAULTS,
    ALL_KINDS,
    LEADERLESS,
    Fault,
    Kind,
    lingering,
    plan,
    resource,
    timeline,
)
from devcluster.campaign.ledger import JOB_SCRIPT, LEDGER, read_ledger
from devcluster.campaign.monitor import Monitor, outages, wait_until
from devcluster.campaign.report import TrialResult
from devcluster.campaign.rig import FRAMEWORK_TIMINGS, LAUNCH_TIMEOUT, SESSION_TIMEOUT, Rig
from devcluster.kube import ControlPlane
from devcluster.kube.errors import ApiError
from devcluster.kube.identities import grant_chart_rbac

API_VERSION = "cloudjob.io/v1alpha1"
TRIGGER_ANNOTATION = "cloudjob.io/trigger"
# Never fires during a trial: every run of the trigger job is a trigger's.
YEARLY = "0 0 0 1 1 ?"
CRON_JOBS = (
    CronJob("steady", period=3, shards=2, misfire=False, failover=False),
    CronJob("backlog", period=4, shards=2, misfire=True, failover=True),
    CronJob("failover", period=5, shards=3, misfire=False, failover=True),
)
TRIGGER_JOB, TRIGGER_SHARDS = "triggered", 2
# The jobs set no spec.startingDeadlineSeconds: the default, raised to the controller's
# misfire threshold if that is longer (docs/semantics.md#catching-up-after-a-leader-change).
STARTING_DEADLINE = max(300.0, FRAMEWORK_TIMINGS["misfire_threshold_seconds"])

Say = Callable[[str], None]


@dataclass(frozen=True)
class TrialSettings:
    duration: float = 60.0
    """Seconds of the fault phase."""
    settle: float = 60.0
    """At most this long for what is owed to run after the faults."""
    quiet: float = 10.0
    """At least this long after the faults before checking (late doubles show)."""
    agents: int = 3
    kinds: Sequence[Kind] = ALL_KINDS
    mean_gap: float = 6.0
    rules: Rules = field(default_factory=Rules)
    paced_triggers: bool = False
    """Write a new trigger value only once every shard of the previous one has run
    (a moment drawn while it is pending is skipped). Off, values come at their drawn
    moments, and one the leader has not acted on yet when the next comes is lost
    (docs/campaign.md#findings)."""


def _manifests(namespace: str, app_url: str, command: str) -> list[dict[str, Any]]:
    def job(name: str, cron: str, shards: int, **spec: Any) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": "CloudJob",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "appName": "ledger",
                "cron": cron,
                "shardingTotalCount": shards,
                "cpuCount": 0.05,
                "memoryMB": 8.0,
                "script": {"commandLine": command},
                **spec,
            },
        }

    app = {
        "apiVersion": API_VERSION,
        "kind": "CloudApp",
        "metadata": {"name": "ledger", "namespace": namespace},
        "spec": {
            "appURL": app_url,
            "bootstrapScript": "./bin/start",
            "cpuCount": 0.1,
            "memoryMB": 32.0,
            "appCacheEnable": False,
        },
    }
    cron = [
        job(j.key, f"*/{j.period} * * * * ?", j.shards, misfire=j.misfire, failover=j.failover)
        for j in CRON_JOBS
    ]
    return [app, *cron, job(TRIGGER_JOB, YEARLY, TRIGGER_SHARDS)]


def trigger_moments(rng: random.Random, duration: float) -> list[float]:
    moments, moment = [], rng.uniform(2.0, 6.0)
    while moment < duration:
        moments.append(round(moment, 1))
        moment += rng.uniform(4.0, 10.0)
    return moments


def _every_shard_ran(ledger: Path, job: str, since: float) -> bool:
    shards = {r.shard for r in read_ledger(ledger) if r.job == job and (r.fire_time or 0) >= since}
    return len(shards) == TRIGGER_SHARDS


def _play(
    lanes: dict[str, list[tuple[float, Callable[[], None]]]], phase: float, *, timeout: float
) -> list[str]:
    """Run each lane's steps at their moments (seconds after `phase`), the lanes side by
    side; returns what failed or did not finish in time."""
    failures: list[str] = []

    def lane(name: str, steps: list[tuple[float, Callable[[], None]]]) -> None:
        for at, step in steps:
            delay = phase + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            try:
                step()
            except Exception as error:  # a fault that cannot be played is a finding
                failures.append(f"{name} at {at:.1f}s failed: {error!r}")

    threads = [
        threading.Thread(target=lane, args=(name, steps), name=f"lane-{name}", daemon=True)
        for name, steps in lanes.items()
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            failures.append(f"{thread.name} did not finish within {timeout:.0f}s")
    return failures


def run_trial(
    number: int,
    seed: int,
    *,
    api: ControlPlane,
    work_dir: Path,
    settings: TrialSettings = TrialSettings(),
    say: Say = print,
) -> TrialResult:
    began = time.monotonic()
    rng = random.Random(seed)
    faults = plan(
        rng,
        duration=settings.duration,
        kinds=settings.kinds,
        mean_gap=settings.mean_gap,
        agents=settings.agents,
        session_timeout=SESSION_TIMEOUT,
    )
    triggers = trigger_moments(rng, settings.duration)
    say(f"trial {number} seed {seed}: {len(faults)} faults, {len(triggers)} triggers")
    for fault in faults:
        say(f"  {fault.describe()}")
    namespace = f"trial-{seed}"
    work_dir.mkdir(parents=True, exist_ok=True)
    ledger = work_dir / LEDGER
    script = work_dir / "job.sh"
    script.write_text(JOB_SCRIPT)
    app = work_dir / "app.sh"
    app.write_text("#!/bin/sh\nexit 0\n")
    # The chart's RBAC for a release watching only this trial's namespace: the
    # replicas never see an earlier trial's jobs.
    identity = grant_chart_rbac(
        api, work_dir, release=f"trial-{seed}", watch_namespaces=(namespace,)
    )
    rig = Rig(work_dir, api, identity, namespace, agents=settings.agents, zk_namespace=namespace)
    monitor = Monitor(rig)
    notes: list[str] = []
    with contextlib.ExitStack() as stack:
        stack.callback(rig.close)
        rig.start()
        first = rig.start_replica()
        wait_until(lambda: rig.leader() == first.identity, 90, f"{first.identity} to lead")
        rig.start_replica()
        kube = api.client()
        for manifest in _manifests(namespace, str(app), f"sh {script} {ledger}"):
            kube.create(manifest)
        cron_keys = {f"{namespace}.{job.key}": job for job in CRON_JOBS}

        def every_shard_ran() -> bool:
            seen = {(run.job, run.shard) for run in read_ledger(ledger)}
            return all((key, s) in seen for key, j in cron_keys.items() for s in range(j.shards))

        wait_until(every_shard_ran, 120, "every shard of every cron job to run once")
        watcher = threading.Thread(target=monitor.run, name="campaign-monitor", daemon=True)
        watcher.start()
        watched_from = time.time()
        stack.callback(monitor.stop)
        wait_until(rig.healthy, 60, "the stack to be whole before the faults")
        start = time.time() + 1.0

        begun: dict[int, float] = {}
        ended: dict[int, float] = {}
        written: list[float] = []
        tokens: list[str] = []
        # What the leader records as the last trigger handled (docs/state.md): the values
        # it acted on, as opposed to those replaced before it saw them. A watch can miss
        # a value replaced quickly (or while the harness's session is away); the node's
        # version counts every value recorded all the same.
        handled: list[str] = []
        versions: list[int] = []

        def recorded(data: bytes | None, stat: ZnodeStat | None) -> None:
            if data is not None and stat is not None:
                handled.append(data.decode())
                versions.append(stat.version)

        assert rig.zk is not None
        rig.zk.DataWatch(f"/{namespace}/state/trigger/{namespace}.{TRIGGER_JOB}", recorded)
        # One lane per resource, each in a thread of its own: a slow act (an API server
        # starting on a busy machine) delays only what follows it on its resource.
        lanes: dict[str, list[tuple[float, Callable[[], None]]]] = defaultdict(list)
        phase = time.monotonic()
        for action in timeline(faults):
            fault = faults[action.fault]

            def act(
                fault: Fault = fault, index: int = action.fault, b: bool = action.begin
            ) -> None:
                (begun if b else ended)[index] = time.time()
                note = rig.perform(fault, b)
                say(f"  {time.monotonic() - phase:6.1f}s {fault.describe()}: {note}")
                if not fault.hold:
                    ended[index] = time.time()

            lanes[resource(fault.kind, fault.target, settings.agents)].append((action.at, act))
        for count, moment in enumerate(triggers):

            def trigger(value: str = f"{seed}-{count}") -> None:
                if (
                    settings.paced_triggers
                    and written
                    and not _every_shard_ran(ledger, f"{namespace}.{TRIGGER_JOB}", written[-1])
                ):
                    say(f"  {time.monotonic() - phase:6.1f}s trigger {value} skipped: one pending")
                    return
                patch = {"metadata": {"annotations": {TRIGGER_ANNOTATION: value}}}
                # The leader may record the value before the API server's answer is
                # back here: the value dates from before it is sent.
                sent = time.time()
                try:
                    kube.patch(API_VERSION, "CloudJob", TRIGGER_JOB, patch, namespace=namespace)
                except (ApiError, OSError) as error:
                    say(f"  {time.monotonic() - phase:6.1f}s trigger {value} not written: {error}")
                    return
                written.append(sent)
                tokens.append(value)
                say(f"  {time.monotonic() - phase:6.1f}s trigger {value} written")

            lanes["triggers"].append((moment, trigger))
        notes.extend(_play(lanes, phase, timeout=settings.duration + 180.0))
        try:
            wait_until(rig.healthy, 120, "the stack to be whole after the faults")
        except TimeoutError as error:
            notes.append(str(error))
        cut = time.time()

        windows = [
            Window(
                fault.describe(),
                begun[index],
                monitor.recovered(
                    ended.get(index, begun[index]) + lingering(fault, launch_timeout=LAUNCH_TIMEOUT)
                )
                or time.time(),
                leaderless=fault.kind in LEADERLESS,
                agent_fault=fault.kind in AGENT_FAULTS,
                agent=rig.agent_id(fault.target)
                if fault.kind in AGENT_FAULTS and fault.kind is not Kind.CRASH_EXECUTOR
                else None,
            )
            for index, fault in enumerate(faults)
            if index in begun
        ]
        # An outage no fault caused (on a loaded machine, a ZooKeeper ping that timed out
        # suspends the leader) is a window too: around it a misfire-off job's fires may
        # merge, as around a fault's.
        windows += [Window("outage", start, end) for start, end in outages(list(monitor.samples))]
        jobs = tuple(
            CronJob(
                f"{namespace}.{j.key}",
                j.period,
                j.shards,
                j.misfire,
                j.failover,
                starting_deadline=STARTING_DEADLINE,
            )
            for j in CRON_JOBS
        )

        def evidence() -> Evidence:
            assert rig.mesos is not None
            return Evidence(
                seed=seed,
                faults=faults,
                jobs=jobs,
                trigger_job=TriggerJob(
                    f"{namespace}.{TRIGGER_JOB}",
                    TRIGGER_SHARDS,
                    tuple(written),
                    tuple(tokens),
                    tuple(dict.fromkeys(handled)),
                    max(versions) + 1 if versions else 0,
                ),
                start=start,
                cut=cut,
                windows=tuple(windows),
                subscriptions=tuple(
                    sub for sub in rig.mesos.subscriptions() if sub[0] >= watched_from
                ),
                calls=tuple(call for call in rig.mesos.calls() if call[0] >= watched_from),
                leaders=tuple(monitor.leaders()),
                incidents=tuple(notes),
            )

        quiet_until = time.monotonic() + settings.quiet
        with contextlib.suppress(TimeoutError):
            wait_until(
                lambda: (
                    time.monotonic() > quiet_until
                    and judge(evidence(), read_ledger(ledger), settings.rules)[0].lost == 0
                ),
                settings.settle,
                "what is owed to run",
                every=1.0,
            )
        final = evidence()
        save(final, work_dir)
        result, notes = judge(final, read_ledger(ledger), settings.rules)
        monitor.stop()
    return TrialResult(number, seed, faults, result, notes, time.monotonic() - began)
