"""End to end: an app's package changed while its transient and daemon jobs run. Every later run
happens on the new version, none is lost, the daemon never has all its shards down, and no
executor of the old version is left (docs/framework.md#app-upgrades).

The jobs are Python callables of the app package: each run appends its job, shard, fire
time, task and the package's `VERSION` file to a log, so the runs are counted by the jobs
themselves; the daemon's availability is read from the task states the local Mesos
master kept."""

from __future__ import annotations

import io
import itertools
import json
import math
import sys
import tarfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.stack import NAMESPACE, Stack, app_manifest, job_manifest
from tests.waiting import wait_for

pytestmark = pytest.mark.system

TICK_SECONDS = 3
TICKS = f"*/{TICK_SECONDS} * * * * ?"
EVERY_SECOND = "* * * * * ?"
TERMINAL = {
    "TASK_FINISHED",
    "TASK_FAILED",
    "TASK_KILLED",
    "TASK_LOST",
    "TASK_ERROR",
    "TASK_DROPPED",
    "TASK_GONE",
}
APP = "upgraded"
JOB_CODE = """
import json
import pathlib


def run(ctx):
    version = (pathlib.Path(ctx.app_root) / "VERSION").read_text().strip()
    record = {
        "job_name": ctx.job_name,
        "sharding_item": ctx.sharding_item,
        "fire_time": ctx.fire_time.isoformat() if ctx.fire_time else None,
        "task_id": ctx.task_id,
        "version": version,
    }
    with open(ctx.job_parameter, "a") as log:
        log.write(json.dumps(record) + "\\n")
"""


def package(path: Path, version: str) -> Path:
    """An app package whose bootstrap starts the project's executor with this
    interpreter, with the recording job and a VERSION file."""
    files = {
        "bin/start": (f"#!/bin/sh\nexec {sys.executable} -m controller.executor\n", 0o755),
        "VERSION": (f"{version}\n", 0o644),
        "upgrade_jobs.py": (JOB_CODE, 0o644),
    }
    with tarfile.open(path, "w:gz") as archive:
        for name, (text, mode) in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            archive.addfile(info, io.BytesIO(data))
    return path


def runs(log: Path, job: str) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    key = f"{NAMESPACE}.{job}"
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [run for run in lines if run["job_name"] == key]


def app_executors(stack: Stack) -> list[str]:
    return [e for e in stack.mesos_executors() if e.startswith(f"{NAMESPACE}.{APP}@-@")]


def complete_fires(log: Path, job: str, version: str) -> list[datetime]:
    """Fire times of `version` whose two shards both ran."""
    shards: dict[str, set[int]] = {}
    for run in runs(log, job):
        if run["version"] == version:
            shards.setdefault(run["fire_time"], set()).add(run["sharding_item"])
    return sorted(datetime.fromisoformat(f) for f, s in shards.items() if s == {0, 1})


def daemon_running_intervals(stack: Stack, job: str) -> list[tuple[float, float]]:
    """(TASK_RUNNING, end or +inf) of each task of the job, from the master's task states."""
    intervals = []
    prefix = f"{NAMESPACE}.{job}@-@"
    for framework in stack.mesos.state().get("frameworks", []):
        for task in [*framework.get("tasks", []), *framework.get("completed_tasks", [])]:
            if not task["id"].startswith(prefix):
                continue
            statuses = task["statuses"]
            began = min(s["timestamp"] for s in statuses if s["state"] == "TASK_RUNNING")
            ended = [s["timestamp"] for s in statuses if s["state"] in TERMINAL]
            intervals.append((began, min(ended) if ended else math.inf))
    return sorted(intervals)


def test_changing_an_apps_package_moves_every_run_to_the_new_version_and_loses_none(
    stack: Stack,
) -> None:
    log = stack.workdir / "upgrade-runs.log"
    old = package(stack.workdir / "app-v1.tar.gz", "v1")
    new = package(stack.workdir / "app-v2.tar.gz", "v2")
    stack.start_controller()
    stack.kube.create(app_manifest(APP, str(old), appCacheEnable=False))
    python = {"python": {"callable": "upgrade_jobs:run"}, "jobParameter": str(log)}
    # Misfire on: a fire while the previous run is still going (a new executor starting
    # on a busy machine) is queued with its own fire time, so every fire must run.
    stack.kube.create(
        job_manifest("ticker", APP, TICKS, shardingTotalCount=2, misfire=True, **python)
    )
    stack.kube.create(
        job_manifest(
            "resident",
            APP,
            EVERY_SECOND,
            shardingTotalCount=2,
            executionType="DAEMON",
            **python,
        )
    )
    wait_for(
        lambda: (complete_fires(log, "ticker", "v1"), runs(log, "resident")),
        lambda seen: len(seen[0]) >= 2 and {r["sharding_item"] for r in seen[1]} == {0, 1},
        timeout=90,
        what="the transient job's fires and both daemon shards running on v1",
    )
    old_executors = app_executors(stack)
    assert old_executors

    stack.patch_spec("CloudApp", APP, appURL=str(new))

    def moved() -> tuple[list[datetime], set[int], list[str]]:
        daemon = {r["sharding_item"] for r in runs(log, "resident") if r["version"] == "v2"}
        return complete_fires(log, "ticker", "v2"), daemon, app_executors(stack)

    wait_for(
        moved,
        lambda seen: (
            len(seen[0]) >= 3
            and seen[1] == {0, 1}
            and bool(seen[2])
            and not set(seen[2]) & set(old_executors)
        ),
        timeout=120,
        what="runs on v2 of both jobs, and no executor of v1 left",
    )

    # Every later run is on the new version: no v1 fire after the first v2 fire, and no
    # v1 daemon run of a shard after its first v2 run.
    ticker = runs(log, "ticker")
    first_new = min(datetime.fromisoformat(r["fire_time"]) for r in ticker if r["version"] == "v2")
    assert all(
        datetime.fromisoformat(r["fire_time"]) < first_new for r in ticker if r["version"] == "v1"
    )
    for shard in (0, 1):
        versions = [r["version"] for r in runs(log, "resident") if r["sharding_item"] == shard]
        switch = versions.index("v2")
        assert set(versions[switch:]) == {"v2"}, f"daemon shard {shard} ran v1 after v2"

    # None lost: from the first complete fire to the last, every fire ran both shards once.
    counted: dict[tuple[str, int], int] = {}
    for run in ticker:
        key = (run["fire_time"], run["sharding_item"])
        counted[key] = counted.get(key, 0) + 1
    assert max(counted.values()) == 1, "a shard of a fire ran twice"
    fires = sorted(
        set(complete_fires(log, "ticker", "v1")) | set(complete_fires(log, "ticker", "v2"))
    )
    gaps = [(a, b) for a, b in itertools.pairwise(fires) if (b - a).total_seconds() != 3]
    assert gaps == [], f"fires lost between {gaps}"

    # The daemon never had both shards down: from its first task running on, some task of
    # it was running at every moment.
    intervals = daemon_running_intervals(stack, "resident")
    covered_until = intervals[0][1]
    for began, ended in intervals[1:]:
        assert began <= covered_until, (
            f"no daemon task was running between {covered_until} and {began}"
        )
        covered_until = max(covered_until, ended)
    assert covered_until == math.inf

    # One new version's executors remain, and no task failed or was refused.
    assert len({e.rsplit("@-@", 1)[1] for e in app_executors(stack)}) == 1
    unexpected = {
        task_id: state
        for task_id, state in stack.mesos_tasks().items()
        if state not in ("TASK_RUNNING", "TASK_FINISHED", "TASK_KILLED")
    }
    assert unexpected == {}
