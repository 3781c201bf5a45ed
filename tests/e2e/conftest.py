"""Fixtures of the whole-stack tests: `stack` starts ZooKeeper (session-wide), the
Kubernetes API emulator with the project's CRDs, a local Mesos of three agents, and
builds the two app packages the test jobs use (started controllers are the test's)."""

from __future__ import annotations

import io
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from devcluster.kube import PROJECT_CRDS, KubeApiServer
from devcluster.mesos import AgentSpec, LocalMesos
from devcluster.zookeeper import ZooKeeperServer
from tests.e2e.stack import FAST_MESOS, Stack

AGENTS = [AgentSpec(cpus=1.0, mem=512.0, hostname=f"host-{n}") for n in range(3)]


def build_apps(workdir: Path) -> tuple[Path, Path]:
    """A plain file (what a transient script job's app can be) and an executor package
    whose bootstrap starts the project's executor with this interpreter."""
    plain = workdir / "script-app.sh"
    plain.write_text("#!/bin/sh\nexit 0\n")
    package = workdir / "executor-app.tar.gz"
    start = f"#!/bin/sh\nexec {sys.executable} -m controller.executor\n".encode()
    with tarfile.open(package, "w:gz") as archive:
        info = tarfile.TarInfo("bin/start")
        info.size, info.mode = len(start), 0o755
        archive.addfile(info, io.BytesIO(start))
    return plain, package


@pytest.fixture
def stack(zookeeper: ZooKeeperServer, zk_namespace: str, tmp_path: Path) -> Iterator[Stack]:
    zk = KazooClient(hosts=zookeeper.hosts, timeout=5.0)
    zk.start(timeout=10)
    with (
        KubeApiServer(crds=[PROJECT_CRDS]) as api,
        LocalMesos(agents=list(AGENTS), work_dir=tmp_path / "mesos", **FAST_MESOS) as mesos,
    ):
        built = Stack(
            api=api,
            mesos=mesos,
            zk_hosts=zookeeper.hosts,
            zk_namespace=zk_namespace,
            zk=zk,
            workdir=tmp_path,
        )
        try:
            yield built
        finally:
            built.close()
            assert api.internal_errors == []
    zk.stop()
    zk.close()
