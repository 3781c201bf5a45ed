"""Against the real Kubernetes API server: the server accepts every rendered object in a
server-side dry run, and grants the rendered service account exactly the access the
controller needs (`kubectl auth can-i`, as the API server's RBAC authorizer answers it).

The CRDs are installed for the whole run; everything else goes into a namespace of its
own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import helm_python
import pytest
import yaml

from devcluster.kube import ControlPlane
from tests.deploy.chart import Rendered, merged, render, values_file
from tests.deploy.rbac import Access
from tests.deploy.test_rbac import required
from tests.kubeworld import fresh_namespace

pytestmark = pytest.mark.integration

Kubectl = Callable[..., str]


@pytest.fixture
def kubectl(kube_cluster: ControlPlane) -> Kubectl:
    def run(*args: str, check: bool = True) -> str:
        done = kube_cluster.kubectl(*args, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    return run


@pytest.fixture
def namespace(kube_cluster: ControlPlane) -> str:
    return fresh_namespace(kube_cluster, "cloudjob-test")


@pytest.fixture
def released(chart: helm_python.Chart, namespace: str, kubectl: Kubectl) -> Iterator[Rendered]:
    release = f"t{namespace[-8:]}"
    rendered = render(chart, values_file("default"), namespace=namespace, release=release)
    yield rendered
    for kind in ("clusterrolebinding", "clusterrole"):
        kubectl("delete", kind, "-l", f"app.kubernetes.io/instance={release}", check=False)


def manifests(objects: list[dict[str, object]]) -> str:
    return yaml.safe_dump_all(objects)


def can(kubectl: Kubectl, account: str, namespace: str, access: Access) -> bool:
    resource = access.resource.split("/")[0]
    target = f"{resource}.{access.group}" if access.group else resource
    args = [
        "auth",
        "can-i",
        access.verb,
        target,
        f"--as=system:serviceaccount:{namespace}:{account}",
    ]
    if "/" in access.resource:
        args.append(f"--subresource={access.resource.split('/')[1]}")
    if access.resource.split("/")[0] not in ("customresourcedefinitions", "namespaces"):
        args += ["-n", access.namespace or namespace]
    answer = kubectl(*args, check=False).strip()
    assert answer in ("yes", "no"), answer
    return answer == "yes"


def test_the_api_server_accepts_every_rendered_object(
    released: Rendered, tmp_path: Path, kubectl: Kubectl
) -> None:
    monitoring = kubectl("api-resources", "--api-group=monitoring.coreos.com", "-o", "name")
    objects = [
        obj
        for obj in released.objects
        if not obj["apiVersion"].startswith("monitoring.coreos.com/") or monitoring.strip()
    ]
    path = tmp_path / "rendered.yaml"
    path.write_text(manifests(objects))
    out = kubectl("apply", "--dry-run=server", "-f", str(path))
    assert out.count("(server dry run)") == len(objects), out


def test_the_service_account_may_do_exactly_what_the_controller_needs(
    released: Rendered, namespace: str, tmp_path: Path, kubectl: Kubectl
) -> None:
    kinds = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding"}
    path = tmp_path / "rbac.yaml"
    path.write_text(manifests([obj for obj in released.objects if obj["kind"] in kinds]))
    kubectl("apply", "-f", str(path))
    account = released.one("ServiceAccount")["metadata"]["name"]
    for access in sorted(required([]), key=str):
        assert can(kubectl, account, namespace, access), f"the API server denies {access}"
    for denied in (
        Access("delete", "cloudjob.io", "cloudjobs"),
        Access("create", "cloudjob.io", "cloudapps"),
        Access("update", "cloudjob.io", "cloudjobs"),
        Access("get", "", "secrets"),
        Access("delete", "", "events"),
    ):
        assert not can(kubectl, account, namespace, denied), f"the API server allows {denied}"


def test_namespaced_values_render_roles_the_api_server_accepts(
    chart: helm_python.Chart, namespace: str, tmp_path: Path, kubectl: Kubectl
) -> None:
    values = merged(values_file("default"), {"kubernetes": {"watchNamespaces": [namespace]}})
    rendered = render(chart, values, namespace=namespace, release=f"n{namespace[-8:]}")
    path = tmp_path / "namespaced.yaml"
    path.write_text(
        manifests([o for o in rendered.objects if o["kind"] in ("Role", "RoleBinding")])
    )
    out = kubectl("apply", "--dry-run=server", "-f", str(path))
    assert out.count("(server dry run)") == 2, out
