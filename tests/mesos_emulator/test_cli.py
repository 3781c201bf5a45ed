"""The Local Mesos command line starts a cluster, says it is an emulator, and stops on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from devcluster.zookeeper import free_port

pytestmark = pytest.mark.integration


def test_cli_banner_and_cluster(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devcluster.mesos",
            "--agents",
            "2",
            "--port",
            str(port),
            "--work-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(6)]  # banner (3), master, 2 agents
        text = "".join(lines)
        assert "NOT a production Mesos" in text
        assert f"master: http://127.0.0.1:{port}" in text
        assert text.count("agent:  ") == 2
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/state", timeout=10) as response:
            state = json.loads(response.read())
        assert len(state["slaves"]) == 2
        ranges = sorted(s["resources"]["ports"] for s in state["slaves"])
        assert ranges == ["[31000-31999]", "[32000-32999]"]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
