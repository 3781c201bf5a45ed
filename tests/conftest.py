"""Fixtures shared by every test: a real ZooKeeper server and kazoo clients, a real
PostgreSQL, and a real Kubernetes control plane with the identity the controller runs as."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kazoo.client import KazooClient

from devcluster.kube import ControlPlane
from devcluster.kube.identities import Identity, grant_chart_rbac
from devcluster.postgres import PostgresServer
from devcluster.zookeeper import ZooKeeperServer


@pytest.fixture(scope="session")
def zookeeper() -> Iterator[ZooKeeperServer]:
    """One real ZooKeeper for the whole run (started from the Debian package)."""
    server = ZooKeeperServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL for the whole run (from the Debian package), started on first
    use; the run history's tests make a database per test on it."""
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def zk_namespace() -> str:
    """A fresh chroot-like namespace per test so tests never see each other's nodes."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def zk_client(zookeeper: ZooKeeperServer) -> Iterator[KazooClient]:
    client = KazooClient(hosts=zookeeper.hosts, timeout=5.0)
    client.start(timeout=10)
    yield client
    client.stop()
    client.close()


def expire_session(client: KazooClient, hosts: str) -> None:
    """Expire `client`'s session the way a server would: a second connection
    with the same session id and password closes it."""
    session_id, password = client.client_id
    twin = KazooClient(hosts=hosts, timeout=5.0)
    twin._session_id = session_id  # kazoo has no public API to attach to a session
    twin._session_passwd = password
    twin.start(timeout=10)
    twin.stop()
    twin.close()


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """One real Kubernetes control plane for the whole run, with the project's CRDs."""
    with ControlPlane(tmp_path_factory.mktemp("kube")) as cluster:
        cluster.install_crds()
        yield cluster


@pytest.fixture(scope="session")
def controller_identity(
    kube_cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Identity:
    """The chart's ServiceAccount with the chart's cluster-wide RBAC: what the controller
    runs as in the tests."""
    return grant_chart_rbac(kube_cluster, tmp_path_factory.mktemp("identity"))
