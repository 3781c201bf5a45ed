"""Finds the Kubernetes binaries (etcd, kube-apiserver, kube-controller-manager, kubectl)
that `scripts/build-kube` builds from the published Go modules and caches by version.

`CLOUDJOB_KUBE_BIN` names the directory directly; otherwise `scripts/build-kube` is asked
for it (when the binaries are built already it only checks their versions, in about a
second; when not, it builds them, which takes tens of minutes the first time).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devcluster.kube.errors import KubeUnavailable

PROJECT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = PROJECT / "scripts" / "build-kube"
TOOLS = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")


@dataclass(frozen=True)
class KubeBinaries:
    directory: Path

    @property
    def etcd(self) -> Path:
        return self.directory / "etcd"

    @property
    def apiserver(self) -> Path:
        return self.directory / "kube-apiserver"

    @property
    def controller_manager(self) -> Path:
        return self.directory / "kube-controller-manager"

    @property
    def kubectl(self) -> Path:
        return self.directory / "kubectl"


def find_binaries() -> KubeBinaries:
    """The binaries' directory; `KubeUnavailable` says how to get them when they are missing."""
    named = os.environ.get("CLOUDJOB_KUBE_BIN")
    if named:
        directory = Path(named)
    else:
        try:
            built = subprocess.run(
                [str(BUILD_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True, timeout=7200
            )
        except (OSError, subprocess.SubprocessError) as error:
            stderr = getattr(error, "stderr", "") or ""
            raise KubeUnavailable(
                f"the Kubernetes binaries are not built and {BUILD_SCRIPT} failed: {error}\n"
                f"{stderr[-2000:]}"
            ) from error
        directory = Path(built.stdout.strip().splitlines()[-1])
    missing = [tool for tool in TOOLS if not os.access(directory / tool, os.X_OK)]
    if missing:
        raise KubeUnavailable(
            f"{', '.join(missing)} missing from {directory}; build them with scripts/build-kube"
        )
    return KubeBinaries(directory)
