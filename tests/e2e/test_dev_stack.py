"""The `dev` command as a user runs it: the example jobs run within a minute, and Ctrl-C
stops everything cleanly."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
WITHIN = 90.0


def test_dev_runs_the_example_jobs_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "devcluster", "--work-dir", str(tmp_path)],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    assert process.stdout is not None
    seen: list[str] = []
    wanted = {
        "script job ran all shards": lambda: (
            sum("[task] TASK_FINISHED default.hello-script" in line for line in seen) >= 3
        ),
        "dataflow job finished": lambda: any(
            "[task] TASK_FINISHED default.numbers-dataflow" in line for line in seen
        ),
        "daemon job completed runs": lambda: any(
            "CloudJob/resident-python Normal Succeeded" in line for line in seen
        ),
    }
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + WITHIN
    try:
        while not all(check() for check in wanted.values()):
            assert time.monotonic() < deadline, (
                f"within {WITHIN}s, not seen: "
                f"{[name for name, check in wanted.items() if not check()]}\n" + "".join(seen)
            )
            assert process.poll() is None, "dev exited early:\n" + "".join(seen)
            if selector.select(timeout=1.0):
                seen.append(process.stdout.readline())
        assert any("not production" in line for line in seen), "the banner must say so"
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, rest
    assert rest.rstrip().endswith("stopped")
