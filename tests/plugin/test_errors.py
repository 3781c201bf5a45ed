"""`kubectl-cloudjob` run as a process where nothing answers: no usable kubeconfig, an
API server that is down, a history API URL with nothing behind it. Each says what
failed, where, and what to do, and exits with 1; a bad command line exits with 2."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from devcluster.zookeeper import free_port
from tests.plugin.world import PLUGIN_BIN

pytestmark = pytest.mark.integration


def plugin(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDJOB_", "KUBECONFIG"))}
    return subprocess.run(
        [str(PLUGIN_BIN / "kubectl-cloudjob"), *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_no_kubeconfig_is_told_with_the_ways_out(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    done = plugin("trigger", "report", KUBECONFIG=str(missing))
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: cannot use the kubeconfig {missing}: ")
    assert "--kubeconfig" in done.stderr and "--server" in done.stderr


def test_an_api_server_that_is_down_is_named(tmp_path: Path) -> None:
    server = f"https://127.0.0.1:{free_port()}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u", "namespace": "ns"}}],
        "current-context": "x",
    }
    kubeconfig = tmp_path / "down.yaml"
    kubeconfig.write_text(yaml.safe_dump(config))
    done = plugin("trigger", "report", "--kubeconfig", str(kubeconfig), "--context", "x")
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: cannot reach the Kubernetes API server at {server}: ")
    other = plugin("queue", "--kubeconfig", str(kubeconfig), "--context", "nosuch")
    assert other.returncode == 1
    assert "nosuch" in other.stderr and "cannot use the kubeconfig" in other.stderr


def test_a_history_api_url_with_nothing_behind_it_is_named() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = plugin("stats", "--server", url)
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: cannot reach the history API at {url} (")
    assert "export the CLOUDJOB_API line scripts/dev prints" in done.stderr


def test_a_bad_command_line_exits_with_2() -> None:
    done = plugin("runs", "report", "--outcome", "lost")
    assert done.returncode == 2
    assert "invalid choice: 'lost'" in done.stderr
    zero = plugin("runs", "report", "--limit", "0", "--server", "http://x")
    assert (zero.returncode, zero.stderr) == (1, "error: --limit must be at least 1, not 0\n")
    both = plugin("runs", "report", "-A", "--server", "http://x")
    assert both.returncode == 1
    assert "a job cannot be named across all namespaces" in both.stderr
