"""The ZooKeeper rig itself: a real server, and session expiry that really expires."""

from __future__ import annotations

import threading

import pytest
from kazoo.client import KazooClient, KazooState

from devcluster.zookeeper import ZooKeeperServer
from tests.conftest import expire_session

pytestmark = pytest.mark.integration


def test_real_server_round_trip(zk_client: KazooClient, zk_namespace: str) -> None:
    zk_client.create(f"/{zk_namespace}/node", b"value", makepath=True)
    data, stat = zk_client.get(f"/{zk_namespace}/node")
    assert data == b"value"
    assert stat.version == 0


def test_expire_session_loses_ephemerals(
    zookeeper: ZooKeeperServer, zk_client: KazooClient, zk_namespace: str
) -> None:
    lost = threading.Event()
    zk_client.add_listener(lambda state: lost.set() if state == KazooState.LOST else None)
    zk_client.create(f"/{zk_namespace}/eph", ephemeral=True, makepath=True)
    expire_session(zk_client, zookeeper.hosts)
    assert lost.wait(15), "client never observed LOST after its session expired"
    observer = KazooClient(hosts=zookeeper.hosts)
    observer.start()
    try:
        assert observer.exists(f"/{zk_namespace}/eph") is None
    finally:
        observer.stop()
        observer.close()
