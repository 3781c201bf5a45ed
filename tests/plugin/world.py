"""The plugin's test world: `kubectl cloudjob` run as a user runs it (the real kubectl
finding the `kubectl-cloudjob` executable on PATH), and a controller that the API
server's service proxy reaches as it would in a cluster.

No kubelet runs in the test control plane, so `serve_through_proxy` does what the
Deployment, the kubelet and the EndpointSlice controller would: it creates the chart's
own `-api` Service (rendered from the chart), a Pod whose status gives the controller's
address as the pod IP, and the EndpointSlice that ties them. The API server proxies
only to pod IPs, never to loopback: the controller must listen on an address of this
machine's network interface (`outbound_address`).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python

from devcluster.kube import ControlPlane
from tests.deploy.chart import CHART, render, values_file

PLUGIN_BIN = Path(sys.executable).parent
RELEASE = "cj"


def outbound_address() -> str:
    """The IPv4 address this machine reaches other hosts from (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("10.254.254.254", 1))
        address: str = probe.getsockname()[0]
    assert not address.startswith("127."), (
        "the API server's service proxy refuses loopback addresses: the plugin's proxy "
        f"test needs a network interface with another address, found {address}"
    )
    return address


@dataclass(frozen=True)
class Plugin:
    """`kubectl cloudjob ...` with the control plane's kubectl and this environment's
    plugin on PATH, as a user with `kubeconfig`."""

    cluster: ControlPlane
    kubeconfig: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("CLOUDJOB_API", "CLOUDJOB_SERVICE")}
        path = f"{PLUGIN_BIN}:{self.cluster.binaries.directory}:{env.get('PATH', '')}"
        return {**env, "PATH": path, "KUBECONFIG": str(self.kubeconfig), **extra}

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kubectl", "cloudjob", *args],
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def ok(self, *args: str, **env: str) -> str:
        done = self.run(*args, **env)
        assert done.returncode == 0, f"kubectl cloudjob {' '.join(args)}: {done.stderr}"
        return done.stdout

    def json(self, *args: str, **env: str) -> Any:
        return json.loads(self.ok(*args, "-o", "json", **env))


def api_get(base: str, path: str) -> Any:
    """The history API's answer, read straight from the controller."""
    with urllib.request.urlopen(f"{base}/api/v1{path}", timeout=10) as reply:
        return json.load(reply)


def serve_through_proxy(cluster: ControlPlane, namespace: str, address: str, port: int) -> str:
    """The chart's API Service in `namespace`, backed by a Pod at `address` whose
    health port is `port`; returns the Service's name."""
    helm_python.disable_logging()
    with helm_python.Chart.load(CHART) as chart:
        rendered = render(chart, values_file("default"), namespace=namespace, release=RELEASE)
    service = next(s for s in rendered.of_kind("Service") if s["metadata"]["name"].endswith("-api"))
    template = rendered.one("Deployment")["spec"]["template"]
    admin = cluster.client()
    admin.create(service)
    pod_name = f"{RELEASE}-controller-0"
    admin.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod_name,
                "namespace": namespace,
                "labels": template["metadata"]["labels"],
            },
            "spec": {"containers": [{"name": "controller", "image": "cloudjob-controller"}]},
        }
    )
    admin.patch(
        "v1",
        "Pod",
        pod_name,
        {"status": {"podIP": address, "podIPs": [{"ip": address}]}},
        namespace=namespace,
        subresource="status",
    )
    name: str = service["metadata"]["name"]
    admin.create(
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{name}-0",
                "namespace": namespace,
                "labels": {"kubernetes.io/service-name": name},
            },
            "addressType": "IPv4",
            "endpoints": [
                {
                    "addresses": [address],
                    "conditions": {"ready": True},
                    "targetRef": {"kind": "Pod", "namespace": namespace, "name": pod_name},
                }
            ],
            "ports": [{"name": "api", "port": port, "protocol": "TCP"}],
        }
    )
    return name
