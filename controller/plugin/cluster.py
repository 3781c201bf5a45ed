"""The Kubernetes API as the user's kubeconfig reaches it (the `kubernetes` client).

`controller.plugin.cli` opens a `Cluster` from `--kubeconfig`/`KUBECONFIG` and
`--context`; it gives the context's namespace, reads and annotates CloudJobs, lists
the controller's Services, and sends GETs through the service proxy. Connection
failures become a `PluginError` naming the server; answers come back as they are.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import urllib3
from kubernetes import client as kube
from kubernetes import config as kubeconfig
from kubernetes.config.config_exception import ConfigException

from controller.plugin.errors import PluginError
from controller.plugin.locating import CHART_SELECTOR

GROUP = "cloudjob.io"
VERSION = "v1alpha1"
PLURAL = "cloudjobs"
DEFAULT_KUBECONFIG = "~/.kube/config"


@dataclass(frozen=True)
class Answer:
    code: int
    body: bytes


def kubeconfig_path(flag: str | None) -> str:
    """--kubeconfig, else KUBECONFIG (a list of files, merged), else ~/.kube/config."""
    return flag or os.environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG


class Cluster:
    def __init__(self, config_file: str, context: str | None, timeout: float) -> None:
        configuration = kube.Configuration()
        try:
            kubeconfig.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=config_file,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
            contexts, current = kubeconfig.list_kube_config_contexts(config_file)  # type: ignore[no-untyped-call]
        except (ConfigException, OSError) as error:
            raise PluginError(
                f"cannot use the kubeconfig {config_file}: {error}. Pass --kubeconfig or "
                "set KUBECONFIG (or give the history API's URL with --server)"
            ) from None
        chosen = next((c for c in contexts if c["name"] == context), current)
        self.namespace: str = (chosen.get("context") or {}).get("namespace") or "default"
        self.server: str = configuration.host
        # No retries: a user waits for the answer, and urllib3's default three only
        # delay telling that the server is down.
        configuration.retries = 0
        self._api = kube.ApiClient(configuration)
        self._timeout = timeout

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]

    def request(self, method: str, path: str, body: Any = None) -> Answer:
        """One request; any answer is returned, a server that cannot be reached raises."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/merge-patch+json"
        try:
            method, url, headers, body, post = self._api.param_serialize(
                method, path, header_params=headers, body=body, auth_settings=["BearerToken"]
            )
            response = self._api.call_api(
                method, url, headers, body, post, _request_timeout=self._timeout
            )
            data = response.read()  # type: ignore[no-untyped-call]
        except kube.ApiException as error:  # what the client raises for TLS failures
            raise self._unreachable(error.reason) from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            # urllib3 wraps the cause (refused, timed out, TLS) in "max retries exceeded".
            raise self._unreachable(getattr(error, "reason", None) or error) from None
        return Answer(response.status, data or b"")

    def _unreachable(self, error: object) -> PluginError:
        return PluginError(
            f"cannot reach the Kubernetes API server at {self.server}: {error}. Check the "
            "kubeconfig's context (--context) and that the cluster is up"
        )

    def job_path(self, namespace: str, name: str) -> str:
        return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}"

    def controller_services(self) -> Answer:
        """The Services labelled as the chart's, in every namespace."""
        query = urlencode({"labelSelector": CHART_SELECTOR})
        return self.request("GET", f"/api/v1/services?{query}")
