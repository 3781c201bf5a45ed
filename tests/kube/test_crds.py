"""CustomResourceDefinitions in the emulated API: preloaded from files (the project's
crds/), created and deleted at runtime like on a real server, and validated."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from devcluster.kube import PROJECT_CRDS, ApiError, KubeApiServer, KubeApiServerError, KubeClient
from devcluster.kube.running import read_manifests
from tests.kube.conftest import WIDGET_CRD, WIDGETS, widget

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "manifests"


def gadget_crd() -> dict[str, object]:
    crd = copy.deepcopy(WIDGET_CRD)
    crd["metadata"]["name"] = "gadgets.example.com"
    crd["spec"]["names"] = {"plural": "gadgets", "kind": "Gadget"}
    crd["spec"]["scope"] = "Cluster"
    return crd


def test_a_crd_created_at_runtime_is_served_then_cleaned_up(kube: KubeClient) -> None:
    crd = kube.create(gadget_crd())
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    assert crd["status"]["acceptedNames"]["singular"] == "gadget"
    assert "customresourcecleanup.apiextensions.k8s.io" in crd["metadata"]["finalizers"]
    gadget = kube.create(
        {"apiVersion": WIDGETS, "kind": "Gadget", "metadata": {"name": "g"}, "spec": {"size": 1}}
    )
    assert "namespace" not in gadget["metadata"]  # cluster-scoped
    kube.patch(WIDGETS, "Gadget", "g", {"metadata": {"finalizers": ["example.com/hold"]}})
    kube.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", "gadgets.example.com")
    # The CRD waits for its objects, which wait for their finalizers.
    assert kube.get(WIDGETS, "Gadget", "g")["metadata"]["deletionTimestamp"]
    kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", "gadgets.example.com")
    kube.patch(WIDGETS, "Gadget", "g", {"metadata": {"finalizers": []}})
    with pytest.raises(ApiError) as raised:
        kube.request("GET", "/apis/example.com/v1/gadgets")
    assert raised.value.code == 404
    names = [r["name"] for r in kube.request("GET", "/apis/example.com/v1")["resources"]]
    assert names == ["widgets", "widgets/status"]


def test_an_invalid_crd_is_rejected(kube: KubeClient) -> None:
    crd = gadget_crd()
    crd["metadata"]["name"] = "wrong.example.com"
    crd["spec"]["scope"] = "Galaxy"
    with pytest.raises(ApiError) as raised:
        kube.create(crd)
    assert raised.value.code == 422
    fields = [cause["field"] for cause in raised.value.details["causes"]]
    assert fields == ["metadata.name", "spec.scope"]
    duplicate = copy.deepcopy(WIDGET_CRD)
    duplicate["metadata"]["name"] = "widgets.example.com"
    with pytest.raises(ApiError) as raised:
        kube.create(duplicate)
    assert raised.value.code == 409


def test_a_bad_crd_file_stops_the_server_from_starting(tmp_path: Path) -> None:
    crd = gadget_crd()
    del crd["spec"]["versions"][0]["schema"]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(crd))
    with pytest.raises(KubeApiServerError, match="schemas are required"):
        KubeApiServer(crds=[tmp_path]).start()
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(widget("not-a-crd")))
    with pytest.raises(KubeApiServerError, match="only CustomResourceDefinitions"):
        KubeApiServer(crds=[tmp_path]).start()


def test_the_project_crds_serve_the_examples_and_reject_bad_jobs() -> None:
    with KubeApiServer(crds=[PROJECT_CRDS]) as api:
        kube = api.client()
        resources = {
            r["name"] for r in kube.request("GET", "/apis/cloudjob.io/v1alpha1")["resources"]
        }
        assert {"cloudapps", "cloudapps/status", "cloudjobs", "cloudjobs/status"} <= resources
        applied = [kube.apply(manifest) for manifest in read_manifests([EXAMPLES])]
        jobs = [obj for obj in applied if obj["kind"] == "CloudJob"]
        assert jobs and all(job["metadata"]["generation"] == 1 for job in jobs)
        broken = next(m for m in read_manifests([EXAMPLES]) if m["kind"] == "CloudJob")
        broken["metadata"]["name"] = "broken"
        del broken["spec"]["cron"]
        with pytest.raises(ApiError) as raised:
            kube.create(broken)
        assert raised.value.code == 422
        assert "spec.cron: Required value" in raised.value.message
        assert api.internal_errors == []
