"""A small Kubernetes API client for tests and the `dev` stack: create, apply, get, list,
patch, replace, delete, events, and waiting for a condition.

Objects are addressed the way manifests do (`apiVersion`, `kind`, name, namespace); the
plural and scope come from the server's discovery, so custom resources registered later
(a CRD created at runtime) are found too. Errors are raised as `ApiError` with the code,
reason and message of the server's `Status`. Each operation is written once, sans-I/O,
as a generator of HTTP calls; `KubeClient` drives it with urllib over TLS with a bearer
token.
"""

from __future__ import annotations

import builtins
import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from devcluster.kube.errors import ApiError

T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    """One HTTP request an operation needs."""

    method: str
    path: str
    params: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    content_type: str = "application/json"


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes


Op = Generator[Call, Reply, T]


@dataclass(frozen=True)
class Ref:
    """Where a kind is served."""

    prefix: str  # /api/v1 or /apis/GROUP/VERSION
    plural: str
    namespaced: bool


def decode(reply: Reply) -> Any:
    """The JSON body of a reply; a `Status` failure becomes an `ApiError`."""
    try:
        payload = json.loads(reply.body) if reply.body else None
    except ValueError:
        payload = None
    if reply.status >= 400:
        if isinstance(payload, dict) and payload.get("kind") == "Status":
            raise ApiError(
                reply.status,
                payload.get("reason", ""),
                payload.get("message", ""),
                payload.get("details"),
            )
        raise ApiError(reply.status, "Unknown", reply.body.decode(errors="replace")[:500])
    return payload


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


class Operations:
    """The client's operations as generators of `Call`s (pure apart from a kind cache)."""

    def __init__(self, namespace: str = "default") -> None:
        self.namespace = namespace
        self._refs: dict[tuple[str, str], Ref] = {}

    def call(self, call: Call) -> Op[Any]:
        reply = yield call
        return decode(reply)

    def resolve(self, api_version: str, kind: str) -> Op[Ref]:
        if (api_version, kind) not in self._refs:
            prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            try:
                listing = yield from self.call(Call("GET", prefix))
            except ApiError as error:
                if error.code != 404:
                    raise
                listing = {"resources": []}
            for item in listing.get("resources", []):
                if "/" not in item["name"]:
                    self._refs[api_version, item["kind"]] = Ref(
                        prefix, item["name"], item["namespaced"]
                    )
        if (api_version, kind) not in self._refs:
            raise ApiError(
                404, "NotFound", f'the server does not serve kind "{kind}" in "{api_version}"'
            )
        return self._refs[api_version, kind]

    def path(
        self,
        ref: Ref,
        namespace: str | None,
        name: str | None = None,
        subresource: str | None = None,
    ) -> str:
        parts = [ref.prefix]
        if ref.namespaced:
            parts.append(f"/namespaces/{namespace or self.namespace}")
        parts.append(f"/{ref.plural}")
        if name is not None:
            parts.append(f"/{name}")
        if subresource is not None:
            parts.append(f"/{subresource}")
        return "".join(parts)

    def create(self, obj: Mapping[str, Any]) -> Op[dict[str, Any]]:
        ref = yield from self.resolve(obj["apiVersion"], obj["kind"])
        path = self.path(ref, _meta(obj).get("namespace"))
        result: dict[str, Any] = yield from self.call(Call("POST", path, body=obj))
        return result

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Op[dict[str, Any]]:
        ref = yield from self.resolve(api_version, kind)
        result: dict[str, Any] = yield from self.call(Call("GET", self.path(ref, namespace, name)))
        return result

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        all_namespaces: bool = False,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> Op[builtins.list[dict[str, Any]]]:
        ref = yield from self.resolve(api_version, kind)
        path = self.path(ref, namespace)
        if all_namespaces and ref.namespaced:
            path = f"{ref.prefix}/{ref.plural}"
        params = {
            key: value
            for key, value in (("labelSelector", label_selector), ("fieldSelector", field_selector))
            if value
        }
        listing = yield from self.call(Call("GET", path, params=params))
        items: builtins.list[dict[str, Any]] = listing["items"]
        return items

    def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        subresource: str | None = None,
        json_patch: bool = False,
    ) -> Op[dict[str, Any]]:
        ref = yield from self.resolve(api_version, kind)
        content_type = (
            "application/json-patch+json" if json_patch else "application/merge-patch+json"
        )
        result: dict[str, Any] = yield from self.call(
            Call(
                "PATCH",
                self.path(ref, namespace, name, subresource),
                body=patch,
                content_type=content_type,
            )
        )
        return result

    def replace(
        self, obj: Mapping[str, Any], *, subresource: str | None = None
    ) -> Op[dict[str, Any]]:
        ref = yield from self.resolve(obj["apiVersion"], obj["kind"])
        meta = _meta(obj)
        result: dict[str, Any] = yield from self.call(
            Call("PUT", self.path(ref, meta.get("namespace"), meta["name"], subresource), body=obj)
        )
        return result

    def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
    ) -> Op[dict[str, Any]]:
        ref = yield from self.resolve(api_version, kind)
        result: dict[str, Any] = yield from self.call(
            Call("DELETE", self.path(ref, namespace, name))
        )
        return result

    def apply(self, obj: Mapping[str, Any]) -> Op[dict[str, Any]]:
        """Create, or merge the manifest (without status) into the existing object."""
        try:
            return (yield from self.create(obj))
        except ApiError as error:
            if error.reason != "AlreadyExists":
                raise
        meta = _meta(obj)
        patch = {key: value for key, value in obj.items() if key != "status"}
        return (
            yield from self.patch(
                obj["apiVersion"], obj["kind"], meta["name"], patch, namespace=meta.get("namespace")
            )
        )

    def server_side_apply(
        self, obj: Mapping[str, Any], *, field_manager: str, force: bool = False
    ) -> Op[dict[str, Any]]:
        """Server-side apply of the manifest as `field_manager` (what GitOps tools do)."""
        ref = yield from self.resolve(obj["apiVersion"], obj["kind"])
        meta = _meta(obj)
        params = {"fieldManager": field_manager}
        if force:
            params["force"] = "true"
        result: dict[str, Any] = yield from self.call(
            Call(
                "PATCH",
                self.path(ref, meta.get("namespace"), meta["name"]),
                params=params,
                body=obj,
                content_type="application/apply-patch+yaml",
            )
        )
        return result

    def events(self, involved: Mapping[str, Any]) -> Op[builtins.list[dict[str, Any]]]:
        """Core v1 Events about `involved` (matched by uid), oldest first."""
        meta = _meta(involved)
        events = yield from self.list(
            "v1",
            "Event",
            meta.get("namespace"),
            all_namespaces=not meta.get("namespace"),
            field_selector=f"involvedObject.uid={meta.get('uid')}",
        )
        return sorted(events, key=lambda event: int(event["metadata"]["resourceVersion"]))


