"""The campaign's API server fault on a control plane of its own: killed, the API server
refuses connections; started again, it serves on the same port with the data it had."""

from __future__ import annotations

from pathlib import Path

import pytest

from devcluster.kube import ControlPlane
from devcluster.kube.errors import ApiError

pytestmark = pytest.mark.integration


def test_a_killed_api_server_starts_again_on_its_port_with_its_data(tmp_path: Path) -> None:
    with ControlPlane(tmp_path, controller_manager=False) as cluster:
        client = cluster.client()
        config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kept"}}
        client.create({**config, "data": {"key": "value"}})
        port = cluster.port

        cluster.kill_apiserver()
        with pytest.raises((ApiError, OSError)):
            client.get("v1", "ConfigMap", "kept", "default")

        cluster.start_apiserver()
        assert cluster.port == port
        assert client.get("v1", "ConfigMap", "kept", "default")["data"] == {"key": "value"}
