"""Watch streams of the emulated API: replay from a resourceVersion, live events, the
initial-events bookmark, filtering, server-side timeouts and 410 for forgotten versions."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import kmock

from devcluster.kube import KubeApiServer, KubeClient
from tests.kube.conftest import WIDGETS, read_watch, widget


def test_watch_replays_every_change_after_a_version(
    kube_api: KubeApiServer, kube: KubeClient
) -> None:
    start = kube.request("GET", "/apis/example.com/v1/widgets")["metadata"]["resourceVersion"]
    kube.create(widget("a"))
    kube.patch(WIDGETS, "Widget", "a", {"spec": {"size": 2}})
    kube.create(widget("b"))
    kube.delete(WIDGETS, "Widget", "a")
    events = read_watch(kube_api.url, "/apis/example.com/v1/widgets", 4, resourceVersion=start)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "a"),
        ("MODIFIED", "a"),
        ("ADDED", "b"),
        ("DELETED", "a"),
    ]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(set(versions))
    assert events[1]["object"]["spec"]["size"] == 2


def test_watch_without_a_version_starts_with_the_current_state(
    kube_api: KubeApiServer, kube: KubeClient
) -> None:
    kube.create(widget("a"))
    kube.create(widget("b"))
    events = read_watch(
        kube_api.url,
        "/apis/example.com/v1/namespaces/default/widgets",
        3,
        sendInitialEvents="true",
        allowWatchBookmarks="true",
        resourceVersionMatch="NotOlderThan",
    )
    assert [e["type"] for e in events] == ["ADDED", "ADDED", "BOOKMARK"]
    bookmark = events[2]["object"]["metadata"]
    assert bookmark["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_watch_filters_by_namespace_labels_and_name(
    kube_api: KubeApiServer, kube: KubeClient
) -> None:
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    start = kube.request("GET", "/apis/example.com/v1/widgets")["metadata"]["resourceVersion"]
    kube.create(dict(widget("elsewhere"), metadata={"name": "elsewhere", "namespace": "other"}))
    kube.create(widget("plain"))
    labelled = widget("front")
    labelled["metadata"]["labels"] = {"tier": "front"}
    kube.create(labelled)
    events = read_watch(
        kube_api.url,
        "/apis/example.com/v1/namespaces/default/widgets",
        1,
        resourceVersion=start,
        labelSelector="tier=front",
    )
    assert [e["object"]["metadata"]["name"] for e in events] == ["front"]
    events = read_watch(
        kube_api.url, "/apis/example.com/v1/namespaces/default/widgets", 2, resourceVersion=start
    )
    assert [e["object"]["metadata"]["name"] for e in events] == ["plain", "front"]
    events = read_watch(
        kube_api.url,
        "/apis/example.com/v1/namespaces/default/widgets/plain",
        1,
        resourceVersion=start,
    )
    assert [e["object"]["metadata"]["name"] for e in events] == ["plain"]


def test_timeout_seconds_ends_a_quiet_watch(kube_api: KubeApiServer) -> None:
    events = read_watch(kube_api.url, "/apis/example.com/v1/widgets", 10, timeoutSeconds="1")
    assert events == []  # the stream closed by itself instead of blocking for 10 events


def test_a_forgotten_version_is_gone(widget_crd_file: Path) -> None:
    with KubeApiServer(crds=[widget_crd_file], history=3) as api:
        kube = api.client()
        start = kube.request("GET", "/apis/example.com/v1/widgets")["metadata"]["resourceVersion"]
        for index in range(5):
            kube.create(widget(f"w{index}"))
        [event] = read_watch(api.url, "/apis/example.com/v1/widgets", 1, resourceVersion=start)
        assert event["type"] == "ERROR"
        assert (event["object"]["code"], event["object"]["reason"]) == (410, "Expired")
        recent = kube.list(WIDGETS, "Widget")[-2]["metadata"]["resourceVersion"]
        [event] = read_watch(api.url, "/apis/example.com/v1/widgets", 1, resourceVersion=recent)
        assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "w4")


async def _collect(url: str, count: int, into: list[dict[str, Any]]) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, params={"watch": "true"}) as response,
    ):
        async for line in response.content:
            if line.strip():
                into.append(json.loads(line))
            if len(into) >= count:
                return


async def test_live_watch_sees_writes_as_they_happen(kube_api: KubeApiServer) -> None:
    events: list[dict[str, Any]] = []
    url = kube_api.url + "/apis/example.com/v1/namespaces/default/widgets"
    async with kube_api.async_client() as kube:
        await kube.create(widget("before"))
        watcher = asyncio.create_task(_collect(url, 4, events))
        await kube.wait_for(lambda: asyncio.sleep(0, len(events)), lambda n: n == 1)
        await kube.create(widget("after"))
        await kube.patch(WIDGETS, "Widget", "after", {"status": {"ok": True}}, subresource="status")
        await kube.delete(WIDGETS, "Widget", "before")
        await asyncio.wait_for(watcher, 10)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "before"),
        ("ADDED", "after"),
        ("MODIFIED", "after"),
        ("DELETED", "before"),
    ]
    assert events[2]["object"]["status"] == {"ok": True}


async def test_stopping_the_server_ends_open_watches(widget_crd_file: Path) -> None:
    events: list[dict[str, Any]] = []
    async with KubeApiServer(crds=[widget_crd_file]) as api:
        watcher = asyncio.create_task(
            _collect(api.url + "/apis/example.com/v1/widgets", 100, events)
        )
        async with api.async_client() as kube:
            watching = api.handler[kmock.action.WATCH]
            await kube.wait_for(lambda: asyncio.sleep(0, len(watching)), lambda n: n == 1)
    await asyncio.wait_for(watcher, 10)
    assert events == []


def test_a_selector_watch_sees_objects_enter_and_leave(
    kube_api: KubeApiServer, kube: KubeClient
) -> None:
    start = kube.request("GET", "/apis/example.com/v1/widgets")["metadata"]["resourceVersion"]
    kube.create(widget("a"))
    for labels in ({"tier": "front"}, {"tier": "front", "x": "1"}, {"tier": "back"}):
        kube.patch(WIDGETS, "Widget", "a", {"metadata": {"labels": labels}})
    kube.delete(WIDGETS, "Widget", "a")
    events = read_watch(
        kube_api.url,
        "/apis/example.com/v1/widgets",
        3,
        resourceVersion=start,
        labelSelector="tier=front",
        timeoutSeconds="2",
    )
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert events[2]["object"]["metadata"]["labels"]["tier"] == "back"
