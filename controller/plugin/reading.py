"""Reading the history API: straight at a URL (`--server`, `CLOUDJOB_API`: the
controller running outside the cluster, as in `scripts/dev`), or through the API
server's service proxy with the kubeconfig's credentials (the controller in the
cluster). `controller.plugin.cli` picks one; both answer parsed JSON or raise a
`PluginError` saying which URL failed and what to do.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, Protocol

from controller.plugin.answers import json_body, proxy_failure, said
from controller.plugin.cluster import Cluster
from controller.plugin.errors import PluginError
from controller.plugin.locating import ServiceRef, api_path

Query = Mapping[str, str | int | None]


class HistoryReader(Protocol):
    def get(self, path: str, query: Query | None = None) -> Any:
        """The JSON answer of `GET /api/v1<path>?<query>`."""
        ...


class DirectReader:
    def __init__(self, base_url: str, timeout: float) -> None:
        self._base = base_url.rstrip("/")
        self._timeout = timeout

    def get(self, path: str, query: Query | None = None) -> Any:
        url = self._base + api_path(path, query)
        try:
            with urllib.request.urlopen(url, timeout=self._timeout) as reply:
                return json_body(reply.read(), url)
        except urllib.error.HTTPError as error:
            raise PluginError(
                f"the history API ({url}) answered {error.code}: {said(error.read())}"
            ) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise PluginError(
                f"cannot reach the history API at {self._base} ({reason}). Is the controller "
                "running there? In dev, export the CLOUDJOB_API line scripts/dev prints; "
                "otherwise pass the controller's health port URL with --server, or unset "
                "--server/CLOUDJOB_API to go through the cluster's API server"
            ) from None


class ProxiedReader:
    def __init__(self, cluster: Cluster, service: ServiceRef) -> None:
        self._cluster = cluster
        self._service = service

    def get(self, path: str, query: Query | None = None) -> Any:
        target = self._service.proxy_path + api_path(path, query)
        answer = self._cluster.request("GET", target)
        url = self._cluster.server + target
        if answer.code != 200:
            raise PluginError(proxy_failure(answer.code, answer.body, str(self._service), url))
        return json_body(answer.body, url)
