"""Clients nobody here wrote against the emulated API: the official `kubernetes` package
(through the written kubeconfig) and the kubectl binary."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from devcluster.kube import KubeApiServer, KubeClient
from tests.kube.conftest import widget


def api_client(server: KubeApiServer) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(server.kubeconfig_path))


def test_kubernetes_package_reads_writes_and_watches(kube_api: KubeApiServer) -> None:
    with api_client(kube_api) as api:
        custom = client.CustomObjectsApi(api)
        created = custom.create_namespaced_custom_object(
            "example.com", "v1", "default", "widgets", widget("a", 2)
        )
        assert created["metadata"]["generation"] == 1
        custom.patch_namespaced_custom_object_status(
            "example.com", "v1", "default", "widgets", "a", {"status": {"phase": "Ready"}}
        )
        fetched = custom.get_namespaced_custom_object(
            "example.com", "v1", "default", "widgets", "a"
        )
        assert fetched["status"] == {"phase": "Ready"}
        with pytest.raises(ApiException) as raised:
            custom.create_namespaced_custom_object(
                "example.com", "v1", "default", "widgets", widget("bad", 0)
            )
        assert raised.value.status == 422
        with pytest.raises(ApiException) as raised:
            custom.get_namespaced_custom_object("example.com", "v1", "default", "widgets", "x")
        assert raised.value.status == 404

        core = client.CoreV1Api(api)
        names = [ns.metadata.name for ns in core.list_namespace().items]
        assert "default" in names
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="typed")))
        assert core.read_namespace("typed").status.phase == "Active"

        stream = watch.Watch().stream(
            custom.list_namespaced_custom_object,
            "example.com",
            "v1",
            "default",
            "widgets",
            timeout_seconds=5,
        )
        first = next(stream)
        stream.close()
        assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "a")


KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="the kubectl binary is not installed")


def kubectl(server: KubeApiServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, KUBECONFIG=str(server.kubeconfig_path))
    assert KUBECTL is not None
    return subprocess.run(
        [KUBECTL, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@needs_kubectl
def test_kubectl_applies_lists_and_deletes(
    kube_api: KubeApiServer, kube: KubeClient, tmp_path: Path
) -> None:
    manifest = tmp_path / "widget.yaml"
    manifest.write_text(yaml.safe_dump(widget("from-kubectl", 4)))
    applied = kubectl(kube_api, "apply", "-f", str(manifest))
    assert applied.returncode == 0, applied.stderr
    assert "widget.example.com/from-kubectl created" in applied.stdout
    again = kubectl(kube_api, "apply", "-f", str(manifest))
    assert "unchanged" in again.stdout, again.stderr
    kube.patch(
        "example.com/v1",
        "Widget",
        "from-kubectl",
        {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        subresource="status",
    )

    listed = kubectl(kube_api, "get", "wd")
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == ["NAME", "SIZE", "READY", "AGE"]
    assert row.split()[:3] == ["from-kubectl", "4", "True"]

    annotated = kubectl(kube_api, "annotate", "widget", "from-kubectl", "example.com/poke=1")
    assert annotated.returncode == 0, annotated.stderr
    color = kubectl(kube_api, "get", "widget", "from-kubectl", "-o", "jsonpath={.spec.color}")
    assert color.stdout == "blue"

    deleted = kubectl(kube_api, "delete", "widget", "from-kubectl")
    assert deleted.returncode == 0, deleted.stderr
    assert kube.list("example.com/v1", "Widget") == []


@needs_kubectl
def test_kubectl_shows_why_an_object_is_invalid(kube_api: KubeApiServer, tmp_path: Path) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(yaml.safe_dump(widget("bad", 0, typo=True)))
    created = kubectl(kube_api, "create", "-f", str(manifest))
    assert created.returncode != 0
    assert "spec.size: Invalid value: 0" in created.stderr
    assert 'unknown field "spec.typo"' in created.stderr  # kubectl asks for strict validation
