"""Fixtures shared by every test: a real ZooKeeper server and kazoo clients, local Mesos
clusters, a real PostgreSQL, a real Kubernetes control plane with the identity the
controller runs as, and the whole stack (`tests.stack`). Also the tiers: every test
module declares one of the markers `unit`, `integration` or `system` (pyproject.toml
says what each means), and a test without exactly one is refused at collection; and
the property tests' settings."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import settings
from kazoo.client import KazooClient

from devcluster.kube import ControlPlane
from devcluster.kube.identities import Identity, grant_chart_rbac
from devcluster.mesos import AgentSpec, LocalMesos
from devcluster.postgres import PostgresServer
from devcluster.zookeeper import ZooKeeperServer
from tests.stack import stack

__all__ = ["stack"]

TIERS = ("unit", "integration", "system")

# No per-example deadline: a wall-clock limit fails property tests on a busy machine
# (speed is measured by the benchmarks under bench/, not asserted here).
settings.register_profile("project", deadline=None)
settings.load_profile("project")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    wrong = [
        item.nodeid
        for item in items
        if sum(item.get_closest_marker(tier) is not None for tier in TIERS) != 1
    ]
    if wrong:
        raise pytest.UsageError(
            "each test module must declare exactly one tier "
            "(pytestmark = pytest.mark.unit, .integration or .system); these do not:\n"
            + "\n".join(wrong)
        )


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


@pytest.fixture
def start_mesos() -> Iterator[Callable[..., LocalMesos]]:
    """Start local Mesos clusters (`LocalMesos` options) for one test; each is stopped
    after the test, and after every fixture that depends on this one."""
    clusters: list[LocalMesos] = []

    def start(agents: list[AgentSpec], **options: Any) -> LocalMesos:
        cluster = LocalMesos(agents=agents, **options)
        clusters.append(cluster)
        return cluster.start()

    yield start
    for cluster in clusters:
        cluster.stop()


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
