"""The `dev` command as a user runs it: the example jobs run within a minute; kubectl, with
the KUBECONFIG dev prints, describes, lists and triggers them as on a cluster; `kubectl
cloudjob`, with the CLOUDJOB_API dev prints, lists the runs the history API has; and
Ctrl-C stops everything cleanly."""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.system

PROJECT = Path(__file__).resolve().parents[2]
WITHIN = 120.0


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

    def read_until(done: Callable[[], bool], what: str) -> None:
        while not done():
            assert time.monotonic() < deadline, f"within {WITHIN}s, not seen: {what}\n" + "".join(
                seen
            )
            assert process.poll() is None, "dev exited early:\n" + "".join(seen)
            if selector.select(timeout=1.0):
                seen.append(process.stdout.readline())

    try:
        for name, check in wanted.items():
            read_until(check, name)
        assert any("not a production component" in line for line in seen), "the banner must say so"

        # What the user does next, with the kubectl and KUBECONFIG dev printed.
        exported = next(line for line in seen if line.strip().startswith("export KUBECONFIG="))
        kubeconfig, path = re.findall(r"KUBECONFIG=(\S+) PATH=(\S+):\$PATH", exported)[0]
        env = dict(os.environ, KUBECONFIG=kubeconfig, PATH=f"{path}:{os.environ['PATH']}")

        def kubectl(*args: str) -> str:
            done = subprocess.run(
                ["kubectl", *args], env=env, capture_output=True, text=True, timeout=60
            )
            assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
            return done.stdout

        assert "v1.37.2" in kubectl("version")
        assert "Name:         hello-script" in kubectl("describe", "cloudjob", "hello-script")
        wide = kubectl("get", "cjob", "-o", "wide")
        assert "hello-script" in wide and "<invalid>" not in wide, wide
        kubectl("annotate", "cloudjob", "hello-script", f"cloudjob.io/trigger={time.time():.0f}")
        read_until(
            lambda: any("CloudJob/hello-script Normal Triggered" in line for line in seen),
            "the triggered run",
        )

        # The kubectl plugin, reading the local controller's API at the CLOUDJOB_API dev
        # printed, lists the runs the API has (newer ones may have come since).
        api = re.findall(r"export CLOUDJOB_API=(\S+)", "".join(seen))[0]
        env["CLOUDJOB_API"] = api
        listed = json.loads(kubectl("cloudjob", "runs", "hello-script", "-o", "json"))["items"]
        query = "/api/v1/runs?namespace=default&job=hello-script"
        with urllib.request.urlopen(api + query, timeout=10) as reply:
            served = json.load(reply)["items"]
        assert listed, "hello-script has run"
        newest = listed[0]["id"]
        assert [r["id"] for r in listed] == [r["id"] for r in served if r["id"] <= newest]
        by_id = {r["id"]: r for r in served}
        assert [r for r in listed if r["outcome"]] == [
            by_id[r["id"]] for r in listed if r["outcome"]
        ]
        table = kubectl("cloudjob", "runs", "hello-script").splitlines()
        assert table[0].split()[:3] == ["SHARD", "OUTCOME", "HOST"], table
        assert len(table) >= 1 + len(listed)
        assert "WINDOW" in kubectl("cloudjob", "stats")

        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, rest
    assert rest.rstrip().endswith("stopped")
