"""Leader election against a real ZooKeeper: one leader, fencing, SUSPENDED and LOST.

Connection loss for one client is real: that client talks to ZooKeeper through a
loopback TCP proxy (tests/tcp_proxy.py) which the test blackholes or cuts.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from kazoo.client import KazooClient

from controller.definitions import AppDefinition
from controller.state import (
    AsyncLeadership,
    Layout,
    LeaderElection,
    NotLeader,
    StateStore,
    Term,
    TermFence,
)
from devcluster.zookeeper import ZooKeeperServer
from tests.conftest import expire_session
from tests.tcp_proxy import TcpProxy
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

SESSION_TIMEOUT = 4.0


@dataclass
class Recorder:
    """Leadership callbacks with the monotonic time each arrived."""

    name: str
    log: list[tuple[float, str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def became_leader(self, term: Term) -> None:
        with self.lock:
            self.log.append((time.monotonic(), self.name, f"lead:{term.number}"))

    def must_stop(self, reason: str) -> None:
        with self.lock:
            self.log.append((time.monotonic(), self.name, f"stop:{reason}"))

    def times(self, prefix: str) -> list[float]:
        with self.lock:
            return [t for t, _, what in self.log if what.startswith(prefix)]

    def events(self) -> list[str]:
        with self.lock:
            return [what.split(":")[0] for _, _, what in self.log]


class Contender:
    def __init__(self, hosts: str, layout: Layout, name: str) -> None:
        self.client = KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT)
        self.client.start(timeout=10)
        self.recorder = Recorder(name)
        self.election = LeaderElection(self.client, self.recorder, layout=layout, identity=name)

    def close(self) -> None:
        self.election.stop()
        self.client.stop()
        self.client.close()


@pytest.fixture
def layout(zk_namespace: str) -> Layout:
    return Layout(zk_namespace)


@pytest.fixture
def contenders(zookeeper: ZooKeeperServer, layout: Layout) -> Iterator[list[Contender]]:
    made: list[Contender] = []
    yield made
    for contender in made:
        contender.close()


@pytest.fixture
def proxy(zookeeper: ZooKeeperServer) -> Iterator[TcpProxy]:
    server = TcpProxy("127.0.0.1", zookeeper.port)
    yield server
    server.close()


def contend(made: list[Contender], hosts: str, layout: Layout, name: str) -> Contender:
    contender = Contender(hosts, layout, name)
    made.append(contender)
    contender.election.start()
    return contender


def leaders(made: list[Contender]) -> list[str]:
    return [c.recorder.name for c in made if c.election.is_leading]


def test_exactly_one_leader_and_orderly_succession(
    zookeeper: ZooKeeperServer, layout: Layout, contenders: list[Contender]
) -> None:
    first = contend(contenders, zookeeper.hosts, layout, "first")
    wait_for(lambda: first.election.is_leading)
    second = contend(contenders, zookeeper.hosts, layout, "second")
    third = contend(contenders, zookeeper.hosts, layout, "third")
    wait_for(lambda: len(first.election.contenders()) == 3)
    assert leaders(contenders) == ["first"]

    first.election.stop()
    wait_for(lambda: second.election.is_leading)
    assert first.recorder.events() == ["lead", "stop"]
    assert leaders(contenders) == ["second"]
    assert not third.election.is_leading
    with pytest.raises(NotLeader):
        first.election.token()
    assert second.election.token() == second.election.node


def test_a_deposed_leader_cannot_write(
    zookeeper: ZooKeeperServer, layout: Layout, contenders: list[Contender]
) -> None:
    old = contend(contenders, zookeeper.hosts, layout, "old")
    wait_for(lambda: old.election.is_leading)
    new = contend(contenders, zookeeper.hosts, layout, "new")
    old_store = StateStore.on_kazoo(old.client, old.election, layout=layout)
    old_store.load()
    old_token = old.election.token()

    expire_session(old.client, zookeeper.hosts)
    wait_for(lambda: new.election.is_leading)
    app = AppDefinition(
        namespace="ns",
        name="app",
        spec={"appURL": "http://repo/app.tgz", "bootstrapScript": "start"},
    )
    with pytest.raises(NotLeader):
        old_store.put_app(app)

    # even a writer that still believes it leads is refused by ZooKeeper itself
    wait_for(lambda: len(new.election.contenders()) == 2)  # the old one re-contends

    class StaleFence:
        def confirm(self, timeout: float) -> bool:
            return True

        def token(self) -> str:
            return old_token

    believer = StateStore.on_kazoo(old.client, StaleFence(), layout=layout)
    believer.load()
    with pytest.raises(NotLeader, match="fenced"):
        believer.put_app(app)
    assert old.client.exists(layout.app(app.key)) is None

    new_store = StateStore.on_kazoo(new.client, new.election, layout=layout)
    new_store.load()
    new_store.put_app(app)
    assert new.client.exists(layout.app(app.key)) is not None
    assert leaders(contenders) == ["new"]


def test_confirming_leadership_takes_a_round_trip_the_flag_does_not(
    zookeeper: ZooKeeperServer, layout: Layout, proxy: TcpProxy, contenders: list[Contender]
) -> None:
    leader = contend(contenders, proxy.hosts, layout, "leader")
    wait_for(lambda: leader.election.is_leading)
    standby = contend(contenders, zookeeper.hosts, layout, "standby")
    wait_for(lambda: len(standby.election.contenders()) == 2)
    assert leader.election.confirm(timeout=5.0)
    assert not standby.election.confirm(timeout=5.0)

    # Cut off (as a process frozen and resumed is, until kazoo notices): the flag still
    # says leading, a round trip cannot confirm it.
    proxy.blackhole()
    assert leader.election.is_leading
    assert not leader.election.confirm(timeout=0.3)
    wait_for(lambda: standby.election.is_leading)
    assert standby.election.confirm(timeout=5.0)
    proxy.restore()


def test_a_suspended_leader_stops_before_another_is_elected(
    zookeeper: ZooKeeperServer, layout: Layout, proxy: TcpProxy, contenders: list[Contender]
) -> None:
    partitioned = contend(contenders, proxy.hosts, layout, "partitioned")
    wait_for(lambda: partitioned.election.is_leading)
    standby = contend(contenders, zookeeper.hosts, layout, "standby")
    wait_for(lambda: len(standby.election.contenders()) == 2)
    store = StateStore.on_kazoo(partitioned.client, partitioned.election, layout=layout)
    store.load()

    proxy.blackhole()  # packets vanish: only timeouts tell the leader
    wait_for(lambda: standby.election.is_leading)

    [stopped_at] = partitioned.recorder.times("stop")
    [elected_at] = standby.recorder.times("lead")
    assert stopped_at < elected_at
    assert "suspended" in partitioned.recorder.log[-1][2]
    assert not partitioned.election.is_leading
    with pytest.raises(NotLeader):
        store.save_framework_id("fw")

    proxy.restore()  # the session expired meanwhile: LOST, then a new session contends
    wait_for(lambda: len(standby.election.contenders()) == 2)
    assert leaders(contenders) == ["standby"]
    assert partitioned.recorder.events() == ["lead", "stop"]


def test_a_leader_whose_session_survives_resumes_after_confirming_its_node(
    zookeeper: ZooKeeperServer, layout: Layout, proxy: TcpProxy, contenders: list[Contender]
) -> None:
    leader = contend(contenders, proxy.hosts, layout, "leader")
    wait_for(lambda: leader.election.is_leading)
    standby = contend(contenders, zookeeper.hosts, layout, "standby")
    wait_for(lambda: len(standby.election.contenders()) == 2)
    node = leader.election.node

    proxy.cut()  # connections close at once: SUSPENDED right away
    wait_for(lambda: not leader.election.is_leading)
    proxy.restore()  # kazoo reconnects well within the session timeout
    wait_for(lambda: leader.election.is_leading)

    assert leader.recorder.events() == ["lead", "stop", "lead"]
    assert leader.election.node == node
    assert leader.election.term is not None and leader.election.term.number == 2
    assert standby.recorder.events() == []


def test_the_work_of_an_ended_term_cannot_write_in_the_next_one(
    zookeeper: ZooKeeperServer, layout: Layout, proxy: TcpProxy, contenders: list[Contender]
) -> None:
    leader = contend(contenders, proxy.hosts, layout, "leader")
    wait_for(lambda: leader.election.is_leading)
    node = leader.election.node
    first = TermFence(leader.election, leader.election.term)
    old = StateStore.on_kazoo(leader.client, first, layout=layout)
    old.load()

    proxy.cut()
    wait_for(lambda: not leader.election.is_leading)
    proxy.restore()
    wait_for(lambda: leader.election.is_leading)

    # The same node leads again, so the election's own token would let the old term's
    # store write what it planned on its old view.
    assert leader.election.node == node
    with pytest.raises(NotLeader):
        old.save_framework_id("from-the-old-term")
    assert not first.confirm(timeout=5)
    second = TermFence(leader.election, leader.election.term)
    assert second.token() == node
    assert second.confirm(timeout=5)
    current = StateStore.on_kazoo(leader.client, second, layout=layout)
    current.load()
    current.save_framework_id("fw")
    with pytest.raises(NotLeader):
        TermFence(leader.election, None).token()


def test_a_deleted_election_node_means_stepping_down_and_contending_again(
    zookeeper: ZooKeeperServer, layout: Layout, contenders: list[Contender]
) -> None:
    leader = contend(contenders, zookeeper.hosts, layout, "leader")
    wait_for(lambda: leader.election.is_leading)
    node = leader.election.node
    assert node is not None
    leader.client.delete(node)
    wait_for(lambda: leader.election.node not in (None, node) and leader.election.is_leading)
    assert leader.recorder.events() == ["lead", "stop", "lead"]


async def test_async_leadership_delivers_changes_in_order(
    zookeeper: ZooKeeperServer, layout: Layout
) -> None:
    client = KazooClient(hosts=zookeeper.hosts, timeout=SESSION_TIMEOUT)
    await asyncio.to_thread(client.start, 10)
    listener = AsyncLeadership(asyncio.get_running_loop())
    election = LeaderElection(client, listener, layout=layout)
    try:
        await asyncio.to_thread(election.start)
        elected = await asyncio.wait_for(listener.changes.get(), 20)
        assert elected.leading and elected.term is not None
        assert elected.term.node == election.node
        await asyncio.to_thread(election.stop)
        stopped = await asyncio.wait_for(listener.changes.get(), 20)
        assert not stopped.leading and stopped.reason == "leader election stopped"
    finally:
        await asyncio.to_thread(client.stop)
        client.close()
