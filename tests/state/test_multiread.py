"""The gateway's reads in bulk (multi-reads) against a real ZooKeeper, compared with its
reads node by node."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import make_digest_acl

from controller.state.gateway import ZkGateway
from controller.state.multiread import READS_PER_REQUEST, reads_in_bulk
from devcluster.zookeeper import ZooKeeperServer

pytestmark = pytest.mark.integration


@pytest.fixture
def root(zk_client: KazooClient) -> Iterator[str]:
    path = f"/multiread-{uuid.uuid4().hex[:10]}"
    zk_client.create(path)
    yield path
    zk_client.delete(path, recursive=True)


def test_the_test_server_answers_multi_reads(zk_client: KazooClient) -> None:
    assert reads_in_bulk(zk_client)


def test_bulk_reads_answer_as_node_by_node_reads(zk_client: KazooClient, root: str) -> None:
    count = 2 * READS_PER_REQUEST + 50
    tx = zk_client.transaction()
    for i in range(count):
        tx.create(f"{root}/n{i:04d}", f"data {i}".encode())
    assert not any(isinstance(r, Exception) for r in tx.commit())
    for i in range(0, count, 3):
        zk_client.set(f"{root}/n{i:04d}", b"changed")
    zk_client.create(f"{root}/n0001/child-b")
    zk_client.create(f"{root}/n0001/child-a")
    paths = [f"{root}/n{i:04d}" for i in range(count)] + [f"{root}/missing"]

    bulk, single = ZkGateway(zk_client), ZkGateway(zk_client, bulk=False)
    data = bulk.get_many(paths)
    assert data == single.get_many(paths)
    assert len(data) == count and data[f"{root}/n0003"] == (b"changed", 1)
    children = bulk.children_many(paths)
    assert children == single.children_many(paths)
    assert children[f"{root}/n0001"] == ["child-a", "child-b"]
    assert f"{root}/missing" not in children
    # three multi-reads for 451 reads, against one request per read
    assert (bulk.counts.requests, single.counts.requests) == (6, 2 * len(paths))


def test_bulk_reads_below_a_chroot(
    zookeeper: ZooKeeperServer, zk_client: KazooClient, root: str
) -> None:
    zk_client.create(f"{root}/jobs/a", b"1", makepath=True)
    zk_client.create(f"{root}/jobs/b", b"2")
    chrooted = KazooClient(hosts=zookeeper.hosts + root, timeout=5.0)
    chrooted.start(timeout=10)
    try:
        gateway = ZkGateway(chrooted, bulk=True)
        assert gateway.children_many(["/jobs", "/none"]) == {"/jobs": ["a", "b"]}
        assert gateway.get_many(["/jobs/a", "/jobs/b"]) == {
            "/jobs/a": (b"1", 0),
            "/jobs/b": (b"2", 0),
        }
    finally:
        chrooted.stop()
        chrooted.close()


def test_a_read_refused_by_the_acl_raises_as_a_single_read_does(
    zk_client: KazooClient, root: str
) -> None:
    zk_client.create(f"{root}/open", b"x")
    zk_client.create(f"{root}/secret", b"y", acl=[make_digest_acl("someone", "else", all=True)])
    paths = [f"{root}/open", f"{root}/secret"]
    with pytest.raises(NoAuthError):
        ZkGateway(zk_client, bulk=False).get_many(paths)
    with pytest.raises(NoAuthError):
        ZkGateway(zk_client, bulk=True).get_many(paths)
    assert zk_client.connected
    zk_client.delete(f"{root}/secret")  # the recursive delete could not list it
