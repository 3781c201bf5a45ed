"""The store's per-job reads against a real ZooKeeper: what one job's runtime reads
(`ready_of`, `failover_of`, `running_of`, `jobs_of_app`, `queue_sizes`) always agrees
with the whole queues, across every kind of change, a reload by a new leader and a
re-read after a refused transaction."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kazoo.client import KazooClient

from controller.state import (
    FollowUp,
    LaunchSource,
    Layout,
    LeaderElection,
    ReadyEntry,
    StateConflict,
    StateStore,
)
from tests.state.test_store import Leadership, app, fire, job, task
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def election(zk_client: KazooClient, layout: Layout) -> Iterator[LeaderElection]:
    elected = LeaderElection(zk_client, Leadership(), layout=layout, identity="test")
    elected.start()
    wait_for(lambda: elected.is_leading)
    yield elected
    elected.stop()


@pytest.fixture
def layout(zk_namespace: str) -> Layout:
    return Layout(zk_namespace)


def loaded(zk_client: KazooClient, election: LeaderElection, layout: Layout) -> StateStore:
    store = StateStore.on_kazoo(zk_client, election, layout=layout)
    store.load()
    return store


def assert_consistent(store: StateStore) -> None:
    """Every per-job read equals the same fact found by scanning the whole queues."""
    ready, failover, running = store.ready(), store.failover(), store.running()
    jobs, apps = store.jobs(), store.apps()
    keys = set(jobs) | set(ready) | {e.job_key for e in failover.values()}
    keys |= {t.job_key for t in running.values()}
    for key in keys:
        assert store.ready_of(key) == ready.get(key), key
        assert store.failover_of(key) == tuple(
            sorted(e.shard for e in failover.values() if e.job_key == key)
        ), key
        assert sorted(t.task_id for t in store.running_of(key)) == sorted(
            t.task_id for t in running.values() if t.job_key == key
        ), key
    app_keys = set(apps) | {j.app_key for j in jobs.values()}
    for app_key in app_keys:
        assert sorted(j.key for j in store.jobs_of_app(app_key)) == sorted(
            j.key for j in jobs.values() if j.app_key == app_key
        ), app_key
    sizes = store.queue_sizes()
    assert sizes.ready_jobs == len(ready)
    assert sizes.ready_runs == sum(e.count for e in ready.values())
    assert sizes.failover_shards == len(failover)
    assert sizes.running_tasks == len(running)


def test_per_job_reads_follow_every_change_of_the_queues(
    zk_client: KazooClient, election: LeaderElection, layout: Layout
) -> None:
    store = loaded(zk_client, election, layout)
    store.put_app(app())
    store.put_app(app("other"))
    a, b = job("a", misfire=True), job("b", shards=4, failover=True)
    c = job("c", daemon=True, shards=2)
    for j in (a, b, c):
        store.put_job(j)
    assert_consistent(store)

    store.fire([a.key, b.key], fire(0))
    store.fire([a.key], fire(1))
    store.record_trigger(b.key, "t1", fire(2))
    store.add_ready(c.key)
    assert store.ready_of(a.key) == store.ready()[a.key]
    assert store.ready()[a.key].count == 2
    assert_consistent(store)

    store.commit_launch([task(a, s, fire_time=fire(0)) for s in range(3)])
    store.commit_launch([task(b, s) for s in range(4)] + [task(c, s) for s in range(2)])
    assert_consistent(store)

    store.task_terminated(task(b, 1).task_id, FollowUp.FAILOVER)
    store.task_terminated(task(b, 3).task_id, FollowUp.RELAUNCH)
    store.task_terminated(task(c, 0).task_id, FollowUp.REQUEUE_DAEMON)
    store.update_task_states({task(a, 0).task_id: "TASK_RUNNING"})
    assert store.failover_of(b.key) == (1, 3)
    assert_consistent(store)

    # Fewer shards drop the failover entries beyond them; a new app moves the job.
    store.put_job(job("b", shards=2, appName="other", failover=True))
    assert store.failover_of(b.key) == (1,)
    assert [j.key for j in store.jobs_of_app("ns.other")] == [b.key]
    assert_consistent(store)

    relaunch = task(b, 1, LaunchSource.FAILOVER, tag="f")
    store.commit_launch([relaunch])
    assert store.failover_of(b.key) == ()
    assert_consistent(store)

    store.disable_job(a.key)
    store.enable_job(a.key)
    store.unschedule(c.key)
    assert_consistent(store)

    store.remove_job(a.key)
    assert store.ready_of(a.key) is None and store.running_of(a.key) == ()
    assert_consistent(store)

    store.remove_app("ns.other")
    assert store.jobs_of_app("ns.other") == []
    assert_consistent(store)


def test_per_job_reads_are_rebuilt_by_a_reload_and_a_re_read(
    zk_client: KazooClient, election: LeaderElection, layout: Layout
) -> None:
    store = loaded(zk_client, election, layout)
    store.put_app(app())
    jobs = [job(f"j{n}", misfire=True, failover=True, shards=2) for n in range(5)]
    for j in jobs:
        store.put_job(j)
    store.fire([j.key for j in jobs], fire(0))
    store.commit_launch([task(jobs[0], s) for s in range(2)])
    store.task_terminated(task(jobs[0], 1).task_id, FollowUp.FAILOVER)

    # A new leader reads it all back.
    again = loaded(zk_client, election, layout)
    assert again.ready_of(jobs[1].key) == store.ready_of(jobs[1].key)
    assert again.failover_of(jobs[0].key) == (1,)
    assert [t.shard for t in again.running_of(jobs[0].key)] == [0]
    assert len(again.jobs_of_app("ns.app")) == 5
    assert_consistent(again)

    # A writer the store missed: the refused transaction re-reads the view.
    zk_client.set(layout.ready(jobs[2].key), ReadyEntry(7).encode())
    with pytest.raises(StateConflict):
        again.commit_launch([task(jobs[2], s) for s in range(2)])
    ready = again.ready_of(jobs[2].key)
    assert ready is not None and ready.count == 7
    assert_consistent(again)
