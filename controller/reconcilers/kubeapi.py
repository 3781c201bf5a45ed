"""A small async client of the Kubernetes API, for the requests kopf does not make for us.

The Kubernetes layer needs what kopf has no public API for: reading one object afresh
(`named`, to confirm that an object is really gone before its state is removed), and
creating and patching core v1 Events (`post`, `patch`, so that repeated events are
aggregated into one Event with a count, as the Kubernetes event recorder does), and
patching the `status` subresource of CloudJobs and CloudApps (the status refresher).

It logs in with the same `kopf.ConnectionInfo` the operator uses (the controller's
credentials callable, read again after a 401), over one aiohttp session per leadership
term, bounded to `CONNECTIONS` connections. `bounded_session` also builds the
operator's own session for kopf (`handlers`): kopf's default opens one connection per
concurrent request without a limit, which at 10,000 objects meant more than a thousand
TLS connections held open, each with its buffers. Every failure is an `ApiError`
carrying the HTTP code (0 when the server could not be reached). Used by
`controller.reconcilers.sweeping`, `recording` and (through `controller.app`) the status
refresher; built and closed by `controller.app`.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import kopf

from controller.resources import GROUP, VERSION

MERGE_PATCH = "application/merge-patch+json"
TIMEOUT = aiohttp.ClientTimeout(total=30)
# Connections of this client: the status refresher writes eight objects at a time, the
# Event recorder a few; more requests wait for a free connection.
CONNECTIONS = 16


def bounded_session(
    info: kopf.ConnectionInfo,
    limit: int,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: aiohttp.ClientTimeout = aiohttp.client.DEFAULT_TIMEOUT,
) -> aiohttp.ClientSession:
    """An aiohttp session logged in as `info`, over at most `limit` connections (a
    request beyond them waits for one to be free)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, ssl=info.as_ssl_context()),
        headers={**info.as_http_headers(), **(headers or {})},
        proxy=info.proxy_url,
        trust_env=info.trust_env,
        timeout=timeout,
    )


class ApiError(RuntimeError):
    """A request the API server refused (`code`) or that never reached it (`code` 0)."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        super().__init__(f"HTTP {code}: {message}" if code else message)


class KubeApi:
    """See the module docstring. `credentials` is called for each new session."""

    def __init__(self, credentials: Callable[[], kopf.ConnectionInfo], *, user_agent: str) -> None:
        self._credentials = credentials
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None
        self._server = ""

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            info = self._credentials()
            self._server = info.server.rstrip("/")
            self._session = bounded_session(
                info, CONNECTIONS, headers={"User-Agent": self._user_agent}, timeout=TIMEOUT
            )
        return self._session

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def _request(
        self, method: str, path: str, body: Mapping[str, Any] | None, content_type: str
    ) -> dict[str, Any] | None:
        """The response body; None for 404. A 401 logs in afresh once (rotated tokens)."""
        for attempt in (1, 2):
            session = self._open()
            try:
                async with session.request(
                    method,
                    self._server + path,
                    data=None if body is None else json.dumps(body),
                    headers={"Content-Type": content_type},
                ) as response:
                    text = await response.text()
                    if response.status == 401 and attempt == 1:
                        await self.close()
                        continue
                    if response.status == 404:
                        return None
                    if response.status >= 400:
                        raise ApiError(response.status, _message(text))
                    answer: dict[str, Any] = json.loads(text) if text else {}
                    return answer
            except (aiohttp.ClientError, TimeoutError) as error:
                raise ApiError(0, f"{method} {path} failed: {error!r}") from error
        raise ApiError(401, f"{method} {path}: unauthorised with fresh credentials")

    async def get(self, path: str) -> dict[str, Any] | None:
        """The object at `path`, or None if it does not exist."""
        return await self._request("GET", path, None, "application/json")

    async def named(self, plural: str, namespace: str, name: str) -> list[dict[str, Any]]:
        """The custom resources of `plural` named `name` in `namespace` (none or one),
        read afresh from the server by a list (which the controller's RBAC allows where
        a get would need one more verb)."""
        query = urllib.parse.urlencode({"fieldSelector": f"metadata.name={name}"})
        listing = await self.get(f"{collection_path(plural, namespace)}?{query}")
        items = (listing or {}).get("items")
        return [item for item in items or [] if isinstance(item, dict)]

    async def listed(self, plural: str, namespace: str | None) -> list[dict[str, Any]]:
        """Every custom resource of `plural` in `namespace` (None: in all), a page of 500
        at a time."""
        path = (
            collection_path(plural, namespace) if namespace else f"/apis/{GROUP}/{VERSION}/{plural}"
        )
        items: list[dict[str, Any]] = []
        token: str | None = ""
        while token is not None:
            query = {"limit": "500", **({"continue": token} if token else {})}
            listing = await self.get(f"{path}?{urllib.parse.urlencode(query)}") or {}
            items += [item for item in listing.get("items") or [] if isinstance(item, dict)]
            token = (listing.get("metadata") or {}).get("continue") or None
        return items

    async def namespace_named(self, name: str) -> bool:
        """Whether the namespace `name` exists, by a list (granted to a controller that
        watches chosen namespaces)."""
        query = urllib.parse.urlencode({"fieldSelector": f"metadata.name={name}"})
        listing = await self.get(f"/api/v1/namespaces?{query}")
        return bool((listing or {}).get("items"))

    async def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        created = await self._request("POST", path, body, "application/json")
        if created is None:
            raise ApiError(404, f"POST {path}: not found")
        return created

    async def patch(self, path: str, body: Mapping[str, Any]) -> dict[str, Any] | None:
        """A JSON merge patch; None if the object does not exist."""
        return await self._request("PATCH", path, body, MERGE_PATCH)


def _message(text: str) -> str:
    """The `message` of a Kubernetes `Status` body, else the body itself (shortened)."""
    try:
        status = json.loads(text)
    except ValueError:
        return text[:300]
    message = status.get("message") if isinstance(status, dict) else None
    return message if isinstance(message, str) else text[:300]


def collection_path(plural: str, namespace: str) -> str:
    """The path of the namespaced custom resources of this controller's API group."""
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{plural}"


def status_path(plural: str, namespace: str, name: str) -> str:
    """The `status` subresource of one custom resource."""
    return f"{collection_path(plural, namespace)}/{name}/status"


def events_path(namespace: str, name: str | None = None) -> str:
    base = f"/api/v1/namespaces/{namespace}/events"
    return f"{base}/{name}" if name else base
