"""The ZooKeeper rig itself: a real server, session expiry that really expires, and an
ensemble of three that loses its quorum and regains it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from kazoo.client import KazooClient, KazooState

from devcluster.zookeeper import ZooKeeperEnsemble, ZooKeeperServer, node_count, serving
from tests.conftest import expire_session
from tests.waiting import wait_for

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


def test_an_ensemble_loses_its_quorum_with_two_servers_down_and_keeps_its_data(
    tmp_path: Path,
) -> None:
    with ZooKeeperEnsemble(data_dir=tmp_path) as ensemble:
        client = KazooClient(hosts=ensemble.hosts, timeout=5.0)
        client.start(timeout=10)
        try:
            client.create("/kept", b"value")
            ensemble.stop_server(0)
            ensemble.stop_server(1)
            wait_for(
                lambda: serving(ensemble.servers[2].port),
                lambda answers: not answers,
                what="the last server to stop serving without a quorum",
            )
            ensemble.start_server(0)
            ensemble.start_server(1)
            ensemble.wait_serving()
            data, _ = client.retry(client.get, "/kept")
            assert data == b"value"
        finally:
            client.stop()
            client.close()


def test_node_count_counts_the_servers_znodes_and_is_none_when_it_is_down(
    tmp_path: Path,
) -> None:
    server = ZooKeeperServer(data_dir=tmp_path)
    server.start()
    client = KazooClient(hosts=server.hosts)
    try:
        client.start()
        before = node_count(server.port)
        assert before is not None
        client.create("/soak/a", makepath=True)
        client.create("/soak/b")
        assert node_count(server.port) == before + 3
        client.stop()
        server.halt()
        assert node_count(server.port) is None
    finally:
        client.stop()
        client.close()
        server.stop()
