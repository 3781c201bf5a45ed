"""Object semantics of the emulated API over HTTP: server-owned metadata, resourceVersion,
generation, the status subresource, optimistic concurrency, finalizers, namespaces,
validation and the Status error shape."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import kmock
import pytest

from devcluster.kube import ApiError, KubeApiServer, KubeClient
from tests.kube.conftest import WIDGETS, read_watch, widget


def raw(
    api: KubeApiServer,
    method: str,
    path: str,
    body: Any = None,
    content_type: str = "application/json",
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        api.url + path, data=data, method=method, headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_create_fills_what_the_server_owns(kube_api: KubeApiServer) -> None:
    body = widget("a", 2, junk=True)
    body["status"] = {"ignored": True}
    body["metadata"].update(uid="forged", resourceVersion="999", generation=7)
    code, created = raw(kube_api, "POST", "/apis/example.com/v1/namespaces/default/widgets", body)
    assert code == 201
    meta = created["metadata"]
    assert meta["uid"] != "forged" and len(meta["uid"]) == 36
    assert meta["namespace"] == "default"
    assert meta["generation"] == 1
    assert meta["creationTimestamp"].endswith("Z")
    assert int(meta["resourceVersion"]) > 0 and meta["resourceVersion"] != "999"
    assert created["spec"] == {"size": 2, "color": "blue"}  # pruned and defaulted
    assert "status" not in created  # the status subresource owns it


def test_kind_and_version_come_from_the_url(kube: KubeClient) -> None:
    created = kube.request(
        "POST",
        "/apis/example.com/v1/namespaces/default/widgets",
        {"metadata": {"name": "bare"}, "spec": {"size": 1}},
    )
    assert (created["apiVersion"], created["kind"]) == (WIDGETS, "Widget")
    with pytest.raises(ApiError) as raised:
        kube.request(
            "POST",
            "/apis/example.com/v1/namespaces/default/widgets",
            dict(widget("b"), kind="Gadget"),
        )
    assert raised.value.code == 400


def test_resource_version_changes_on_every_write_and_only_then(kube: KubeClient) -> None:
    versions = [int(kube.create(widget("a"))["metadata"]["resourceVersion"])]
    versions.append(
        int(
            kube.patch(WIDGETS, "Widget", "a", {"metadata": {"labels": {"x": "1"}}})["metadata"][
                "resourceVersion"
            ]
        )
    )
    versions.append(
        int(
            kube.patch(WIDGETS, "Widget", "a", {"status": {"n": 1}}, subresource="status")[
                "metadata"
            ]["resourceVersion"]
        )
    )
    versions.append(
        int(
            kube.patch(WIDGETS, "Widget", "a", {"spec": {"size": 5}})["metadata"]["resourceVersion"]
        )
    )
    assert versions == sorted(set(versions))
    unchanged = kube.patch(WIDGETS, "Widget", "a", {"spec": {"size": 5}})
    assert int(unchanged["metadata"]["resourceVersion"]) == versions[-1]


def test_generation_grows_only_when_the_spec_changes(kube: KubeClient) -> None:
    kube.create(widget("a"))
    generation = [kube.get(WIDGETS, "Widget", "a")["metadata"]["generation"]]
    for patch, subresource in (
        ({"metadata": {"annotations": {"a": "b"}}}, None),
        ({"status": {"phase": "x"}}, "status"),
        ({"spec": {"size": 2}}, None),
        ({"spec": {"color": "red"}}, None),
        ({"metadata": {"finalizers": ["x/y"]}}, None),
    ):
        obj = kube.patch(WIDGETS, "Widget", "a", patch, subresource=subresource)
        generation.append(obj["metadata"]["generation"])
    assert generation == [1, 1, 1, 2, 3, 3]


def test_status_is_written_only_through_the_status_subresource(kube: KubeClient) -> None:
    kube.create(widget("a"))
    main = kube.patch(WIDGETS, "Widget", "a", {"spec": {"size": 2}, "status": {"hack": 1}})
    assert "status" not in main and main["spec"]["size"] == 2
    status = kube.patch(
        WIDGETS,
        "Widget",
        "a",
        {"spec": {"size": 99}, "metadata": {"labels": {"l": "v"}}, "status": {"ready": True}},
        subresource="status",
    )
    assert status["status"] == {"ready": True}
    assert status["spec"]["size"] == 2 and "labels" not in status["metadata"]
    current = kube.get(WIDGETS, "Widget", "a")
    current["status"] = {"ready": False}
    current["spec"]["size"] = 50
    replaced = kube.replace(current, subresource="status")
    assert replaced["status"] == {"ready": False} and replaced["spec"]["size"] == 2
    # a main-resource PUT keeps the status it did not mean to touch
    replaced["status"] = {"gone": True}
    replaced["spec"]["size"] = 3
    again = kube.replace(replaced)
    assert again["status"] == {"ready": False} and again["spec"]["size"] == 3


def test_stale_writes_conflict(kube: KubeClient) -> None:
    old = kube.create(widget("a"))
    kube.patch(WIDGETS, "Widget", "a", {"spec": {"size": 2}})
    with pytest.raises(ApiError) as raised:
        kube.replace(old)
    assert (raised.value.code, raised.value.reason) == (409, "Conflict")
    assert raised.value.message == (
        'Operation cannot be fulfilled on widgets.example.com "a": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    with pytest.raises(ApiError) as raised:
        kube.patch(
            WIDGETS, "Widget", "a", {"metadata": {"resourceVersion": "1"}, "spec": {"size": 9}}
        )
    assert raised.value.code == 409
    unversioned = kube.get(WIDGETS, "Widget", "a")
    del unversioned["metadata"]["resourceVersion"]
    with pytest.raises(ApiError) as raised:
        kube.replace(unversioned)
    assert raised.value.code == 422
    assert "metadata.resourceVersion" in raised.value.message


def test_json_patch_guarded_by_resource_version_as_kopf_sends_it(kube: KubeClient) -> None:
    created = kube.create(widget("a"))
    version = created["metadata"]["resourceVersion"]
    guarded = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": version},
        {"op": "add", "path": "/metadata/finalizers", "value": ["kopf.zalando.org/x"]},
    ]
    patched = kube.patch(WIDGETS, "Widget", "a", guarded, json_patch=True)
    assert patched["metadata"]["finalizers"] == ["kopf.zalando.org/x"]
    with pytest.raises(ApiError) as raised:  # the same guard is stale now
        kube.patch(WIDGETS, "Widget", "a", guarded, json_patch=True)
    # A real server answers a failed JSON-patch test with 422; kopf expects exactly that.
    assert raised.value.code == 422
    assert "testing value /metadata/resourceVersion failed" in raised.value.message


def test_errors_have_the_status_shape(kube_api: KubeApiServer, kube: KubeClient) -> None:
    code, body = raw(kube_api, "GET", "/apis/example.com/v1/namespaces/default/widgets/nope")
    assert code == 404
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'widgets.example.com "nope" not found',
        "reason": "NotFound",
        "code": 404,
        "details": {"name": "nope", "group": "example.com", "kind": "widgets"},
    }
    kube.create(widget("a"))
    with pytest.raises(ApiError) as raised:
        kube.create(widget("a"))
    assert (raised.value.code, raised.value.reason) == (409, "AlreadyExists")
    code, body = raw(kube_api, "GET", "/apis/example.com/v1/namespaces/default/gadgets")
    assert (code, body["reason"]) == (404, "NotFound")
    code, body = raw(
        kube_api,
        "PATCH",
        "/apis/example.com/v1/namespaces/default/widgets/a",
        {"spec": {}},
        content_type="application/strategic-merge-patch+json",
    )
    assert code == 415


def test_invalid_objects_are_rejected_with_every_field_named(kube: KubeClient) -> None:
    with pytest.raises(ApiError) as raised:
        kube.create(widget("bad", 0, color="green"))
    error = raised.value
    assert (error.code, error.reason) == (422, "Invalid")
    assert error.message == (
        'Widget.example.com "bad" is invalid: [spec.color: Unsupported value: "green": '
        'supported values: "blue", "red", spec.size: Invalid value: 0: spec.size in body '
        "should be greater than or equal to 1]"
    )
    assert [cause["field"] for cause in error.details["causes"]] == ["spec.color", "spec.size"]
    kube.create(widget("good", 1))
    with pytest.raises(ApiError) as raised:
        kube.patch(WIDGETS, "Widget", "good", {"spec": {"size": -1}})
    assert raised.value.code == 422
    with pytest.raises(ApiError) as raised:
        kube.create(
            {
                "apiVersion": WIDGETS,
                "kind": "Widget",
                "metadata": {"name": "Caps"},
                "spec": {"size": 1},
            }
        )
    assert "metadata.name" in raised.value.message


def test_strict_field_validation_rejects_unknown_fields(kube: KubeClient) -> None:
    path = "/apis/example.com/v1/namespaces/default/widgets"
    with pytest.raises(ApiError) as raised:
        kube.request("POST", path, widget("a", 1, typo=1), params={"fieldValidation": "Strict"})
    assert raised.value.code == 422 and 'unknown field "spec.typo"' in raised.value.message
    assert kube.request("POST", path, widget("a", 1, typo=1))["spec"] == {
        "size": 1,
        "color": "blue",
    }


def test_generate_name_and_dry_run(kube: KubeClient) -> None:
    body = widget("")
    body["metadata"] = {"generateName": "w-"}
    first, second = kube.create(body), kube.create(body)
    assert first["metadata"]["name"].startswith("w-") and len(first["metadata"]["name"]) == 7
    assert first["metadata"]["name"] != second["metadata"]["name"]
    path = "/apis/example.com/v1/namespaces/default/widgets"
    dry = kube.request("POST", path, widget("dry"), params={"dryRun": "All"})
    assert dry["metadata"]["name"] == "dry"
    with pytest.raises(ApiError):
        kube.get(WIDGETS, "Widget", "dry")


def test_deletion_waits_for_finalizers(kube_api: KubeApiServer, kube: KubeClient) -> None:
    start = kube.create(widget("a"))["metadata"]["resourceVersion"]
    kube.patch(WIDGETS, "Widget", "a", {"metadata": {"finalizers": ["example.com/hold"]}})
    marked = kube.delete(WIDGETS, "Widget", "a")
    assert marked["metadata"]["deletionTimestamp"]
    assert kube.get(WIDGETS, "Widget", "a")["metadata"]["finalizers"] == ["example.com/hold"]
    assert kube.delete(WIDGETS, "Widget", "a") == kube.get(WIDGETS, "Widget", "a")  # no-op
    with pytest.raises(ApiError) as raised:
        kube.patch(
            WIDGETS,
            "Widget",
            "a",
            {"metadata": {"finalizers": ["example.com/hold", "example.com/new"]}},
        )
    assert raised.value.code == 422 and "no new finalizers" in raised.value.message
    kube.patch(WIDGETS, "Widget", "a", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiError) as raised:
        kube.get(WIDGETS, "Widget", "a")
    assert raised.value.code == 404
    events = read_watch(kube_api.url, "/apis/example.com/v1/widgets", 3, resourceVersion=start)
    assert [event["type"] for event in events] == ["MODIFIED", "MODIFIED", "DELETED"]
    assert "deletionTimestamp" not in events[0]["object"]["metadata"]
    assert events[1]["object"]["metadata"]["deletionTimestamp"]
    assert not events[2]["object"]["metadata"].get("finalizers")


def test_delete_preconditions(kube: KubeClient) -> None:
    created = kube.create(widget("a"))
    path = "/apis/example.com/v1/namespaces/default/widgets/a"
    with pytest.raises(ApiError) as raised:
        kube.request("DELETE", path, {"preconditions": {"uid": "someone-else"}})
    assert raised.value.code == 409
    kube.request("DELETE", path, {"preconditions": {"uid": created["metadata"]["uid"]}})
    assert kube.list(WIDGETS, "Widget") == []


def test_namespaces_own_their_objects(kube: KubeClient) -> None:
    with pytest.raises(ApiError) as raised:
        kube.create(dict(widget("a"), metadata={"name": "a", "namespace": "nope"}))
    assert (raised.value.code, raised.value.message) == (404, 'namespaces "nope" not found')
    namespace = kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    assert namespace["status"] == {"phase": "Active"}
    held = widget("held")
    held["metadata"].update(namespace="team", finalizers=["example.com/hold"])
    kube.create(held)
    kube.create(dict(widget("free"), metadata={"name": "free", "namespace": "team"}))
    kube.delete("v1", "Namespace", "team")
    assert kube.get("v1", "Namespace", "team")["status"]["phase"] == "Terminating"
    assert [w["metadata"]["name"] for w in kube.list(WIDGETS, "Widget", "team")] == ["held"]
    with pytest.raises(ApiError) as raised:
        kube.create(dict(widget("late"), metadata={"name": "late", "namespace": "team"}))
    assert raised.value.code == 403
    kube.patch(WIDGETS, "Widget", "held", {"metadata": {"finalizers": []}}, namespace="team")
    with pytest.raises(ApiError):
        kube.get("v1", "Namespace", "team")
    assert kube.get("v1", "Namespace", "default")["metadata"]["name"] == "default"


def test_lists_carry_kind_and_version_and_filter(kube: KubeClient) -> None:
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    labelled = widget("b")
    labelled["metadata"]["labels"] = {"tier": "front"}
    kube.create(labelled)
    kube.create(dict(widget("a"), metadata={"name": "a", "namespace": "other"}))
    listing = kube.request("GET", "/apis/example.com/v1/widgets")
    assert listing["kind"] == "WidgetList" and listing["apiVersion"] == WIDGETS
    assert int(listing["metadata"]["resourceVersion"]) >= max(
        int(item["metadata"]["resourceVersion"]) for item in listing["items"]
    )
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in listing["items"]] == [
        ("default", "b"),
        ("other", "a"),
    ]
    assert [i["metadata"]["name"] for i in kube.list(WIDGETS, "Widget", "other")] == ["a"]
    front = kube.list(WIDGETS, "Widget", all_namespaces=True, label_selector="tier=front")
    assert [i["metadata"]["name"] for i in front] == ["b"]
    named = kube.list(WIDGETS, "Widget", all_namespaces=True, field_selector="metadata.name=a")
    assert [i["metadata"]["namespace"] for i in named] == ["other"]


def test_events_are_one_collection_in_both_groups(kube: KubeClient) -> None:
    involved = kube.create(widget("a"))
    kopf_style_event = {  # what kopf posts: no apiVersion/kind, a generateName
        "metadata": {"namespace": "default", "generateName": "kopf-event-"},
        "type": "Normal",
        "reason": "Launched",
        "message": "3 shards placed",
        "involvedObject": {
            "apiVersion": WIDGETS,
            "kind": "Widget",
            "name": "a",
            "namespace": "default",
            "uid": involved["metadata"]["uid"],
        },
        "source": {"component": "kopf"},
    }
    kube.request("POST", "/api/v1/namespaces/default/events", kopf_style_event)
    [event] = kube.events(involved)
    assert (event["reason"], event["message"]) == ("Launched", "3 shards placed")
    [modern] = kube.list("events.k8s.io/v1", "Event")
    assert modern["apiVersion"] == "events.k8s.io/v1"
    assert modern["note"] == "3 shards placed"
    assert modern["regarding"]["uid"] == involved["metadata"]["uid"]


def test_table_responses_for_kubectl(kube_api: KubeApiServer, kube: KubeClient) -> None:
    kube.create(widget("a", 3))
    kube.patch(
        WIDGETS,
        "Widget",
        "a",
        {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        subresource="status",
    )
    request = urllib.request.Request(
        kube_api.url + "/apis/example.com/v1/namespaces/default/widgets",
        headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        table = json.loads(response.read())
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Size", "Ready", "Age"]
    [row] = table["rows"]
    assert row["cells"][:3] == ["a", 3, "True"]
    assert row["object"]["kind"] == "PartialObjectMetadata"


def test_discovery_lists_served_resources(kube: KubeClient) -> None:
    assert kube.request("GET", "/api")["versions"] == ["v1"]
    groups = {g["name"]: g for g in kube.request("GET", "/apis")["groups"]}
    assert {"example.com", "apiextensions.k8s.io", "events.k8s.io", "coordination.k8s.io"} <= set(
        groups
    )
    assert groups["example.com"]["preferredVersion"]["version"] == "v1"
    resources = {r["name"]: r for r in kube.request("GET", "/apis/example.com/v1")["resources"]}
    assert set(resources) == {"widgets", "widgets/status"}
    assert resources["widgets"]["namespaced"] is True
    assert resources["widgets"]["shortNames"] == ["wd"]
    assert {"watch", "list", "patch"} <= set(resources["widgets"]["verbs"])
    core = {r["name"] for r in kube.request("GET", "/api/v1")["resources"]}
    assert {"namespaces", "namespaces/status", "events"} <= core


def test_the_request_log_can_be_bounded(widget_crd_file: Path) -> None:
    with KubeApiServer(crds=[widget_crd_file], keep_requests=5) as api:
        kube = api.client()
        for index in range(20):
            kube.create(widget(f"w{index}"))
        assert 0 < len(list(api.handler)) <= 5
        assert len(kube.list(WIDGETS, "Widget")) == 20


def test_kmock_reactions_inject_faults_over_the_emulator(
    kube_api: KubeApiServer, kube: KubeClient
) -> None:
    kube.create(widget("a"))
    kube_api.handler["patch", kmock.resource("example.com", "v1", "widgets")][:1] << 503
    with pytest.raises(ApiError) as raised:
        kube.patch(WIDGETS, "Widget", "a", {"spec": {"size": 2}})
    assert raised.value.code == 503
    assert kube.get(WIDGETS, "Widget", "a")["spec"]["size"] == 1  # the rest is served as usual
    assert kube.patch(WIDGETS, "Widget", "a", {"spec": {"size": 2}})["spec"]["size"] == 2
