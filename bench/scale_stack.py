"""The processes of the scale benchmark (`bench/scale.py`): the Mesos emulator as its
own process (`python -m devcluster.mesos`), controller replicas as `python -m controller
run`, who leads according to ZooKeeper, and what /proc says about a process (CPU time,
RSS, children). Each process gets a session of its own so that stopping it takes its
children along.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NoNodeError
from prometheus_client.parser import text_string_to_metric_families
from scale_measures import cpu_seconds, rss_mib

from controller.state.layout import Layout
from devcluster.zookeeper import free_port

PROJECT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def stop_group(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM to the process's own group, SIGKILL after `grace` seconds."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def spawn(argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=PROJECT, start_new_session=True
        )


@dataclass
class EmulatedMesos:
    """`python -m devcluster.mesos` in its own process, registered in ZooKeeper if given one."""

    process: subprocess.Popen[bytes]
    url: str

    @classmethod
    def start(
        cls, work: Path, zk_hosts: str | None, agents: int, cpus: float, timeout: float = 180.0
    ) -> EmulatedMesos:
        log = work / "mesos.log"
        registered = [f"--zk={zk_hosts}", "--zk-path=/mesos"] if zk_hosts else []
        process = spawn(
            [
                sys.executable,
                "-m",
                "devcluster.mesos",
                f"--agents={agents}",
                f"--cpus={cpus}",
                *registered,
                "--port=0",
                f"--work-dir={work / 'mesos'}",
            ],
            log,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in log.read_text(errors="replace").splitlines():
                if line.startswith("master: "):
                    return cls(process, line.split()[1])
            if process.poll() is not None:
                raise RuntimeError(f"the Mesos emulator exited with {process.returncode}: {log}")
            time.sleep(0.2)
        stop_group(process, 10)
        raise RuntimeError(f"the Mesos emulator did not print its address in {timeout}s: {log}")

    def state(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/state", timeout=30) as reply:
            state: dict[str, Any] = json.load(reply)
        return state


@dataclass
class Replica:
    identity: str
    process: subprocess.Popen[bytes]
    log: Path
    metrics_port: int


def start_replica(identity: str, work: Path, base_env: dict[str, str]) -> Replica:
    metrics_port = free_port()
    env = dict(
        base_env,
        CLOUDJOB_IDENTITY=identity,
        CLOUDJOB_HTTP__HEALTH_PORT=str(free_port()),
        CLOUDJOB_HTTP__METRICS_PORT=str(metrics_port),
    )
    log = work / f"{identity}.log"
    process = spawn([sys.executable, "-m", "controller", "run"], log, env)
    return Replica(identity, process, log, metrics_port)


def scrape(port: int) -> dict[str, float]:
    """The samples of a replica's /metrics, by name, and a labelled one as it is
    written there: `name{label="value"}` (labels in name order)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return {
        sample_key(sample.name, sample.labels): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample_key(name: str, labels: dict[str, str]) -> str:
    if not labels:
        return name
    return name + "{" + ",".join(f'{k}="{labels[k]}"' for k in sorted(labels)) + "}"


def leader_identity(zk: KazooClient, layout: Layout) -> str | None:
    """Who ZooKeeper says leads: the data of the lowest election node."""
    try:
        children = zk.get_children(layout.election)
        if not children:
            return None
        first = min(children, key=lambda name: int(name.rsplit("_", 1)[-1]))
        data, _ = zk.get(f"{layout.election}/{first}")
    except (NoNodeError, KazooException):
        return None
    return str(data.decode())


# What /proc says about the stack's processes.


def children_of(pid: int) -> dict[int, str]:
    """The direct children of `pid`: pid → command name."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found[int(entry.name)] = stat[stat.index("(") + 1 : stat.rindex(")")]
    return found


def cpu_of(pid: int) -> float | None:
    try:
        return cpu_seconds(Path(f"/proc/{pid}/stat").read_text(), TICKS)
    except OSError:
        return None


def rss_of(pid: int) -> float | None:
    try:
        return rss_mib(Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return None
