"""The HTTP face of the Kubernetes API emulator: a KMock handler that routes API requests
to `storage` and renders results the way a real API server does.

Built on KMock's `KubernetesScaffold` (the aiohttp plumbing, the request log, the reaction
DSL tests can use to inject faults, e.g. `handler['patch'] << 500`). KMock 0.8's own
stateful emulator is not used: its URL parser fails on `/api/v1/namespaces` and misreads
`/api/v1/namespaces/NAME`, and its objects lack what kopf relies on (see
docs/kube-emulator.md). So this handler parses requests itself (`route`) and serves them
from one reaction at fallback priority, below any reaction a test adds. While no test
reaction exists, requests go straight to it: KMock's matching replays the whole request
log for every request, which makes a long-running server slower with each request.

It serves:

- discovery: `/api`, `/apis`, `/apis/G`, `/api/v1`, `/apis/G/V` from the served types,
  `/version`, and minimal OpenAPI v3 documents for kubectl (`openapi`);
- objects: GET (get, list, watch), POST, PUT, PATCH (merge, JSON, server-side apply as a
  merge), DELETE (one, collection), the `status` subresource; `labelSelector`,
  `fieldSelector`, `dryRun=All`, `fieldValidation=Strict`;
- watches: newline-delimited events from `resourceVersion` on (or the current state as
  ADDED first), `sendInitialEvents` with the closing BOOKMARK, `timeoutSeconds`, a 410
  ERROR event for a forgotten version;
- `Accept: application/json;as=Table` responses with printer columns for kubectl.
Errors are `Status` bodies with the real codes and reasons (404, 409, 410, 422, ...).
"""

from __future__ import annotations

import asyncio
import datetime
import json
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp.web
import attrs
import kmock
import yaml
from kmock._internal.rendering import Response, StreamingError

from devcluster.kube import errors, openapi, selectors, tables
from devcluster.kube.conversions import present
from devcluster.kube.errors import ApiError
from devcluster.kube.resources import ResourceType
from devcluster.kube.storage import Change, Predicate, Storage

SERVER_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-cloudjob-emulator",
    "gitCommit": "",
    "gitTreeState": "clean",
    "buildDate": "",
    "goVersion": "",
    "compiler": "gc",
    "platform": "linux/amd64",
}
_VERSION_ORDER = re.compile(r"v(\d+)(?:(alpha|beta)(\d+))?$")


@dataclass(frozen=True)
class Route:
    """What a request URL addresses; `group` is None for non-API paths."""

    group: str | None = None
    version: str | None = None
    namespace: str | None = None
    plural: str | None = None
    name: str | None = None
    subresource: str | None = None


def route(path: str) -> Route:
    """Parse an API path: `/api/v1/namespaces/NS/events/NAME`, `/apis/G/V/PLURAL/NAME/status`."""
    parts = [part for part in path.strip("/").split("/") if part]
    if not parts or parts[0] not in ("api", "apis"):
        return Route()
    if parts[0] == "api":
        group, rest = "", parts[1:]
    else:
        if len(parts) < 2:
            return Route()
        group, rest = parts[1], parts[2:]
    version, rest = (rest[0], rest[1:]) if rest else (None, [])
    namespace = None
    # `/namespaces/NAME/status` is a namespace's subresource, `/namespaces/NS/PLURAL` a list.
    if (
        len(rest) >= 3
        and rest[0] == "namespaces"
        and not (len(rest) == 3 and rest[2] in ("status", "finalize"))
    ):
        namespace, rest = rest[1], rest[2:]
    return Route(
        group=group,
        version=version,
        namespace=namespace,
        plural=rest[0] if rest else None,
        name=rest[1] if len(rest) > 1 else None,
        subresource="/".join(rest[2:]) or None,
    )


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes' version order: v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > anything else."""
    match = _VERSION_ORDER.match(version)
    if match is None:
        return (0, 0, 0, version)
    major, stage, minor = match.groups()
    rank = {None: 3, "beta": 2, "alpha": 1}[stage]
    return (rank, int(major), int(minor or 0), "")


