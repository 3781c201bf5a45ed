"""Against a real Kubernetes API server (a kind cluster from kind-config.yaml): the server
accepts every rendered object in a server-side dry run, and grants the rendered service
account exactly the access the controller needs (`kubectl auth can-i`).

Skipped when no cluster answers through the kubectl context `kind-cloudjob` (or the one
named by CLOUDJOB_TEST_KUBE_CONTEXT). The same checks run here without a cluster against
the API emulator and offline: test_running.py, test_rbac.py and test_manifests.py. The
CRDs are applied for real (the dry run of the rest needs them); everything else goes
into a namespace of its own, removed afterwards."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import helm_python
import pytest
import yaml

from tests.deploy.chart import PROJECT, Rendered, merged, render, values_file
from tests.deploy.rbac import Access
from tests.deploy.test_rbac import required

CONTEXT = os.environ.get("CLOUDJOB_TEST_KUBE_CONTEXT", "kind-cloudjob")


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> str:
    done = subprocess.run(
        ["kubectl", "--context", CONTEXT, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def unreachable() -> str | None:
    """Why no cluster can be used, or None when one answers."""
    if shutil.which("kubectl") is None:
        return "kubectl is not installed"
    try:
        done = subprocess.run(
            ["kubectl", "--context", CONTEXT, "get", "--raw", "/version"],
            capture_output=True,
            text=True,
            timeout=15,
        )
    except subprocess.TimeoutExpired:
        return f"the cluster of kubectl context {CONTEXT!r} did not answer in 15s"
    if done.returncode != 0:
        return (
            f"no Kubernetes cluster reachable through kubectl context {CONTEXT!r} "
            f"({done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'no answer'}); "
            "create one with `kind create cluster --config kind-config.yaml` or set "
            "CLOUDJOB_TEST_KUBE_CONTEXT"
        )
    return None


REASON = unreachable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"cloudjob-test-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def released(chart: helm_python.Chart, namespace: str) -> Iterator[Rendered]:
    release = f"t{namespace[-8:]}"
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(PROJECT / "crds"))
    kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    rendered = render(chart, values_file("default"), namespace=namespace, release=release)
    yield rendered
    for kind in ("clusterrolebinding", "clusterrole"):
        kubectl("delete", kind, "-l", f"app.kubernetes.io/instance={release}", check=False)


def manifests(objects: list[dict[str, object]]) -> str:
    return yaml.safe_dump_all(objects)


def can(account: str, namespace: str, access: Access) -> bool:
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


def test_the_api_server_accepts_every_rendered_object(released: Rendered, tmp_path: Path) -> None:
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
    released: Rendered, namespace: str, tmp_path: Path
) -> None:
    kinds = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding"}
    path = tmp_path / "rbac.yaml"
    path.write_text(manifests([obj for obj in released.objects if obj["kind"] in kinds]))
    kubectl("apply", "-f", str(path))
    account = released.one("ServiceAccount")["metadata"]["name"]
    for access in sorted(required([]), key=str):
        assert can(account, namespace, access), f"the API server denies {access}"
    for denied in (
        Access("delete", "cloudjob.io", "cloudjobs"),
        Access("create", "cloudjob.io", "cloudapps"),
        Access("update", "cloudjob.io", "cloudjobs"),
        Access("get", "", "secrets"),
        Access("delete", "", "events"),
    ):
        assert not can(account, namespace, denied), f"the API server allows {denied}"


def test_namespaced_values_render_roles_the_api_server_accepts(
    chart: helm_python.Chart, namespace: str, tmp_path: Path
) -> None:
    values = merged(values_file("default"), {"kubernetes": {"watchNamespaces": [namespace]}})
    rendered = render(chart, values, namespace=namespace, release=f"n{namespace[-8:]}")
    path = tmp_path / "namespaced.yaml"
    path.write_text(
        manifests([o for o in rendered.objects if o["kind"] in ("Role", "RoleBinding")])
    )
    out = kubectl("apply", "--dry-run=server", "-f", str(path))
    assert out.count("(server dry run)") == 2, out
