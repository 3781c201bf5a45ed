"""The identity a controller runs as on a test or `dev` control plane: the chart's
ServiceAccount, bound by exactly the RBAC objects the chart renders (rendered with Helm's
own Go SDK, as `helm install` would), so the API server refuses whatever the chart does
not grant. Used by the `dev` stack and the tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import yaml

from devcluster.kube.binaries import PROJECT
from devcluster.kube.controlplane import ControlPlane
from devcluster.kube.errors import ApiError

CHART = PROJECT / "charts" / "cloudjob-controller"
CONTROLLER_NAMESPACE = "cloudjob-system"
RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
# The chart's required values; nothing here reads them.
REQUIRED_VALUES = {"zookeeper": {"hosts": "127.0.0.1:2181"}, "mesos": {"master": "127.0.0.1:5050"}}


@dataclass(frozen=True)
class Identity:
    """Who a controller authenticates as: its kubeconfig, its token, and its user name
    as the API server (and its audit log) knows it."""

    kubeconfig: Path
    username: str
    token: str


def ensure_namespace(cluster: ControlPlane, name: str) -> None:
    try:
        cluster.client().create(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        )
    except ApiError as error:
        if error.reason != "AlreadyExists":
            raise


def chart_rbac(
    namespace: str, release: str, watch_namespaces: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The ServiceAccount and RBAC objects the chart renders for these values."""
    values = dict(REQUIRED_VALUES, kubernetes={"watchNamespaces": list(watch_namespaces)})
    helm_python.disable_logging()
    with helm_python.Chart.load(CHART) as chart:
        manifests = chart.render(values, name=release, namespace=namespace, is_install=True)
    return [
        obj
        for path, text in sorted(manifests.items())
        if not path.endswith("NOTES.txt")
        for obj in yaml.safe_load_all(text)
        if obj and obj["kind"] in RBAC_KINDS
    ]


def grant_chart_rbac(
    cluster: ControlPlane,
    directory: Path,
    *,
    release: str = "cj",
    watch_namespaces: tuple[str, ...] = (),
) -> Identity:
    """Create the chart's ServiceAccount and RBAC objects for a release, and return a
    kubeconfig holding a token of that account (from the TokenRequest API)."""
    admin = cluster.client()
    for namespace in (CONTROLLER_NAMESPACE, *watch_namespaces):
        ensure_namespace(cluster, namespace)
    account = ""
    for obj in chart_rbac(CONTROLLER_NAMESPACE, release, watch_namespaces):
        admin.apply(obj)
        if obj["kind"] == "ServiceAccount":
            account = obj["metadata"]["name"]
    token = cluster.service_account_token(CONTROLLER_NAMESPACE, account)
    kubeconfig = cluster.write_kubeconfig(directory / f"{release}.kubeconfig", token, user=account)
    username = f"system:serviceaccount:{CONTROLLER_NAMESPACE}:{account}"
    return Identity(kubeconfig, username, token)