class KubeClient:
    """A blocking client (urllib); see `Operations` for the methods' meaning."""

    def __init__(
        self,
        url: str,
        *,
        token: str,
        ssl_context: ssl.SSLContext,
        namespace: str = "default",
        timeout: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.ops = Operations(namespace)
        self.timeout = timeout
        self._token = token
        self._ssl = ssl_context

    def _send(self, call: Call) -> Reply:
        query = f"?{urllib.parse.urlencode(call.params)}" if call.params else ""
        data = None if call.body is None else json.dumps(call.body).encode()
        request = urllib.request.Request(
            self.url + call.path + query,
            data=data,
            method=call.method,
            headers={
                "Content-Type": call.content_type,
                "Accept": "application/json",
                "Authorization": f"Bearer {self._token}",
            },
        )
        try:
            with urllib.request.urlopen(
                request, timeout=self.timeout, context=self._ssl
            ) as response:
                return Reply(response.status, response.read())
        except urllib.error.HTTPError as error:
            return Reply(error.code, error.read())

    def run(self, op: Op[T]) -> T:
        """Drive an operation to its result."""
        try:
            call = next(op)
            while True:
                call = op.send(self._send(call))
        except StopIteration as stop:
            result: T = stop.value
            return result

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        return self.run(self.ops.call(Call(method, path, params or {}, body, content_type)))

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        return self.run(self.ops.create(obj))

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        return self.run(self.ops.apply(obj))

    def server_side_apply(
        self, obj: Mapping[str, Any], *, field_manager: str, force: bool = False
    ) -> dict[str, Any]:
        return self.run(self.ops.server_side_apply(obj, field_manager=field_manager, force=force))

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any]:
        return self.run(self.ops.get(api_version, kind, name, namespace))

    def list(
        self, api_version: str, kind: str, namespace: str | None = None, **options: Any
    ) -> builtins.list[dict[str, Any]]:
        return self.run(self.ops.list(api_version, kind, namespace, **options))

    def patch(
        self, api_version: str, kind: str, name: str, patch: Any, **options: Any
    ) -> dict[str, Any]:
        return self.run(self.ops.patch(api_version, kind, name, patch, **options))

    def replace(self, obj: Mapping[str, Any], *, subresource: str | None = None) -> dict[str, Any]:
        return self.run(self.ops.replace(obj, subresource=subresource))

    def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any]:
        return self.run(self.ops.delete(api_version, kind, name, namespace))

    def events(self, involved: Mapping[str, Any]) -> builtins.list[dict[str, Any]]:
        return self.run(self.ops.events(involved))

    def wait_for(
        self,
        fetch: Callable[[], T],
        until: Callable[[T], bool],
        *,
        within: float = 30.0,
        interval: float = 0.05,
    ) -> T:
        """Call `fetch` until `until(result)` holds; TimeoutError shows the last result."""
        deadline = time.monotonic() + within
        while True:
            try:
                result: T | None = fetch()
            except ApiError as error:
                if error.code != 404:
                    raise
                result = None  # not there yet counts as not ready
            if result is not None and until(result):
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {within}s; last: {result!r}")
            time.sleep(interval)
