"""The state store against a real ZooKeeper: queues, launches, failover, reload, ACL."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError

from controller.definitions import AppDefinition, JobDefinition
from controller.operations import QueueFull
from controller.state import (
    FailoverOutcome,
    FollowUp,
    LaunchSource,
    Layout,
    LeaderElection,
    ReadyEntry,
    ReadyOutcome,
    RunningTask,
    StateConflict,
    StateStore,
    StateUnavailable,
    Term,
    TriggerOutcome,
    UnknownDefinition,
    open_client,
)
from controller.state.transactions import MAX_TX_OPS
from devcluster.zookeeper import ZooKeeperServer
from tests.tcp_proxy import TcpProxy
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def fire(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


class Leadership:
    def __init__(self) -> None:
        self.terms: list[Term] = []
        self.stops: list[str] = []

    def became_leader(self, term: Term) -> None:
        self.terms.append(term)

    def must_stop(self, reason: str) -> None:
        self.stops.append(reason)


def app(name: str = "app", **spec: Any) -> AppDefinition:
    return AppDefinition(
        namespace="ns",
        name=name,
        spec={"appURL": "http://repo/app.tar.gz", "bootstrapScript": "bin/start.sh", **spec},
    )


def job(name: str = "job", *, daemon: bool = False, shards: int = 3, **spec: Any) -> JobDefinition:
    return JobDefinition(
        namespace="ns",
        name=name,
        spec={
            "appName": "app",
            "cron": "0 * * * * ?",
            "shardingTotalCount": shards,
            "cpuCount": 0.1,
            "memoryMB": 32,
            "executionType": "DAEMON" if daemon else "TRANSIENT",
            "script": {"commandLine": "echo"},
            **spec,
        },
    )


def task(
    j: JobDefinition,
    shard: int,
    source: LaunchSource = LaunchSource.READY,
    fire_time: datetime | None = None,
    tag: str = "u",
) -> RunningTask:
    return RunningTask(
        task_id=f"{j.key}@-@{shard}@-@{source.value}@-@agent-1@-@{tag}{shard}",
        job_key=j.key,
        shard=shard,
        source=source,
        agent_id="agent-1",
        hostname="host-1",
        launched_at=fire(100),
        executor_id="ns.app@-@agent-1",
        fire_time=fire_time,
    )


@pytest.fixture
def layout(zk_namespace: str) -> Layout:
    return Layout(zk_namespace)


@pytest.fixture
def election(zk_client: KazooClient, layout: Layout) -> Iterator[LeaderElection]:
    elected = LeaderElection(zk_client, Leadership(), layout=layout, identity="test")
    elected.start()
    wait_for(lambda: elected.is_leading)
    yield elected
    elected.stop()


def new_store(
    zk_client: KazooClient, election: LeaderElection, layout: Layout, **kwargs: Any
) -> StateStore:
    store = StateStore.on_kazoo(zk_client, election, layout=layout, **kwargs)
    store.load()
    return store


@pytest.fixture
def store(zk_client: KazooClient, election: LeaderElection, layout: Layout) -> StateStore:
    store = new_store(zk_client, election, layout)
    store.put_app(app())
    return store


def node_json(client: KazooClient, path: str) -> Any:
    return json.loads(client.get(path)[0])


# ---------------------------------------------------------------- ready queue
def test_misfire_on_accumulates_in_zookeeper(
    store: StateStore, zk_client: KazooClient, layout: Layout
) -> None:
    j = job(misfire=True)
    store.put_job(j)
    outcomes = [store.add_ready(j.key, fire(n)).outcome for n in range(3)]
    assert outcomes == [ReadyOutcome.ADDED, ReadyOutcome.ACCUMULATED, ReadyOutcome.ACCUMULATED]
    stored = node_json(zk_client, layout.ready(j.key))
    assert stored["count"] == 3
    assert [datetime.fromisoformat(f) for f in stored["fires"]] == [fire(0), fire(1), fire(2)]


def test_a_trigger_adds_a_run_to_a_pending_one_with_misfire_off(
    store: StateStore, zk_client: KazooClient, layout: Layout
) -> None:
    j = job(misfire=False)
    store.put_job(j)
    store.add_ready(j.key, fire(0))
    record = store.record_trigger(j.key, "t1", fire(1))
    assert record.ready is not None and record.ready.outcome is ReadyOutcome.ACCUMULATED
    assert node_json(zk_client, layout.ready(j.key))["count"] == 2


# ---------------------------------------------------------------- triggers
def test_a_trigger_token_runs_once_with_its_ready_run_in_one_transaction(
    store: StateStore, zk_client: KazooClient, election: LeaderElection, layout: Layout
) -> None:
    j = job(misfire=False)
    store.put_job(j)

    before = store.counts.snapshot()
    first = store.record_trigger(j.key, "t1", fire(0))
    sent = store.counts.since(before)
    assert first.outcome is TriggerOutcome.RUN
    assert first.ready is not None and first.ready.outcome is ReadyOutcome.ADDED
    # check(fence) + the ready entry + the token: one request, one transaction
    assert (sent.requests, sent.transactions, sent.transaction_ops) == (1, 1, 3)
    assert node_json(zk_client, layout.ready(j.key))["count"] == 1
    assert zk_client.get(layout.trigger(j.key))[0] == b"t1"

    before = store.counts.snapshot()
    assert store.record_trigger(j.key, "t1", fire(1)).outcome is TriggerOutcome.ALREADY_HANDLED
    assert store.counts.since(before).requests == 0
    assert node_json(zk_client, layout.ready(j.key))["count"] == 1, "the same token ran once"

    assert store.record_trigger(j.key, "t2", fire(2)).outcome is TriggerOutcome.RUN
    assert node_json(zk_client, layout.ready(j.key))["count"] == 2, "a new token runs again"
    assert zk_client.get(layout.trigger(j.key))[0] == b"t2"

    # A new leader reads the handled token back: the same value does not run again.
    again = new_store(zk_client, election, layout)
    assert again.last_trigger(j.key) == "t2"
    assert again.record_trigger(j.key, "t2", fire(3)).outcome is TriggerOutcome.ALREADY_HANDLED
    assert node_json(zk_client, layout.ready(j.key))["count"] == 2


def test_a_refused_trigger_transaction_writes_neither_the_token_nor_the_run(
    store: StateStore, zk_client: KazooClient, layout: Layout
) -> None:
    j = job()
    store.put_job(j)
    store.record_trigger(j.key, "t1", fire(0))
    # The ready node changes behind the store's back: its compare-and-set fails, and the
    # token written in the same transaction must not be recorded either.
    zk_client.set(layout.ready(j.key), ReadyEntry(5).encode())
    with pytest.raises(StateConflict):
        store.record_trigger(j.key, "t2", fire(1))
    assert zk_client.get(layout.trigger(j.key))[0] == b"t1"
    assert store.last_trigger(j.key) == "t1"
    assert store.ready()[j.key] == ReadyEntry(5), "the view was re-read"
    assert store.record_trigger(j.key, "t2", fire(1)).outcome is TriggerOutcome.RUN
    assert node_json(zk_client, layout.ready(j.key))["count"] == 6


def test_a_daemon_trigger_records_only_the_token_and_refusals_record_nothing(
    zk_client: KazooClient, election: LeaderElection, layout: Layout
) -> None:
    store = new_store(zk_client, election, layout, queue_limit=1)
    store.put_app(app())
    d, off, other, full = (
        job("daemon", daemon=True),
        job("off", disabled=True),
        job("other"),
        job("full"),
    )
    for j in (d, off, other, full):
        store.put_job(j)
    before = store.counts.snapshot()
    record = store.record_trigger(d.key, "t1")
    assert (record.outcome, record.ready) == (TriggerOutcome.RUN, None)
    assert store.counts.since(before).transaction_ops == 2  # check(fence) + the token
    assert zk_client.get(layout.trigger(d.key))[0] == b"t1"
    assert zk_client.exists(layout.ready(d.key)) is None
    assert store.record_trigger(d.key, "t1").outcome is TriggerOutcome.ALREADY_HANDLED

    assert store.record_trigger(off.key, "t1").outcome is TriggerOutcome.REFUSED_DISABLED
    assert zk_client.exists(layout.trigger(off.key)) is None
    store.record_trigger(other.key, "t1", fire(0))  # the one ready entry the queue holds
    with pytest.raises(QueueFull):
        store.record_trigger(full.key, "t1", fire(0))
    assert zk_client.exists(layout.trigger(full.key)) is None
    with pytest.raises(UnknownDefinition):
        store.record_trigger("ns.nothing", "t1")
    with pytest.raises(ValueError, match="non-empty"):
        store.record_trigger(d.key, "")


def test_misfire_off_sets_to_one_and_config_update_resets(
    store: StateStore, zk_client: KazooClient, layout: Layout
) -> None:
    j = job(misfire=False)
    store.put_job(j)
    store.add_ready(j.key, fire(0))
    assert store.add_ready(j.key, fire(1)).outcome is ReadyOutcome.SET_TO_ONE
    assert node_json(zk_client, layout.ready(j.key))["count"] == 1

    accumulating = job(misfire=True)
    store.put_job(accumulating)
    for n in range(2, 6):
        store.add_ready(j.key, fire(n))
    assert node_json(zk_client, layout.ready(j.key))["count"] == 5
    store.put_job(job(misfire=False, description="misfire off again"))
    assert node_json(zk_client, layout.ready(j.key))["count"] == 1
    assert store.ready()[j.key].count == 1


def test_daemon_ready_rules(store: StateStore, zk_client: KazooClient, layout: Layout) -> None:
    d = job("daemon", daemon=True)
    store.put_job(d)
    assert store.add_ready(d.key).outcome is ReadyOutcome.ADDED
    assert store.add_ready(d.key).outcome is ReadyOutcome.ALREADY_READY
    assert node_json(zk_client, layout.ready(d.key))["count"] == 1
    store.commit_launch([task(d, s) for s in range(3)])
    assert zk_client.exists(layout.ready(d.key)) is None
    assert store.add_ready(d.key).outcome is ReadyOutcome.SKIPPED_RUNNING
    assert zk_client.exists(layout.ready(d.key)) is None

    store.unschedule(d.key)
    store.add_ready(d.key)
    store.put_job(job("daemon", daemon=True, shards=4))
    assert zk_client.exists(layout.ready(d.key)) is None, "a daemon update leaves ready"


def test_decrement_on_launch_then_delete_at_zero(
    store: StateStore, zk_client: KazooClient, layout: Layout
) -> None:
    j = job(misfire=True)
    store.put_job(j)
    store.fire([j.key], fire(0))
    store.fire([j.key], fire(1))
    before = zk_client.get(layout.ready(j.key))[1].version

    record = store.commit_launch([task(j, s, fire_time=fire(0)) for s in range(3)])
    assert record.consumed_fires == {j.key: fire(0)}
    data, stat = zk_client.get(layout.ready(j.key))
    assert json.loads(data)["count"] == 1
    assert stat.version == before + 1
    for shard in range(3):
        stored = node_json(zk_client, layout.running_task(j.key, shard))
        assert stored["task"] == task(j, shard).task_id
        assert stored["agent"] == "agent-1" and stored["host"] == "host-1"
        assert stored["executor"] == "ns.app@-@agent-1"
        assert datetime.fromisoformat(stored["fire"]) == fire(0)

    for shard in range(3):
        store.task_terminated(task(j, shard).task_id)
    assert zk_client.exists(layout.running_job(j.key)) is None
    store.commit_launch([task(j, s, fire_time=fire(1), tag="v") for s in range(3)])
    assert zk_client.exists(layout.ready(j.key)) is None
    assert j.key not in store.ready()


def test_ready_decrement_is_compare_and_set(
    store: StateStore, zk_client: KazooClient, layout: Layout
) -> None:
    j = job(misfire=True)
    store.put_job(j)
    store.add_ready(j.key, fire(0))
    store.add_ready(j.key, fire(1))
    zk_client.set(layout.ready(j.key), ReadyEntry(7).encode())  # a writer the store missed

    with pytest.raises(StateConflict):
        store.commit_launch([task(j, s) for s in range(3)])
    assert zk_client.exists(layout.running_job(j.key)) is None, "nothing half-written"
    assert store.ready()[j.key].count == 7, "the view was re-read"
    assert not store.running()


def test_queue_limit_refuses_new_entries(
    zk_client: KazooClient,
    election: LeaderElection,
    layout: Layout,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = new_store(zk_client, election, layout, queue_limit=3)
    store.put_app(app())
    jobs = [job(f"job-{n}", misfire=True) for n in range(4)]
    for j in jobs:
        store.put_job(j)
    for j in jobs[:3]:
        store.add_ready(j.key, fire(0))
    with caplog.at_level(logging.WARNING), pytest.raises(QueueFull) as refused:
        store.add_ready(jobs[3].key, fire(0))
    assert "ready queue" in str(refused.value) and "limit is 3" in str(refused.value)
    assert "ns.job-3" in caplog.text
    assert zk_client.exists(layout.ready(jobs[3].key)) is None
    assert store.add_ready(jobs[0].key, fire(1)).outcome is ReadyOutcome.ACCUMULATED

    outcomes = store.fire([j.key for j in jobs], fire(2))
    assert outcomes[jobs[3].key].outcome is ReadyOutcome.REFUSED_QUEUE_FULL
    assert outcomes[jobs[1].key].outcome is ReadyOutcome.ACCUMULATED


def test_disabled_jobs_and_apps_never_accumulate(
    store: StateStore, zk_client: KazooClient, layout: Layout
) -> None:
    j = job(misfire=True)
    store.put_job(j)
    store.add_ready(j.key, fire(0))
    store.disable_job(j.key)
    assert zk_client.exists(layout.disabled_job(j.key)) is not None
    assert zk_client.exists(layout.ready(j.key)) is None, "disabling drops pending runs"
    assert store.add_ready(j.key, fire(1)).outcome is ReadyOutcome.SKIPPED_DISABLED
    assert zk_client.exists(layout.ready(j.key)) is None
    store.enable_job(j.key)
    assert store.add_ready(j.key, fire(2)).entry == ReadyEntry(1, (fire(2),))

    store.put_app(app(disabled=True))
    assert store.is_app_disabled("ns.app") and store.is_disabled(j.key)
    assert zk_client.exists(layout.ready(j.key)) is None
    assert store.add_ready(j.key, fire(3)).outcome is ReadyOutcome.SKIPPED_DISABLED
    store.enable_app("ns.app")
    store.put_job(job(misfire=True, disabled=True))
    assert store.is_job_disabled(j.key)
    assert store.add_ready(j.key, fire(4)).outcome is ReadyOutcome.SKIPPED_DISABLED


def test_unknown_job_is_refused_by_name(store: StateStore) -> None:
    with pytest.raises(UnknownDefinition, match=r"ns\.nope"):
        store.add_ready("ns.nope")


# ---------------------------------------------------------------- round trips
@pytest.mark.parametrize("tasks", [1, 500])
def test_commit_launch_is_one_transaction_whatever_the_task_count(
    store: StateStore, zk_client: KazooClient, layout: Layout, tasks: int
) -> None:
    jobs = [job(f"job-{n}", shards=min(tasks, 50)) for n in range(max(1, tasks // 50))]
    for j in jobs:
        store.put_job(j)
    store.fire([j.key for j in jobs], fire(0))
    launches = [
        task(j, s, fire_time=fire(0)) for j in jobs for s in range(j.spec.sharding_total_count)
    ]
    assert len(launches) == tasks

    before = store.counts.snapshot()
    record = store.commit_launch(launches)
    sent = store.counts.since(before)

    assert (sent.requests, sent.round_trips, sent.transactions) == (1, 1, 1)
    assert record.transactions == 1
    assert len(record.recorded) == tasks
    assert len(zk_client.get_children(layout.running_root)) == len(jobs)
    assert not zk_client.get_children(layout.ready_root), "every ready run was consumed"


def test_a_launch_beyond_one_transaction_is_chunked(
    store: StateStore, zk_client: KazooClient, layout: Layout
) -> None:
    big = job("big", shards=2 * MAX_TX_OPS + 100)
    store.put_job(big)
    store.add_ready(big.key, fire(0))
    before = store.counts.snapshot()
    record = store.commit_launch([task(big, s) for s in range(big.spec.sharding_total_count)])
    sent = store.counts.since(before)
    assert sent.transactions == record.transactions == 3
    assert len(zk_client.get_children(layout.running_job(big.key))) == 2 * MAX_TX_OPS + 100
    assert zk_client.exists(layout.ready(big.key)) is None


# ---------------------------------------------------------------- failover rules
def failed(store: StateStore, j: JobDefinition, shard: int = 0) -> FailoverOutcome | None:
    launched = task(j, shard, tag=f"f{time.monotonic_ns()}-")
    if store.job(j.key) and not store.is_shard_running(j.key, shard):
        store.add_ready(j.key)
        store.commit_launch([launched])
    return store.task_terminated(launched.task_id, FollowUp.FAILOVER).failover


def test_failover_recorded_when_on(
    store: StateStore, zk_client: KazooClient, layout: Layout
) -> None:
    j = job(failover=True, shards=1)
    store.put_job(j)
    assert failed(store, j) is FailoverOutcome.RECORDED
    entry = store.failover()[f"{j.key}@-@0"]
    assert zk_client.exists(layout.failover_task(j.key, 0)) is not None
    assert node_json(zk_client, layout.failover_task(j.key, 0))["task"] == entry.task_id
    assert not store.is_job_running(j.key)


def test_failover_of_a_daemon_even_when_off(store: StateStore) -> None:
    d = job("daemon", daemon=True, failover=False, shards=1)
    store.put_job(d)
    assert failed(store, d) is FailoverOutcome.RECORDED


def test_no_failover_when_off(store: StateStore, zk_client: KazooClient, layout: Layout) -> None:
    j = job(failover=False, shards=1)
    store.put_job(j)
    assert failed(store, j) is FailoverOutcome.FAILOVER_OFF
    assert zk_client.exists(layout.failover_job(j.key)) is None


def test_a_task_mesos_never_ran_is_relaunched_even_with_failover_off(
    store: StateStore, zk_client: KazooClient, layout: Layout
) -> None:
    j = job(failover=False, shards=1)
    store.put_job(j)
    store.add_ready(j.key, fire(0))
    dropped = task(j, 0, fire_time=fire(0))
    store.commit_launch([dropped])
    outcome = store.task_terminated(dropped.task_id, FollowUp.RELAUNCH)
    assert outcome.failover is FailoverOutcome.RECORDED
    assert store.failover()[f"{j.key}@-@0"].fire_time == fire(0)
    assert zk_client.exists(layout.failover_task(j.key, 0)) is not None
    assert zk_client.exists(layout.running_job(j.key)) is None


def test_no_failover_without_job_config(store: StateStore) -> None:
    assert (
        store.task_terminated("ns.gone@-@0@-@READY@-@agent-1@-@u", FollowUp.FAILOVER).failover
        is FailoverOutcome.NO_CONFIG
    )


def test_no_failover_when_job_or_app_disabled(store: StateStore) -> None:
    j = job(failover=True, shards=1)
    store.put_job(j)
    store.add_ready(j.key)
    running = task(j, 0)
    store.commit_launch([running])
    store.disable_job(j.key)
    assert store.task_terminated(running.task_id, FollowUp.FAILOVER).failover is (
        FailoverOutcome.JOB_DISABLED
    )
    store.enable_job(j.key)
    store.disable_app("ns.app")
    assert store.add_failover(running.task_id) is FailoverOutcome.APP_DISABLED
    assert not store.failover()


def test_no_duplicate_failover_entry_nor_for_a_running_shard(store: StateStore) -> None:
    j = job(failover=True, shards=2)
    store.put_job(j)
    assert failed(store, j, 0) is FailoverOutcome.RECORDED
    assert store.add_failover(task(j, 0, tag="again").task_id) is (FailoverOutcome.ALREADY_RECORDED)
    store.add_ready(j.key)
    store.commit_launch([task(j, 1)])
    stale = task(j, 1, tag="older-run").task_id  # another task of a shard that runs
    assert store.task_terminated(stale, FollowUp.FAILOVER).failover is (
        FailoverOutcome.SHARD_RUNNING
    )
    assert store.is_shard_running(j.key, 1), "an unrelated task id never removes the shard"


def test_failover_queue_limit(
    zk_client: KazooClient, election: LeaderElection, layout: Layout
) -> None:
    store = new_store(zk_client, election, layout, queue_limit=1)
    store.put_app(app())
    first, second = job("a", failover=True, shards=1), job("b", failover=True, shards=1)
    store.put_job(first)
    store.put_job(second)
    assert store.add_failover(task(first, 0).task_id) is FailoverOutcome.RECORDED
    with pytest.raises(QueueFull, match="failover queue"):
        store.add_failover(task(second, 0).task_id)
    assert store.task_terminated(task(second, 0).task_id, FollowUp.FAILOVER).failover is (
        FailoverOutcome.QUEUE_FULL
    )


def test_failover_launch_consumes_its_entry_and_keeps_the_fire_time(
    store: StateStore, zk_client: KazooClient, layout: Layout
) -> None:
    j = job(failover=True, shards=2)
    store.put_job(j)
    store.add_ready(j.key, fire(0))
    store.commit_launch([task(j, s, fire_time=fire(0)) for s in range(2)])
    store.task_terminated(task(j, 1).task_id, FollowUp.FAILOVER)
    entry = store.failover()[f"{j.key}@-@1"]
    assert entry.fire_time == fire(0)
    rerun = task(j, 1, LaunchSource.FAILOVER, fire_time=entry.fire_time, tag="r")
    record = store.commit_launch([rerun])
    assert record.consumed_failover == (f"{j.key}@-@1",)
    assert zk_client.exists(layout.failover_job(j.key)) is None
    assert store.running_task(rerun.task_id) == rerun


def test_killed_daemon_goes_back_to_ready_when_its_last_task_ends(
    store: StateStore, zk_client: KazooClient, layout: Layout
) -> None:
    d = job("daemon", daemon=True, shards=2)
    store.put_job(d)
    store.add_ready(d.key)
    store.commit_launch([task(d, 0), task(d, 1)])
    first = store.task_terminated(task(d, 0).task_id, FollowUp.REQUEUE_DAEMON)
    assert first.ready is ReadyOutcome.SKIPPED_RUNNING
    last = store.task_terminated(task(d, 1).task_id, FollowUp.REQUEUE_DAEMON)
    assert last.ready is ReadyOutcome.ADDED
    assert node_json(zk_client, layout.ready(d.key))["count"] == 1


# ---------------------------------------------------------------- reload
def test_rebuild_after_restart_sees_the_same_state(
    store: StateStore, zk_client: KazooClient, election: LeaderElection, layout: Layout
) -> None:
    j = job(misfire=True, failover=True)
    d = job("daemon", daemon=True, shards=1)
    store.put_job(j)
    store.put_job(d)
    store.fire([j.key], fire(0))
    store.fire([j.key, d.key], fire(1))
    store.commit_launch([task(j, s, fire_time=fire(0)) for s in range(3)] + [task(d, 0)])
    store.task_terminated(task(j, 2).task_id, FollowUp.FAILOVER)
    store.update_task_state(task(j, 0).task_id, "TASK_RUNNING")
    store.save_framework_id("fw-1")
    store.disable_job(d.key)

    again = new_store(zk_client, election, layout)
    assert again.jobs() == store.jobs() and again.apps() == store.apps()
    assert again.ready() == store.ready()
    assert again.running() == store.running()
    assert again.failover() == store.failover()
    assert again.is_job_disabled(d.key)
    assert again.framework_id() == "fw-1"
    assert again.last_fired(j.key) == store.last_fired(j.key) is not None
    assert again.running_task(task(j, 0).task_id).state == "TASK_RUNNING"  # type: ignore[union-attr]


def test_rebuild_drops_entries_of_jobs_whose_config_is_gone(
    store: StateStore, zk_client: KazooClient, election: LeaderElection, layout: Layout
) -> None:
    kept, gone = job("kept", failover=True, misfire=True), job("gone", failover=True, misfire=True)
    for j in (kept, gone):
        store.put_job(j)
        store.add_ready(j.key, fire(0))
        store.add_ready(j.key, fire(1))
        store.commit_launch([task(j, 0), task(j, 1)])
        store.task_terminated(task(j, 1).task_id, FollowUp.FAILOVER)
        store.record_trigger(j.key, "t1", fire(2))
    zk_client.delete(layout.job(gone.key))  # the config vanishes behind the store's back
    zk_client.create(layout.ready("ns.orphan"), b"3")  # an original-style bare count
    zk_client.create(layout.disabled_job("ns.ghost"), b"ns.ghost")

    report = StateStore.on_kazoo(zk_client, election, layout=layout).load()
    assert report.jobs == 1
    expected = [
        layout.ready(gone.key),
        layout.running_task(gone.key, 0),
        layout.running_job(gone.key),
        layout.failover_task(gone.key, 1),
        layout.failover_job(gone.key),
        layout.trigger(gone.key),
        layout.fired(gone.key),
        layout.disabled_job("ns.ghost"),
        layout.ready("ns.orphan"),
    ]
    assert sorted(report.dropped) == sorted(expected)
    for path in expected:
        assert zk_client.exists(path) is None, path
    assert zk_client.exists(layout.running_task(kept.key, 0)) is not None
    assert zk_client.exists(layout.failover_task(kept.key, 1)) is not None
    assert zk_client.exists(layout.ready(kept.key)) is not None
    assert zk_client.exists(layout.trigger(kept.key)) is not None


def test_fewer_shards_drop_the_failover_entries_of_shards_the_job_no_longer_has(
    store: StateStore, zk_client: KazooClient, election: LeaderElection, layout: Layout
) -> None:
    j = job("shrinking", failover=True, shards=4)
    store.put_job(j)
    for shard in (1, 3):
        assert failed(store, j, shard) is FailoverOutcome.RECORDED
    store.put_job(job("shrinking", failover=True, shards=2))
    assert sorted(store.failover()) == [f"{j.key}@-@1"]
    assert zk_client.get_children(layout.failover_job(j.key)) == [f"{j.key}@-@1"]

    # An entry left beyond the count (written by an older controller) goes at load...
    assert failed(store, j, 0) is FailoverOutcome.RECORDED
    zk_client.create(layout.failover_task(j.key, 7), json.dumps({"task": "x"}).encode())
    report = StateStore.on_kazoo(zk_client, election, layout=layout).load()
    assert report.dropped == (layout.failover_task(j.key, 7),)
    # ...and the launch cycle removes whatever it finds stale.
    store.load()
    store.remove_failover([(j.key, 0), (j.key, 1)])
    assert store.failover() == {}
    assert zk_client.exists(layout.failover_job(j.key)) is None


def test_remove_job_and_app_delete_everything(
    store: StateStore, zk_client: KazooClient, layout: Layout
) -> None:
    a, b = job("a", failover=True), job("b")
    for j in (a, b):
        store.put_job(j)
        store.add_ready(j.key)
    store.commit_launch([task(a, 0)])
    store.task_terminated(task(a, 0).task_id, FollowUp.FAILOVER)
    store.commit_launch([task(b, 0)])
    store.record_trigger(a.key, "t1")
    store.record_trigger(b.key, "t1")
    store.disable_job(a.key)
    assert store.remove_job(a.key) == ()
    for path in (
        layout.job(a.key),
        layout.failover_job(a.key),
        layout.disabled_job(a.key),
        layout.trigger(a.key),
        layout.fired(a.key),
    ):
        assert zk_client.exists(path) is None
    dropped = store.remove_app("ns.app")
    assert [t.task_id for t in dropped] == [task(b, 0).task_id]
    assert zk_client.get_children(layout.jobs) == [] and zk_client.get_children(layout.apps) == []
    assert zk_client.get_children(layout.running_root) == []
    assert zk_client.get_children(layout.trigger_root) == []
    assert zk_client.get_children(layout.fired_root) == []


def test_framework_id_is_written_once(
    store: StateStore, zk_client: KazooClient, layout: Layout
) -> None:
    assert store.framework_id() is None
    assert store.save_framework_id("fw-1") == "fw-1"
    assert store.save_framework_id("fw-2") == "fw-1"
    assert zk_client.get(layout.framework_id)[0] == b"fw-1"
    # Only an id the master removed is forgotten, and only if it is the stored one.
    assert store.forget_framework_id("fw-2") is False
    assert store.forget_framework_id("fw-1") is True
    assert store.framework_id() is None and zk_client.exists(layout.framework_id) is None
    assert store.save_framework_id("fw-3") == "fw-3"


def test_adopting_a_found_task(store: StateStore, zk_client: KazooClient, layout: Layout) -> None:
    j = job()
    store.put_job(j)
    found = task(j, 2).with_state("TASK_RUNNING")
    assert store.record_running(found)
    assert not store.record_running(task(j, 2, tag="other"))
    assert node_json(zk_client, layout.running_task(j.key, 2))["state"] == "TASK_RUNNING"


# ---------------------------------------------------------------- ACL
def test_every_node_carries_the_digest_acl(zookeeper: ZooKeeperServer, layout: Layout) -> None:
    owner = open_client(zookeeper.hosts, auth="controller:s3cret", session_timeout=5)
    owner.start(timeout=10)
    stranger = KazooClient(hosts=zookeeper.hosts)
    stranger.start(timeout=10)
    election = LeaderElection(owner, Leadership(), layout=layout, auth="controller:s3cret")
    try:
        election.start()
        wait_for(lambda: election.is_leading)
        store = new_store(owner, election, layout, auth="controller:s3cret")
        store.put_app(app())
        j = job(failover=True)
        store.put_job(j)
        store.add_ready(j.key, fire(0))
        store.commit_launch([task(j, 0)])
        store.task_terminated(task(j, 0).task_id, FollowUp.FAILOVER)
        store.disable_job(j.key)
        store.save_framework_id("fw")

        paths = [
            layout.root,
            *layout.containers(),
            layout.job(j.key),
            layout.app("ns.app"),
            layout.failover_task(j.key, 0),
            layout.disabled_job(j.key),
            layout.framework_id,
            election.node or "",
        ]
        for path in paths:
            acls, _ = owner.get_acls(path)
            assert [(a.id.scheme, a.id.id.split(":")[0]) for a in acls] == [
                ("digest", "controller")
            ], path
            with pytest.raises(NoAuthError):
                stranger.get(path)
            with pytest.raises(NoAuthError):
                stranger.set(path, b"tampered")
        with pytest.raises(NoAuthError):
            stranger.create(f"{layout.ready_root}/intruder", b"1")
    finally:
        election.stop()
        for client in (owner, stranger):
            client.stop()
            client.close()


def test_malformed_auth_is_refused_with_the_expected_form(zookeeper: ZooKeeperServer) -> None:
    with pytest.raises(ValueError, match="user:password"):
        open_client(zookeeper.hosts, auth="no-colon")


# ---------------------------------------------------------------- lost replies
def test_a_commit_whose_reply_is_lost_is_re_read_before_any_retry(
    zookeeper: ZooKeeperServer, zk_client: KazooClient, layout: Layout
) -> None:
    proxy = TcpProxy("127.0.0.1", zookeeper.port)
    client = KazooClient(hosts=proxy.hosts, timeout=4.0)
    client.start(timeout=10)
    election = LeaderElection(client, Leadership(), layout=layout)
    try:
        election.start()
        wait_for(lambda: election.is_leading)
        store = new_store(client, election, layout)
        store.put_app(app())
        j = job(shards=2)
        store.put_job(j)
        store.add_ready(j.key, fire(0))
        launches = [task(j, s) for s in range(2)]

        proxy.deafen()  # ZooKeeper executes the transaction; its answer is lost
        outcome: list[BaseException | None] = []
        worker = threading.Thread(target=lambda: outcome.append(_call(store, launches)))
        worker.start()
        wait_for(lambda: not election.is_leading)  # the connection loss was noticed
        assert zk_client.exists(layout.running_task(j.key, 1)) is not None, "it did commit"
        proxy.restore()  # same session: the store re-reads instead of retrying blindly
        worker.join(30)

        assert isinstance(outcome[0], StateUnavailable)
        assert "re-read" in str(outcome[0])
        assert {t.task_id for t in launches} <= set(store.running())
        assert j.key not in store.ready()
    finally:
        election.stop()
        client.stop()
        client.close()
        proxy.close()


def _call(store: StateStore, launches: list[RunningTask]) -> BaseException | None:
    try:
        store.commit_launch(launches)
    except StateUnavailable as exc:
        return exc
    return None


# ---------------------------------------------------------------- last fire handled, catch-up
class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(fire(0) - timedelta(seconds=30))


@pytest.fixture
def timed(
    zk_client: KazooClient, election: LeaderElection, layout: Layout, clock: Clock
) -> StateStore:
    """A store whose clock the test sets (the time a job's cron starts afresh)."""
    store = new_store(zk_client, election, layout, clock=clock)
    store.put_app(app())
    return store


def fired_node(client: KazooClient, layout: Layout, job_key: str) -> datetime:
    return datetime.fromisoformat(client.get(layout.fired(job_key))[0].decode())


def test_a_fire_records_itself_as_the_last_handled_in_its_own_transaction(
    timed: StateStore, zk_client: KazooClient, layout: Layout, clock: Clock
) -> None:
    jobs = [job(f"j{n}") for n in range(3)]
    for j in jobs:
        timed.put_job(j)
    assert {timed.last_fired(j.key) for j in jobs} == {clock.now}
    before = timed.counts.snapshot()
    timed.fire([j.key for j in jobs], fire(0))
    sent = timed.counts.since(before)
    assert (sent.requests, sent.transactions) == (1, 1)
    assert sent.transaction_ops == 1 + 2 * len(jobs)  # the fence, then ready + last fire each
    for j in jobs:
        assert timed.last_fired(j.key) == fired_node(zk_client, layout, j.key) == fire(0)


def test_the_last_fire_handled_never_moves_back(
    timed: StateStore, zk_client: KazooClient, layout: Layout, clock: Clock
) -> None:
    j = job()
    timed.put_job(j)
    timed.fire([j.key], fire(2))
    timed.fire([j.key], fire(1))  # a fire time older than the recorded one (clock stepped)
    assert fired_node(zk_client, layout, j.key) == fire(2)
    assert timed.last_fired(j.key) == fire(2)


def test_a_cron_starting_afresh_resets_the_last_fire_handled(
    timed: StateStore, zk_client: KazooClient, layout: Layout, clock: Clock
) -> None:
    j = job(misfire=True)
    timed.put_job(j)
    timed.fire([j.key], fire(0))
    clock.now = fire(5)
    timed.put_job(job(misfire=True, description="edited"))  # same cron: nothing restarts
    assert timed.last_fired(j.key) == fire(0)
    timed.put_job(job(misfire=True, cron="30 * * * * ?"))
    assert timed.last_fired(j.key) == fired_node(zk_client, layout, j.key) == fire(5)
    timed.disable_job(j.key)
    clock.now = fire(9)
    timed.enable_job(j.key)
    assert timed.last_fired(j.key) == fire(9)
    timed.disable_app("ns.app")
    clock.now = fire(12)
    timed.put_app(app())  # spec.disabled false again
    assert timed.last_fired(j.key) == fired_node(zk_client, layout, j.key) == fire(12)
    daemon = job("daemon", daemon=True)
    timed.put_job(daemon)
    assert timed.last_fired(daemon.key) is None
    assert zk_client.exists(layout.fired(daemon.key)) is None


def test_a_catch_up_queues_missed_fires_per_misfire_and_records_the_newest(
    timed: StateStore, zk_client: KazooClient, layout: Layout
) -> None:
    on, off = job("on", misfire=True), job("off", misfire=False)
    daemon, disabled = job("daemon", daemon=True), job("disabled", disabled=True)
    for j in (on, off, daemon, disabled):
        timed.put_job(j)
    timed.fire([on.key, off.key], fire(0))
    missed = [fire(1), fire(2), fire(3)]
    before = timed.counts.snapshot()
    changes = timed.catch_up(
        {on.key: missed, off.key: missed[-1:], daemon.key: missed, disabled.key: missed}
    )
    assert timed.counts.since(before).transactions == 1
    assert set(changes) == {on.key, off.key}
    assert node_json(zk_client, layout.ready(on.key))["count"] == 4
    assert timed.ready()[on.key].fires == (fire(0), *missed)
    assert timed.ready()[off.key] == ReadyEntry(count=1, fires=(fire(3),))
    for j in (on, off):
        assert timed.last_fired(j.key) == fired_node(zk_client, layout, j.key) == fire(3)
    assert timed.ready().get(daemon.key) is None and timed.ready().get(disabled.key) is None


def test_a_catch_up_refused_by_a_full_queue_records_nothing(
    zk_client: KazooClient, election: LeaderElection, layout: Layout, clock: Clock
) -> None:
    store = new_store(zk_client, election, layout, clock=clock, queue_limit=1)
    store.put_app(app())
    first, second = job("first"), job("second")
    store.put_job(first)
    store.put_job(second)
    store.fire([first.key], fire(0))
    changes = store.catch_up({second.key: [fire(1)]})
    assert changes[second.key].outcome is ReadyOutcome.REFUSED_QUEUE_FULL
    assert store.last_fired(second.key) == clock.now
    assert zk_client.exists(layout.ready(second.key)) is None
