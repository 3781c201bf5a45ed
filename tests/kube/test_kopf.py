"""kopf against the emulated API over HTTP: an operator defined here handles a Widget's
creation, update and deletion, adds and removes its finalizer, patches status through the
status subresource and posts events — the way the controller's handlers will."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kmock
import kopf
import kubernetes.config.kube_config
import pytest

from devcluster.kube import ApiError, AsyncKubeClient, KubeApiServer
from tests.kube.conftest import WIDGETS, running_operator, widget

FINALIZER = "example.com/test-operator"


def widget_operator(
    login: Any, calls: list[tuple[str, Any]], watch_timeout: int = 30
) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    kopf.on.login(registry=registry)(login)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.finalizer = FINALIZER
        settings.posting.level = logging.WARNING
        settings.watching.server_timeout = watch_timeout

    @kopf.on.create("example.com", "v1", "widgets", id="grow", registry=registry)
    def created(spec: kopf.Spec, body: kopf.Body, **_: Any) -> dict[str, Any]:
        calls.append(("create", spec["size"]))
        kopf.event(body, type="Normal", reason="Grown", message=f"size {spec['size']}")
        return {"size": spec["size"]}

    @kopf.on.update("example.com", "v1", "widgets", id="regrow", registry=registry)
    def updated(new: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        calls.append(("update", new["spec"]["size"]))
        patch.status["seen"] = new["spec"]["size"]

    @kopf.on.delete("example.com", "v1", "widgets", id="shrink", registry=registry)
    def deleted(name: str, **_: Any) -> None:
        calls.append(("delete", name))

    return registry


async def gone(kube: AsyncKubeClient, name: str) -> bool:
    try:
        await kube.get(WIDGETS, "Widget", name)
    except ApiError as error:
        return error.code == 404
    return False


async def test_kopf_handles_the_whole_lifecycle(kube_api: KubeApiServer) -> None:
    calls: list[tuple[str, Any]] = []

    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=kube_api.url, default_namespace="default")

    async with running_operator(widget_operator(login, calls)), kube_api.async_client() as kube:
        await kube.create(widget("a", 2))
        handled = await kube.wait_for(
            lambda: kube.get(WIDGETS, "Widget", "a"), lambda obj: "grow" in obj.get("status", {})
        )
        assert handled["status"]["grow"] == {"size": 2}
        assert FINALIZER in handled["metadata"]["finalizers"]
        events = await kube.wait_for(
            lambda: kube.events(handled), lambda found: any(e["reason"] == "Grown" for e in found)
        )
        grown = next(e for e in events if e["reason"] == "Grown")
        assert (grown["type"], grown["message"]) == ("Normal", "size 2")
        assert grown["involvedObject"]["uid"] == handled["metadata"]["uid"]

        await kube.patch(WIDGETS, "Widget", "a", {"spec": {"size": 5}})
        updated = await kube.wait_for(
            lambda: kube.get(WIDGETS, "Widget", "a"),
            lambda obj: obj.get("status", {}).get("seen") == 5,
        )
        assert updated["metadata"]["generation"] == 2

        await kube.delete(WIDGETS, "Widget", "a")
        await kube.wait_for(lambda: gone(kube, "a"), bool)

    assert calls == [("create", 2), ("update", 5), ("delete", "a")]
    # kopf released its finalizer with a resourceVersion-guarded JSON patch, over the wire.
    guarded = [
        request.data
        for request in kube_api.handler
        if request.method == "PATCH"
        and request.headers.get("Content-Type") == "application/json-patch+json"
    ]
    assert guarded and all(
        ops[0]["op"] == "test" and ops[0]["path"] == "/metadata/resourceVersion" for ops in guarded
    )
    assert any(
        request.url.path.endswith("/status")
        for request in kube_api.handler
        if request.method == "PATCH"
    )


@pytest.mark.parametrize("login", [kopf.login_with_kubeconfig, kopf.login_via_client])
async def test_kopf_logs_in_with_the_written_kubeconfig(
    kube_api: KubeApiServer, login: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert kube_api.kubeconfig_path is not None
    monkeypatch.setenv("KUBECONFIG", str(kube_api.kubeconfig_path))
    # The kubernetes package reads KUBECONFIG once, when imported; a process started with
    # KUBECONFIG set (the controller) needs no such help.
    monkeypatch.setattr(
        kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kube_api.kubeconfig_path)
    )
    calls: list[tuple[str, Any]] = []
    async with running_operator(widget_operator(login, calls)), kube_api.async_client() as kube:
        await kube.create(widget("b", 3))
        await kube.wait_for(
            lambda: kube.get(WIDGETS, "Widget", "b"), lambda obj: "grow" in obj.get("status", {})
        )
        await kube.delete(WIDGETS, "Widget", "b")
        await kube.wait_for(lambda: gone(kube, "b"), bool)
    assert calls == [("create", 3), ("delete", "b")]


async def test_kopf_resumes_after_the_operator_restarts(kube_api: KubeApiServer) -> None:
    calls: list[tuple[str, Any]] = []

    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=kube_api.url)

    async with kube_api.async_client() as kube:
        async with running_operator(widget_operator(login, calls)):
            await kube.create(widget("c", 1))
            await kube.wait_for(
                lambda: kube.get(WIDGETS, "Widget", "c"),
                lambda obj: "grow" in obj.get("status", {}),
            )
        await kube.patch(WIDGETS, "Widget", "c", {"spec": {"size": 4}})  # while it is down
        async with running_operator(widget_operator(login, calls)):
            await kube.wait_for(
                lambda: kube.get(WIDGETS, "Widget", "c"),
                lambda obj: obj.get("status", {}).get("seen") == 4,
            )
    assert calls == [("create", 1), ("update", 4)]


async def test_kopf_keeps_up_across_watch_reconnections(kube_api: KubeApiServer) -> None:
    calls: list[tuple[str, Any]] = []

    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=kube_api.url)

    watches = kube_api.handler[kmock.action.WATCH, kmock.resource("example.com", "v1", "widgets")]
    async with (
        running_operator(widget_operator(login, calls, watch_timeout=1)),
        kube_api.async_client() as kube,
    ):
        await kube.create(widget("d", 1))
        await kube.wait_for(
            lambda: kube.get(WIDGETS, "Widget", "d"), lambda obj: "grow" in obj.get("status", {})
        )
        # The server ended kopf's watch (timeoutSeconds) and kopf resumed where it was.
        await kube.wait_for(lambda: asyncio.sleep(0, len(watches)), lambda count: count >= 2)
        await kube.patch(WIDGETS, "Widget", "d", {"spec": {"size": 6}})
        await kube.wait_for(
            lambda: kube.get(WIDGETS, "Widget", "d"),
            lambda obj: obj.get("status", {}).get("seen") == 6,
        )
    assert calls == [("create", 1), ("update", 6)]
    assert all("resourceVersion" in request.params for request in list(watches)[1:])
