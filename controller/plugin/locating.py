"""Where the history API is (pure): a URL given with `--server`/`CLOUDJOB_API`, or the
controller's Service reached through the API server's service proxy.

`controller.plugin.cli` decides with `parse_service` (a `--service` the user named) or
`choose_service` (the Services the cluster lists with the chart's name label); the
chart gives its Service a port named `api` for the health port, which serves the API.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from controller.plugin.errors import PluginError

API_BASE = "/api/v1"
API_PORT = "api"
# The label the chart puts on its objects (app.kubernetes.io/name = the chart's name).
CHART_SELECTOR = "app.kubernetes.io/name=cloudjob-controller"


@dataclass(frozen=True)
class ServiceRef:
    namespace: str
    name: str
    port: str = API_PORT

    @property
    def proxy_path(self) -> str:
        """The API server's path that proxies to the Service's port."""
        return (
            f"/api/v1/namespaces/{quote(self.namespace)}/services/"
            f"{quote(self.name)}:{quote(self.port)}/proxy"
        )

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}:{self.port}"


def parse_service(text: str, namespace: str) -> ServiceRef:
    """`[NAMESPACE/]NAME[:PORT]`: the namespace defaults to `namespace`, the port to `api`."""
    rest = text
    where = namespace
    if "/" in rest:
        where, rest = rest.split("/", 1)
    name, _, port = rest.partition(":")
    if not where or not name or "/" in rest or ":" in port:
        raise PluginError(f"--service '{text}' is not [NAMESPACE/]NAME[:PORT]")
    return ServiceRef(where, name, port or API_PORT)


def choose_service(services: Sequence[Mapping[str, Any]]) -> ServiceRef:
    """The one Service of the controller's chart that has an `api` port."""
    found = [
        ServiceRef(s["metadata"]["namespace"], s["metadata"]["name"])
        for s in services
        if any(p.get("name") == API_PORT for p in (s.get("spec") or {}).get("ports") or [])
    ]
    if len(found) == 1:
        return found[0]
    if not found:
        raise PluginError(
            "found no cloudjob-controller Service with an 'api' port in the cluster "
            f"(label {CHART_SELECTOR}). Name it with --service NAMESPACE/NAME[:PORT], or "
            "give the API's URL with --server (or CLOUDJOB_API) when the controller runs "
            "outside the cluster"
        )
    listed = ", ".join(str(s) for s in found)
    raise PluginError(f"several cloudjob-controller Services: {listed}; choose one with --service")


def api_path(path: str, query: Mapping[str, str | int | None] | None = None) -> str:
    """`/api/v1<path>?<query>`, leaving out parameters that are None."""
    params = {k: str(v) for k, v in (query or {}).items() if v is not None}
    encoded = urlencode(params)
    return f"{API_BASE}{path}" + (f"?{encoded}" if encoded else "")