def _action(method: str, route_: Route, params: Mapping[str, str]) -> kmock.action | None:
    if route_.plural is None:
        return None
    if method == "GET":
        if params.get("watch") in ("true", "1"):
            return kmock.action.WATCH
        return kmock.action.FETCH if route_.name else kmock.action.LIST
    return {
        "POST": kmock.action.CREATE,
        "PATCH": kmock.action.UPDATE,
        "PUT": kmock.action.UPDATE,
        "DELETE": kmock.action.DELETE,
    }.get(method)


def _json(payload: Any, status: int = 200) -> Response:
    # Status and headers are set on every response: KMock keeps them on the reaction.
    return Response(
        status=status,
        headers={"Content-Type": "application/json"},
        payload=json.dumps(payload).encode(),
    )


def _line(event: Mapping[str, Any]) -> bytes:
    return json.dumps(event).encode() + b"\n"


def _wants_table(headers: Mapping[str, str]) -> bool:
    accept = headers.get("Accept", "")
    first = accept.split(",")[0]
    return "as=Table" in first


def _content_type(headers: Mapping[str, str]) -> str:
    return headers.get("Content-Type", "application/json").split(";")[0].strip().lower()


def _selected_change(change: Change, predicate: Predicate) -> str | None:
    """How a watch with a selector sees a change: an object entering the selection is
    ADDED, one leaving it is DELETED, as on a real server; None if it never matched."""
    now = predicate(change.obj)
    if change.type != "MODIFIED" or change.previous is None:
        return change.type if now else None
    before = predicate(change.previous)
    if now:
        return "MODIFIED" if before else "ADDED"
    return "DELETED" if before else None


