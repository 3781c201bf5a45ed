"""`helm install`, `helm upgrade` with changed values and `helm uninstall` of the chart,
through Helm's own Go SDK, against the real API server: the release's objects appear,
change and go as Helm's conventions say, and the CRDs in the chart's crds/ are installed
when missing and kept on uninstall."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import helm_python
import pytest

from devcluster.kube import ApiError, ControlPlane
from tests.deploy.chart import merged, values_file
from tests.kubeworld import fresh_namespace

pytestmark = pytest.mark.integration

RELEASE = "helmed"
CRDS = ("cloudjobs.cloudjob.io", "cloudapps.cloudjob.io")


@pytest.fixture
def namespace(kube_cluster: ControlPlane) -> str:
    return fresh_namespace(kube_cluster, "helm")


@pytest.fixture
def helm(kube_cluster: ControlPlane, namespace: str) -> Iterator[helm_python.Config]:
    config = helm_python.Config(kubeconfig_path=kube_cluster.admin_kubeconfig, namespace=namespace)
    with config:
        yield config


def release_objects(cluster: ControlPlane, namespace: str) -> dict[str, dict[str, Any]]:
    """Kind → object of everything of the release the chart creates by default; the
    two Services as `Service <name>`."""
    admin = cluster.client()
    selector = f"app.kubernetes.io/instance={RELEASE}"
    found: dict[str, dict[str, Any]] = {}
    for api_version, kind, scoped in (
        ("apps/v1", "Deployment", True),
        ("v1", "ServiceAccount", True),
        ("v1", "Service", True),
        ("policy/v1", "PodDisruptionBudget", True),
        ("rbac.authorization.k8s.io/v1", "ClusterRole", False),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", False),
    ):
        items = admin.list(
            api_version, kind, namespace if scoped else None, label_selector=selector
        )
        if kind == "Service":
            found.update({f"Service {s['metadata']['name']}": s for s in items})
            continue
        assert len(items) <= 1, (kind, items)
        if items:
            found[kind] = items[0]
    return found


def release_secrets(cluster: ControlPlane, namespace: str) -> list[str]:
    """Helm's storage: one Secret per revision of the release."""
    secrets = cluster.client().list("v1", "Secret", namespace, label_selector="owner=helm")
    return sorted(s["metadata"]["name"] for s in secrets)


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_install_upgrade_and_uninstall_the_chart(
    kube_cluster: ControlPlane, helm: helm_python.Config, chart: helm_python.Chart, namespace: str
) -> None:
    values = values_file("default")
    installed = helm.install(chart, RELEASE, values, namespace=namespace)
    assert (installed["revision"], installed["status"]) == (1, "deployed"), installed
    objects = release_objects(kube_cluster, namespace)
    assert sorted(objects) == sorted(
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "PodDisruptionBudget",
            f"Service {RELEASE}-cloudjob-controller-api",
            f"Service {RELEASE}-cloudjob-controller-metrics",
            "ServiceAccount",
        ]
    ), sorted(objects)
    deployment = objects["Deployment"]
    assert deployment["spec"]["replicas"] == 2
    assert env_of(deployment)["CLOUDJOB_LOG_LEVEL"] == "INFO"
    assert release_secrets(kube_cluster, namespace) == [f"sh.helm.release.v1.{RELEASE}.v1"]
    for crd in CRDS:
        kube_cluster.client().get("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd)

    upgraded = helm.upgrade(
        chart,
        RELEASE,
        merged(values, {"replicaCount": 3, "logLevel": "DEBUG"}),
        namespace=namespace,
    )
    assert (upgraded["revision"], upgraded["status"]) == (2, "deployed"), upgraded
    deployment = release_objects(kube_cluster, namespace)["Deployment"]
    assert deployment["spec"]["replicas"] == 3
    assert env_of(deployment)["CLOUDJOB_LOG_LEVEL"] == "DEBUG"
    assert deployment["metadata"]["generation"] == 2
    assert release_secrets(kube_cluster, namespace) == [
        f"sh.helm.release.v1.{RELEASE}.v1",
        f"sh.helm.release.v1.{RELEASE}.v2",
    ]

    helm.uninstall(RELEASE)
    assert release_objects(kube_cluster, namespace) == {}
    assert release_secrets(kube_cluster, namespace) == []
    # Helm never deletes the CRDs of crds/: the custom resources would go with them.
    for crd in CRDS:
        kube_cluster.client().get("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd)
    with pytest.raises(ApiError) as gone:
        kube_cluster.client().get(
            "apps/v1", "Deployment", deployment["metadata"]["name"], namespace
        )
    assert gone.value.code == 404
