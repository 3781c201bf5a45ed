"""The soak (bench/soak.py) as a user runs it, tiny so it cannot rot: ten jobs for 100
seconds with seed 5, which plays each of the five fault kinds once; it samples every
series it documents, counts the runs (none doubled), summarises, and leaves no process
behind."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.test_scale import processes_mentioning, stop

pytestmark = pytest.mark.system

PROJECT = Path(__file__).resolve().parents[2]
JOBS = 10
KINDS = {"kill-leader", "master-restart", "agent-restart", "apiserver-restart", "zk-server-restart"}


def test_a_tiny_soak_plays_every_fault_samples_every_series_and_summarises(
    tmp_path: Path,
) -> None:
    work = tmp_path / "soak"
    process = subprocess.Popen(
        [
            sys.executable,
            "bench/soak.py",
            f"--jobs={JOBS}",
            "--duration=100",
            "--seed=5",
            "--fault-gap=8",
            "--interval=5",
            "--warmup=20",
            "--role-warmup=10",
            "--agents=3",
            f"--work-dir={work}",
        ],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        output, _ = process.communicate(timeout=480)
    finally:
        stop(process)
    assert process.returncode == 0, output

    with (work / "samples.csv").open(newline="") as rows:
        series = {row["series"]: float(row["value"]) for row in csv.DictReader(rows)}
    for unit in ("rss_mib", "fds", "threads", "asyncio_tasks", "leading"):
        assert any(name.startswith("replica-") and name.endswith(f" {unit}") for name in series)
    assert series["zookeeper znodes"] > 0
    assert series["api cloudjobs objects"] == JOBS
    assert series["api cloudapps objects"] == 1
    for name in ("kube-apiserver rss_mib", "etcd rss_mib", "zookeeper rss_mib"):
        assert series[name] > 0, name

    summary = json.loads((work / "summary.json").read_text())
    played = [fault for fault in summary["faults"] if fault.get("begin")]
    assert {fault["fault"].split("#")[0] for fault in played} == KINDS
    assert not [fault for fault in summary["faults"] if "FAILED" in fault.get("done", "")]
    runs = summary["runs"]["whole soak"]
    assert runs["ran"] > 0
    assert runs["doubled"] == 0
    assert "zookeeper znodes" in summary["series"]
    assert any(name.endswith(" leader rss_mib") for name in summary["series"])
    assert "slope/h" in output
    assert not (work / "mesos").exists()
    assert processes_mentioning(str(work)) == []
