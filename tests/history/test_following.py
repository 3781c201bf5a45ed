"""The jobs, apps and queues the history API answers follow ZooKeeper without a read
of the state tree per request: on a standby through its watches (`StateFollower`), on
the leader from its store's memory. Real ZooKeeper; reads are counted on the wire, by
the packets the server received."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from kazoo.client import KazooClient

from controller.api.following import Decoded
from controller.api.server import HistoryApi
from controller.definitions import AppDefinition, JobDefinition
from controller.state import FollowUp, LaunchSource, Layout, RunningTask, StateStore
from controller.state.view import View
from devcluster.zookeeper import ZooKeeperServer, packets_received
from tests.history.factories import T0
from tests.history.test_api import APP_SPEC, JOB_SPEC, Leader, NodeFence
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

JOBS = 30
REQUESTS = 20


def job(n: int) -> JobDefinition:
    return JobDefinition(namespace="team", name=f"job-{n:02}", spec=JOB_SPEC)


def task(job_key: str, shard: int) -> RunningTask:
    return RunningTask(
        task_id=f"{job_key}@-@{shard}@-@READY@-@agent-1@-@t{shard}",
        job_key=job_key,
        shard=shard,
        source=LaunchSource.READY,
        agent_id="agent-1",
        hostname="host-1",
        launched_at=T0,
        fire_time=T0,
    )


@pytest.fixture
def store(zk_client: KazooClient, zk_namespace: str) -> StateStore:
    store = StateStore.on_kazoo(zk_client, NodeFence(zk_client), layout=Layout(zk_namespace))
    store.load()
    store.put_app(AppDefinition(namespace="team", name="app", spec=APP_SPEC))
    for n in range(JOBS):
        store.put_job(job(n))
    return store


def serving(
    zk_client: KazooClient, zk_namespace: str, leading: Callable[[], View | None]
) -> Iterator[HistoryApi]:
    api = HistoryApi(
        database_url="sqlite+aiosqlite:///unused",
        timeout=10.0,
        zookeeper=lambda: zk_client,
        layout=Layout(zk_namespace),
        reconcile=Leader().reconcile,
        leading=leading,
    )
    api.start()
    yield api
    api.stop()


@pytest.fixture
def standby(zk_client: KazooClient, zk_namespace: str, store: StateStore) -> Iterator[HistoryApi]:
    yield from serving(zk_client, zk_namespace, lambda: None)


@pytest.fixture
def leader(zk_client: KazooClient, zk_namespace: str, store: StateStore) -> Iterator[HistoryApi]:
    yield from serving(zk_client, zk_namespace, store.snapshot)


def ok(api: HistoryApi, path: str, query: dict[str, str] | None = None) -> Any:
    status, body = api.answer("GET", f"/api/v1/{path}", query or {})
    assert status == 200, body
    return body


def names(api: HistoryApi) -> list[str]:
    return [j["name"] for j in ok(api, "jobs", {"limit": "1000"})["items"]]


def received_during(zookeeper: ZooKeeperServer, requests: Callable[[], None]) -> int:
    before = packets_received(zookeeper.port)
    requests()
    return packets_received(zookeeper.port) - before


def pages(api: HistoryApi) -> None:
    """What the console's pages ask of ZooKeeper's state, REQUESTS times."""
    for n in range(REQUESTS):
        path, query = [
            ("jobs", {}),
            ("apps", {}),
            ("queues", {}),
            ("jobs", {"namespace": "team", "state": "Running"}),
        ][n % 4]
        ok(api, path, query)


def test_a_standby_follows_jobs_and_tasks_without_reading_the_tree_per_request(
    standby: HistoryApi, store: StateStore, zookeeper: ZooKeeperServer
) -> None:
    assert names(standby) == [f"job-{n:02}" for n in range(JOBS)]
    # a read of the tree is a request per node: more than JOBS packets
    assert received_during(zookeeper, lambda: pages(standby)) < JOBS // 2

    def added() -> None:
        store.put_job(job(99))
        wait_for(lambda: names(standby), lambda n: "job-99" in n, what="the added job")
        pages(standby)

    # following a change reads the node that changed, not the tree again
    assert received_during(zookeeper, added) < JOBS // 2
    store.remove_job(job(3).key)
    wait_for(lambda: names(standby), lambda n: "job-03" not in n, what="the removed job gone")

    key = job(7).key
    store.fire([key], T0)
    wait_for(lambda: ok(standby, "queues")["ready"], lambda r: len(r) == 1, what="the pending run")
    launched = [task(key, 0), task(key, 1)]
    store.commit_launch(launched)
    store.update_task_state(launched[0].task_id, "TASK_RUNNING")

    def running() -> list[tuple[int, str | None]]:
        return [(q["shard"], q["state"]) for q in ok(standby, "queues")["running"]]

    wait_for(
        running, lambda r: r == [(0, "TASK_RUNNING"), (1, "TASK_STAGING")], what="shard 0 running"
    )
    [shown] = ok(standby, "jobs", {"job": key})["items"]
    assert (shown["state"], shown["runningShards"], shown["pendingRuns"]) == ("Running", 2, 0)
    store.task_terminated(launched[1].task_id, FollowUp.FAILOVER)
    wait_for(
        lambda: ok(standby, "queues")["failover"],
        lambda f: [q["shard"] for q in f] == [1],
        what="shard 1 in the failover queue",
    )
    assert received_during(zookeeper, lambda: pages(standby)) < JOBS // 2


def test_the_leader_answers_from_its_store_at_once(
    leader: HistoryApi, store: StateStore, zookeeper: ZooKeeperServer
) -> None:
    assert received_during(zookeeper, lambda: pages(leader)) < JOBS // 2
    store.put_job(job(99))
    assert "job-99" in names(leader)
    key = job(5).key
    store.fire([key], T0 + timedelta(minutes=1))
    store.commit_launch([task(key, 2)])
    assert [(q["job"], q["shard"]) for q in ok(leader, "queues")["running"]] == [("job-05", 2)]
    store.remove_job(key)
    assert ok(leader, "queues")["running"] == [] and "job-05" not in names(leader)


def test_a_definition_is_decoded_once_per_version() -> None:
    decoded = Decoded(JobDefinition.decode)
    first, second = job(1).encode(), job(2).encode()
    assert decoded(first) == job(1) and decoded(first) is decoded(first)
    decoded.settle()
    decoded(first)
    decoded(second)
    assert decoded.decoded == 2
    decoded.settle()
    decoded(second)
    decoded.settle()
    decoded(first)
    assert decoded.decoded == 3
