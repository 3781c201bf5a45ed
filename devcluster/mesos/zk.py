"""Registers the emulated master in ZooKeeper the way a Mesos master does.

A Mesos master contending for leadership creates an ephemeral sequential node
`<path>/json.info_<seq>` holding its MasterInfo as JSON (see Mesos's
high-availability documentation); schedulers such as pymesos's MasterDetector watch
the children of `<path>`, pick the lowest sequence number and read `address`
from its data. Closing the session removes the node, which is what a master
crash looks like to detectors. Blocking (kazoo); used by LocalMesos from the
caller's thread.
"""

from __future__ import annotations

import json

from kazoo.client import KazooClient

from devcluster.mesos.protocol import JSON


class ZooKeeperRegistration:
    def __init__(self, hosts: str, path: str) -> None:
        if not path.startswith("/") or (path.endswith("/") and path != "/"):
            raise ValueError(
                f"zk_path must be an absolute ZooKeeper path like '/mesos', got {path!r}"
            )
        self.hosts = hosts
        self.path = path.rstrip("/") or "/"
        self._client: KazooClient | None = None
        self.node: str | None = None

    def register(self, master_info: JSON, timeout: float = 15.0) -> str:
        client = KazooClient(hosts=self.hosts, timeout=10.0)
        client.start(timeout=timeout)
        client.ensure_path(self.path)
        prefix = f"{self.path.rstrip('/')}/json.info_"
        self.node = client.create(
            prefix, json.dumps(master_info).encode("utf-8"), ephemeral=True, sequence=True
        )
        self._client = client
        return str(self.node)

    def withdraw(self) -> None:
        client, self._client = self._client, None
        self.node = None
        if client is not None:
            client.stop()
            client.close()