@attrs.define(kw_only=True)
class ApiHandler(kmock.KubernetesScaffold):
    """A KMock handler serving a `Storage` as a Kubernetes API server."""

    storage: Storage = attrs.field(factory=Storage)
    keep_requests: int | None = 10_000
    clock: Callable[[], datetime.datetime] = attrs.field(
        default=lambda: datetime.datetime.now(datetime.UTC)
    )
    _stopping: asyncio.Event = attrs.field(factory=asyncio.Event, init=False)

    def __attrs_post_init__(self) -> None:
        # Instead of the scaffold's per-path discovery reactions: one reaction routes all.
        self.fallback << self._serve

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if len(self._payloads) == 1:  # no test reaction: skip KMock's matching
            response: aiohttp.web.StreamResponse = await (await self._serve(request))(request)
            return response
        result: aiohttp.web.StreamResponse = await super()._handle(request)
        return result

    async def _serve(self, request: kmock.Request) -> Response:
        try:
            return await self._route(request)
        except ApiError as error:
            return _json(error.status(), status=error.code)

    async def _route(self, request: kmock.Request) -> Response:
        path = request.url.path.rstrip("/") or "/"
        route_ = route(path)
        if request.method == "GET":
            exact = {
                "/": self._serve_root,
                "/version": self._serve_server_version,
                "/api": self._serve_api,
                "/apis": self._serve_apis,
                "/openapi/v3": self._serve_openapi_root,
            }
            if path in exact:
                return await exact[path](request)
            if path.startswith("/openapi/v3/"):
                return await self._serve_openapi(request)
            if route_.group is not None and route_.plural is None:
                if route_.version is None:
                    return await self._serve_group(request)
                return await self._serve_version(request)
        if request.action is not None:
            return self._dispatch(request)
        raise errors.unknown_resource()

    # Request intake: KMock's own parser cannot route `/api/v1/namespaces`. -------------

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        body = await raw_request.read()
        params = dict(raw_request.query)
        route_ = route(raw_request.path)
        data: Any = None
        content_type = _content_type(raw_request.headers)
        if body and not (content_type.endswith("json") or content_type.endswith("yaml")):
            # Protobuf and CBOR are not spoken here: 415, as a server without them answers.
            return await self._render_error(errors.unsupported_media_type(content_type))
        if body:
            try:
                parse = yaml.safe_load if content_type.endswith("yaml") else json.loads
                data = parse(body)
            except (ValueError, yaml.YAMLError) as error:
                return await self._render_error(errors.bad_request(f"malformed body: {error}"))
        request = kmock.Request(
            id=len(self._requests),
            raw_request=raw_request,
            url=raw_request.url,
            method=raw_request.method,
            params=params,
            headers=dict(raw_request.headers),
            cookies=dict(raw_request.cookies),
            body=body,
            text=body.decode(errors="replace"),
            data=data,
            action=_action(raw_request.method, route_, params),
            resource=None
            if route_.group is None
            else kmock.resource(group=route_.group, version=route_.version, plural=route_.plural),
            namespace=route_.namespace,
            name=route_.name,
            subresource=route_.subresource,
        )
        self._remember(request)
        try:
            return await self._handle(request)
        except StreamingError as error:  # headers already sent: end the stream
            if not isinstance(error.args[0], aiohttp.web.StreamResponse):
                raise
            cause = error.__cause__
            await self._stream_error(
                cause if isinstance(cause, Exception) else error, error.args[0]
            )
            await error.args[0].write_eof()
            return error.args[0]
        except Exception as error:
            if self._errors:
                self._errors[-1].append(error)
            return await self._render_error(error)

    def _remember(self, request: kmock.Request) -> None:
        self._requests.append(request)
        if self.keep_requests is not None and len(self._requests) > self.keep_requests:
            del self._requests[: -self.keep_requests]
            for payload in self._payloads:
                del payload._requests[: -self.keep_requests]

    async def _render_error(self, exc: Exception) -> aiohttp.web.StreamResponse:
        if isinstance(exc, ApiError):
            return aiohttp.web.json_response(exc.status(), status=exc.code)
        result: aiohttp.web.StreamResponse = await super()._render_error(exc)
        return result

    def stop_watches(self) -> None:
        """End every open watch stream (clients reconnect; used when shutting down)."""
        self._stopping.set()

    # Discovery --------------------------------------------------------------------------

    def _groups(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for rt in self.storage.types():
            versions = groups.setdefault(rt.group, [])
            if rt.version not in versions:
                versions.append(rt.version)
        for versions in groups.values():
            versions.sort(key=version_priority, reverse=True)
        return groups

    @staticmethod
    def _group_body(name: str, versions: list[str]) -> dict[str, Any]:
        listed = [{"groupVersion": f"{name}/{version}", "version": version} for version in versions]
        return {"name": name, "versions": listed, "preferredVersion": listed[0]}

    async def _serve_root(self, request: kmock.Request) -> Response:
        paths = {"/api", "/api/v1", "/apis", "/version", "/openapi/v3"}
        for group, versions in self._groups().items():
            if group:
                paths.add(f"/apis/{group}")
                paths.update(f"/apis/{group}/{version}" for version in versions)
        return _json({"paths": sorted(paths)})

    async def _serve_server_version(self, request: kmock.Request) -> Response:
        return _json(SERVER_VERSION)

    async def _serve_api(self, request: kmock.Request) -> Response:
        return _json(
            {
                "kind": "APIVersions",
                "apiVersion": "v1",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [],
            }
        )

    async def _serve_apis(self, request: kmock.Request) -> Response:
        groups = [
            self._group_body(name, versions)
            for name, versions in sorted(self._groups().items())
            if name
        ]
        return _json({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})

    async def _serve_group(self, request: kmock.Request) -> Response:
        group = route(request.url.path).group or ""
        versions = self._groups().get(group)
        if not group or not versions:
            raise errors.unknown_resource()
        return _json({"kind": "APIGroup", "apiVersion": "v1", **self._group_body(group, versions)})

    async def _serve_version(self, request: kmock.Request) -> Response:
        route_ = route(request.url.path)
        served = [
            rt
            for rt in self.storage.types()
            if rt.group == route_.group and rt.version == route_.version
        ]
        if not served:
            raise errors.unknown_resource()
        resources = []
        for rt in served:
            resources.append(
                {
                    "name": rt.plural,
                    "singularName": rt.singular,
                    "namespaced": rt.namespaced,
                    "kind": rt.kind,
                    "verbs": list(rt.verbs),
                    "shortNames": list(rt.short_names),
                    "categories": list(rt.categories),
                }
            )
            resources += [
                {
                    "name": f"{rt.plural}/{sub}",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "kind": rt.kind,
                    "verbs": ["get", "patch", "update"],
                }
                for sub in sorted(rt.subresources)
            ]
        return _json(
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": served[0].api_version,
                "resources": resources,
            }
        )

    async def _serve_openapi_root(self, request: kmock.Request) -> Response:
        return _json(openapi.root(self.storage.types()))

    async def _serve_openapi(self, request: kmock.Request) -> Response:
        path = request.url.path.removeprefix("/openapi/v3/")
        served = [rt for rt in self.storage.types() if openapi.group_version_path(rt) == path]
        if not served:
            raise errors.unknown_resource()
        return _json(openapi.document(served))

    # Objects ----------------------------------------------------------------------------

    def _resource(self, request: kmock.Request) -> ResourceType:
        route_ = route(request.url.path)
        assert route_.group is not None and route_.version and route_.plural
        rt = self.storage.resource_type(route_.group, route_.version, route_.plural)
        if (route_.namespace is not None and not rt.namespaced) or (
            route_.name is not None
            and rt.namespaced
            and route_.namespace is None
            and request.method != "GET"
        ):
            raise errors.unknown_resource()
        if route_.subresource is not None and (
            route_.subresource not in rt.subresources or route_.subresource == "finalize"
        ):
            raise errors.unknown_resource()
        return rt

    def _dispatch(self, request: kmock.Request) -> Response:
        rt = self._resource(request)
        route_ = route(request.url.path)
        params, namespace, name = request.params, route_.namespace, route_.name
        dry_run = params.get("dryRun") == "All"
        strict = params.get("fieldValidation") == "Strict"
        method = str(request.method.value)
        if method == "GET" and request.action == kmock.action.WATCH:
            return self._watch(request, rt, namespace, name)
        if method == "GET" and name is None:
            return self._list(request, rt, namespace)
        if method == "GET":
            if rt.namespaced and namespace is None:
                raise errors.unknown_resource()
            obj = self.storage.get(rt, namespace, name or "")
            return self._rendered(request, rt, obj)
        if method == "POST" and name is None:
            created = self.storage.create(
                rt, namespace, request.data, dry_run=dry_run, strict=strict
            )
            return _json(created, status=201)
        if method == "PUT" and name is not None:
            return _json(
                self.storage.replace(
                    rt,
                    namespace,
                    name,
                    request.data,
                    subresource=route_.subresource,
                    dry_run=dry_run,
                    strict=strict,
                )
            )
        if method == "PATCH" and name is not None:
            return self._patch(
                request, rt, namespace, name, route_.subresource, dry_run=dry_run, strict=strict
            )
        if method == "DELETE" and name is not None:
            options = dict(request.data) if isinstance(request.data, dict) else {}
            return _json(self.storage.delete(rt, namespace, name, options, dry_run=dry_run))
        if method == "DELETE":
            gone = self.storage.delete_collection(rt, namespace, self._predicate(params))
            return _json(
                {
                    "kind": rt.list_kind,
                    "apiVersion": rt.api_version,
                    "metadata": {"resourceVersion": str(self.storage.resource_version)},
                    "items": gone,
                }
            )
        raise errors.method_not_allowed(
            f"the server does not allow this method ({method}) on the requested resource"
        )

    def _patch(
        self,
        request: kmock.Request,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        subresource: str | None,
        *,
        dry_run: bool,
        strict: bool,
    ) -> Response:
        kind = _content_type(request.headers)
        if kind == "application/json-patch+json":
            patch_type = "json"
        elif kind == "application/merge-patch+json":
            patch_type = "merge"
        elif kind == "application/strategic-merge-patch+json" and not rt.tracks_generation:
            patch_type = "merge"  # an approximation: built-ins here have no list merge keys
        elif kind == "application/apply-patch+yaml":
            if not isinstance(request.data, dict):
                raise errors.bad_request("an apply patch must be an object")
            try:
                self.storage.get(rt, namespace, name)
            except ApiError as error:
                if error.code != 404:
                    raise
                return _json(
                    self.storage.create(
                        rt, namespace, request.data, dry_run=dry_run, strict=strict
                    ),
                    status=201,
                )
            patch_type = "merge"
        else:
            raise errors.unsupported_media_type(kind)
        return _json(
            self.storage.patch(
                rt,
                namespace,
                name,
                patch_type,
                request.data,
                subresource=subresource,
                dry_run=dry_run,
                strict=strict,
            )
        )

    @staticmethod
    def _predicate(params: Mapping[str, str]) -> Predicate:
        checks: list[Predicate] = []
        try:
            if params.get("labelSelector"):
                checks.append(selectors.label_selector(params["labelSelector"]))
            if params.get("fieldSelector"):
                checks.append(selectors.field_selector(params["fieldSelector"]))
        except selectors.SelectorError as error:
            raise errors.bad_request(str(error)) from None
        return lambda obj: all(check(obj) for check in checks)

    def _rendered(self, request: kmock.Request, rt: ResourceType, obj: dict[str, Any]) -> Response:
        if _wants_table(request.headers):
            return _json(
                tables.table(
                    rt,
                    [obj],
                    resource_version=obj["metadata"].get("resourceVersion", ""),
                    now=self.clock(),
                    include_object=request.params.get("includeObject", "Metadata"),
                )
            )
        return _json(obj)

    def _list(self, request: kmock.Request, rt: ResourceType, namespace: str | None) -> Response:
        items, version = self.storage.list_objects(rt, namespace, self._predicate(request.params))
        if _wants_table(request.headers):
            return _json(
                tables.table(
                    rt,
                    items,
                    resource_version=str(version),
                    now=self.clock(),
                    include_object=request.params.get("includeObject", "Metadata"),
                )
            )
        return _json(
            {
                "kind": rt.list_kind,
                "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(version)},
                "items": items,
            }
        )

    # Watches ----------------------------------------------------------------------------

    def _watch(
        self, request: kmock.Request, rt: ResourceType, namespace: str | None, name: str | None
    ) -> Response:
        params = dict(request.params)
        if name is not None:
            selected = f"metadata.name={name}"
            params["fieldSelector"] = ",".join(
                filter(None, [params.get("fieldSelector"), selected])
            )
        since_text = params.get("resourceVersion") or ""
        if since_text and not since_text.isdigit():
            raise errors.bad_request(
                f'resourceVersion: Invalid value: "{since_text}": must be an integer'
            )
        timeout = params.get("timeoutSeconds")
        stream = self._events(
            request,
            rt,
            namespace,
            self._predicate(params),
            since=int(since_text) if since_text not in ("", "0") else None,
            initial_end_bookmark=params.get("sendInitialEvents") == "true"
            and params.get("allowWatchBookmarks") == "true",
            timeout_seconds=float(timeout) if timeout else None,
        )
        return Response(status=200, headers={"Content-Type": "application/json"}, payload=stream)

    def _event(
        self, request: kmock.Request, rt: ResourceType, kind: str, obj: Mapping[str, Any]
    ) -> bytes:
        if _wants_table(request.headers):
            obj = tables.table(
                rt,
                [obj],
                resource_version=obj["metadata"]["resourceVersion"],
                now=self.clock(),
                include_object=request.params.get("includeObject", "Metadata"),
            )
        return _line({"type": kind, "object": obj})

    async def _events(
        self,
        request: kmock.Request,
        rt: ResourceType,
        namespace: str | None,
        predicate: Predicate,
        *,
        since: int | None,
        initial_end_bookmark: bool,
        timeout_seconds: float | None,
    ) -> AsyncIterator[bytes]:
        yield b""  # send the headers now: a quiet watch is still a live watch
        loop = asyncio.get_running_loop()
        deadline = None if timeout_seconds is None else loop.time() + timeout_seconds
        if since is None:
            items, cursor = self.storage.list_objects(rt, namespace, predicate)
            for item in items:
                yield self._event(request, rt, "ADDED", item)
            if initial_end_bookmark:
                yield _line(
                    {
                        "type": "BOOKMARK",
                        "object": {
                            "kind": rt.kind,
                            "apiVersion": rt.api_version,
                            "metadata": {
                                "resourceVersion": str(cursor),
                                "annotations": {"k8s.io/initial-events-end": "true"},
                            },
                        },
                    }
                )
        else:
            cursor = since
        while not self._stopping.is_set():
            tick = self.storage.tick
            try:
                changes = self.storage.changes_after(rt, cursor)
            except ApiError as error:
                yield _line({"type": "ERROR", "object": error.status()})
                return
            for change in changes:
                cursor = change.resource_version
                stored = change.obj
                if namespace is not None and stored["metadata"].get("namespace") != namespace:
                    continue
                kind = _selected_change(change, predicate)
                if kind is not None:
                    yield self._event(request, rt, kind, present(rt, stored))
            if changes:
                continue
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return
            waiters = {
                asyncio.ensure_future(tick.wait()),
                asyncio.ensure_future(self._stopping.wait()),
            }
            try:
                await asyncio.wait(waiters, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
