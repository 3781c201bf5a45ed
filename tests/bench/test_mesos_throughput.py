"""The Local Mesos throughput benchmark (bench/mesos_throughput.py) at a tiny rate, so
it cannot rot: it starts the emulator in its own process, prints its row, counts every
run it launched once, ended and finished, and leaves no process or directory behind."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.bench.test_scale import processes_mentioning

pytestmark = pytest.mark.system

PROJECT = Path(__file__).resolve().parents[2]
WORK_PREFIX = "cloudjob-mesos-throughput-"


def work_directories() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob(f"{WORK_PREFIX}*")}


def test_the_benchmark_runs_every_task_it_launches_and_cleans_up() -> None:
    before = work_directories()
    done = subprocess.run(
        [
            sys.executable,
            "bench/mesos_throughput.py",
            "--rates",
            "10",
            "--window",
            "3",
            "--warmup",
            "2",
            "--agents",
            "2",
        ],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [row] = [line.split() for line in done.stdout.splitlines() if line.startswith("    10 ")]
    assert float(row[1]) > 0  # sent/s
    [counts] = [line for line in done.stdout.splitlines() if line.startswith("runs launched")]
    launched = int(counts.split()[2].rstrip(","))
    assert launched > 0
    assert counts == (
        f"runs launched {launched}, recorded by the tasks {launched} ({launched} distinct), "
        f"TASK_FINISHED {launched}, failed 0, acknowledgements failed 0"
    ), done.stdout
    assert not work_directories() - before
    assert not processes_mentioning(WORK_PREFIX)
