"""Reading answers (pure): a JSON body, or what an error answer says.

Used by `controller.plugin.reading`: the history API answers errors as
`{"error": "..."}`; the API server (its service proxy, the CloudJob calls) as a
`Status` object with a `message`; anything else is shown as text, cut short.
"""

from __future__ import annotations

import json
from typing import Any

from controller.plugin.errors import PluginError

TEXT_LIMIT = 300


def said(body: bytes) -> str:
    """The message of an error answer's body."""
    text = body.decode("utf-8", "replace").strip()
    try:
        document = json.loads(text)
    except ValueError:
        return text[:TEXT_LIMIT] or "(no message)"
    if isinstance(document, dict):
        for key in ("error", "message"):
            if isinstance(document.get(key), str):
                return str(document[key])
    return text[:TEXT_LIMIT]


def json_body(body: bytes, where: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise PluginError(
            f"{where} did not answer JSON (is it the cloudjob-controller's health port?): "
            f"{body[:TEXT_LIMIT].decode('utf-8', 'replace')}"
        ) from None


def items_of(body: bytes) -> list[dict[str, Any]]:
    """The `items` of a Kubernetes list answer."""
    items: list[dict[str, Any]] = json_body(body, "the API server")["items"]
    return items


def _status(body: bytes) -> dict[str, Any] | None:
    """The API server's own `Status` answer, if `body` is one."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if isinstance(document, dict) and document.get("kind") == "Status":
        return document
    return None


def proxy_failure(code: int, body: bytes, service: str, url: str) -> str:
    """Why a request through the service proxy of `service` failed, and what to do."""
    status = _status(body)
    if status is None:
        return f"the history API ({url}) answered {code}: {said(body)}"
    message = str(status.get("message", ""))
    namespace = service.split("/", 1)[0]
    if code == 403:
        return (
            f"the API server refused the proxy to {service}: {message}. Reading the history "
            f"API needs 'get' on services/proxy in namespace {namespace}"
        )
    if code == 404:
        return (
            f"the API server has no Service {service} ({message}). Name the controller's "
            "Service with --service NAMESPACE/NAME[:PORT], or its URL with --server"
        )
    if code == 503:
        # The API server says this both when the Service has no ready endpoint and when
        # there is no such Service: it looks up endpoints only.
        name = service.split("/", 1)[-1].split(":", 1)[0]
        return (
            f"no controller answers behind the Service {service} ({message}). Is that the "
            f"controller's Service, and is a replica running and ready? kubectl -n "
            f"{namespace} get service {name}; kubectl -n {namespace} get pods,endpointslices"
        )
    return f"the API server answered {code} for {url}: {message}"
