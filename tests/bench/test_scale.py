"""The scale benchmark (bench/scale.py) as a user runs it, at a tiny N so it cannot rot:
it builds the whole stack, every expected run happens once, every number it prints is
there and sane (the single applies during the window included, and left out of the
workload's counts), and it leaves no process behind — after a full run and after Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.waiting import wait_for

pytestmark = pytest.mark.system

PROJECT = Path(__file__).resolve().parents[2]
JOBS = 20
PROBES = 3


def bench(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "bench/scale.py", *args],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that mention `text` (the run's work directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in command:
            found.append(command)
    return found


def work_directory(output: str) -> str:
    match = re.search(r"work directory (/\S+?)\)", output)
    assert match, output
    return match.group(1)


def test_a_tiny_run_counts_every_run_once_and_prints_every_number(tmp_path: Path) -> None:
    results = tmp_path / "scale.json"
    process = bench(
        "--jobs", str(JOBS), "--window", "30", "--probes", str(PROBES), "--json", str(results)
    )
    try:
        output, _ = process.communicate(timeout=240)
    finally:
        stop(process)
    assert process.returncode == 0, output
    numbers: dict[str, Any] = json.loads(results.read_text())

    assert numbers["create_rate"]["created"] == JOBS
    assert numbers["create_rate"]["refused"] == 0
    assert numbers["apply_to_scheduled"]["n"] == JOBS
    assert 0 < numbers["apply_to_scheduled"]["p50"] <= numbers["apply_to_scheduled"]["p99"]
    assert numbers["all_scheduled"] > 0
    # A 30-second window holds exactly one fire of each job.
    runs = numbers["runs_expected_ran_doubled"]
    assert (runs["expected"], runs["ran"], runs["doubled"], runs["stray"]) == (JOBS, JOBS, 0, 0)
    assert numbers["cron_fires_the_controller_skipped"] == 0
    assert numbers["runs_not_succeeded_history"] == {}, "every run succeeded"
    # Scraped from the live controller: never 10 s behind with a few jobs.
    assert numbers["status_updates_resent_dropped"] == 0
    # Every fire's run of an idle job launched at its fire or queued for a launch cycle,
    # none merged into another (the fires before the window counted too).
    outcomes = numbers["cron_fire_runs_by_outcome"]
    assert set(outcomes) <= {"launched-at-fire", "added"}, outcomes
    assert sum(outcomes.values()) >= JOBS, outcomes
    for stage in ("fire_to_accept", "fire_to_task_running", "fire_to_process_start"):
        assert numbers[stage]["n"] == JOBS, stage
        assert 0 <= numbers[stage]["p50"] <= numbers[stage]["p99"] < 30, stage
    assert numbers["fire_to_accept"]["p50"] <= numbers["fire_to_task_running"]["p50"]
    controller = numbers["controller_cpu_rss"]
    assert 0 < controller["cpu_percent"] < 200
    assert 30 < controller["rss_mib_median"] <= controller["rss_mib_max"] < 4096
    stack = numbers["rest_of_the_stack_cpu"]
    assert any(name.startswith("mesos emulator") for name in stack), stack
    assert any(name.startswith("kube-apiserver") for name in stack), stack
    # The probes, one create each during the window, all Scheduled; the counts above
    # (apply→Scheduled, runs) are of the workload's jobs alone.
    assert re.search(
        rf"^single apply→Scheduled +while {JOBS} jobs exist: p50 [0-9.]+ s, p99 [0-9.]+ s, "
        rf"max [0-9.]+ s \(n={PROBES}\); {PROBES}/{PROBES} probes Scheduled$",
        output,
        re.MULTILINE,
    ), output
    single = numbers["single_apply_to_scheduled"]
    assert (single["probes"], single["created"], single["scheduled"]) == (PROBES,) * 3
    assert (single["refused"], single["not_created"], single["not_scheduled"]) == (0, 0, 0)
    assert single["n"] == PROBES
    assert 0 < single["p50"] <= single["p99"] < 30
    assert processes_mentioning(work_directory(output)) == []


def test_ctrl_c_stops_every_process_it_started() -> None:
    process = bench("--jobs", str(JOBS))
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    seen: list[str] = []

    def stack_up() -> bool:
        if selector.select(timeout=1.0):
            seen.append(process.stdout.readline() if process.stdout else "")
        return any(line.startswith("stack up") for line in seen) or process.poll() is not None

    try:
        wait_for(lambda: None, lambda _: stack_up(), timeout=180, what="the stack to come up")
        work = work_directory("".join(seen))
        assert processes_mentioning(work), "the stack's processes name the work directory"
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=120)
    finally:
        stop(process)
    assert process.returncode == 130, "".join(seen) + output
    assert "interrupted" in output
    assert processes_mentioning(work) == []
    assert not Path(work).exists()


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()
