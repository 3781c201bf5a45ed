"""Launching transient script jobs on the local Mesos: fires, placement, ACCEPTs, runs."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from controller.dirty import ObjectKind
from controller.mesos.tasks import TaskId
from controller.operations import EventKind
from controller.state import Layout
from controller.state.transactions import Op
from devcluster.mesos import AgentSpec, LocalMesos
from devcluster.zookeeper import ZooKeeperServer
from tests.framework.harness import (
    NEVER,
    StartCluster,
    app_definition,
    build_app,
    finished,
    framework_settings,
    running_framework,
    runs,
    script_job,
    subscribed,
)
from tests.waiting import async_wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def two_agents(start_cluster: StartCluster) -> LocalMesos:
    return start_cluster([AgentSpec(cpus=2, mem=1024), AgentSpec(cpus=2, mem=1024)])


async def test_three_shards_fire_launch_one_accept_per_agent_and_finish(
    zookeeper: ZooKeeperServer, zk_namespace: str, two_agents: LocalMesos, tmp_path: Path
) -> None:
    settings = framework_settings(two_agents.master_address)
    out = tmp_path / "out"
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as fw:
        await subscribed(fw)
        await fw.service.put_app(app_definition(build_app(tmp_path)))
        job = script_job("report", out, cron="*/3 * * * * ?", placementStrategy="spread")
        await fw.service.schedule(job)

        first = await async_wait_for(
            lambda: len(finished(out)) >= 3 and finished(out), what="the first run to finish"
        )
        # Read the counters before the next fire (3 s later) can launch again.
        accepts = fw.metric("cloudjob_accept_calls_total")
        launched = fw.metric("cloudjob_tasks_launched_total", source="READY")
        agents = {TaskId.parse(r.task_id).agent_id for r in first[:3]}
        assert launched == 3
        assert len(agents) == 2, "spread puts the 3 shards on both agents"
        assert accepts == len(agents), "one ACCEPT per agent"
        assert sorted(r.shard for r in first[:3]) == [0, 1, 2]

        # More fires: every fire is one run of exactly the 3 shards (ready consumed once).
        await async_wait_for(lambda: len(finished(out)) >= 9, timeout=30, what="three runs")
        by_fire: dict[str | None, list[int]] = defaultdict(list)
        for run in runs(out):
            by_fire[run.fire_time].append(run.shard)
        assert None not in by_fire
        complete = [shards for shards in by_fire.values() if len(shards) == 3]
        assert len(complete) >= 3
        for shards in by_fire.values():
            assert sorted(shards) == list(range(len(shards))), by_fire
        assert all(len(shards) <= 3 for shards in by_fire.values())

        await async_wait_for(lambda: fw.service.job_runtime(job.key).succeeded >= 9)
        runtime = fw.service.job_runtime(job.key)
        assert runtime.scheduled and runtime.failed == 0
        assert runtime.next_fire_time is not None and runtime.last_fire_time is not None
        assert EventKind.LAUNCHED in fw.kinds(job.key)
        assert EventKind.SUCCEEDED in fw.kinds(job.key)
        assert fw.metric("cloudjob_fire_to_accept_seconds_count") >= 9
        # Nothing drains the dirty queue here: the job and its app (executors) wait in it.
        assert (ObjectKind.JOB, job.key) in fw.service.dirty
        assert (ObjectKind.APP, job.app_key) in fw.service.dirty

        await fw.service.unschedule(job.key)
        assert not fw.service.job_runtime(job.key).scheduled


async def test_misfire_accumulates_fires_during_a_long_run_and_runs_them_later(
    zookeeper: ZooKeeperServer, zk_namespace: str, two_agents: LocalMesos, tmp_path: Path
) -> None:
    settings = framework_settings(two_agents.master_address)
    out = tmp_path / "out"
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as fw:
        await subscribed(fw)
        await fw.service.put_app(app_definition(build_app(tmp_path)))
        job = script_job("slow", out, cron="* * * * * ?", shards=1, seconds=3.5, misfire=True)
        await fw.service.schedule(job)

        pending = await async_wait_for(
            lambda: (
                (rt := fw.service.job_runtime(job.key)).pending_runs >= 2
                and rt.active_shards
                and rt.pending_runs
            ),
            what="fires to accumulate while the first run is running",
        )
        assert pending >= 2
        await async_wait_for(lambda: len(runs(out)) >= 2, timeout=20, what="a second run")
        first, second = sorted(runs(out), key=lambda r: r.started)[:2]
        assert first.ended is not None and second.started >= first.ended
        # The second run belongs to a fire that happened while the first was running.
        assert second.fire_time is not None and first.fire_time is not None
        assert second.fire_time > first.fire_time
        await fw.service.unschedule(job.key)


async def test_a_job_parameter_cannot_inject_shell(
    zookeeper: ZooKeeperServer, zk_namespace: str, two_agents: LocalMesos, tmp_path: Path
) -> None:
    settings = framework_settings(two_agents.master_address)
    out = tmp_path / "out"
    pwned = tmp_path / "pwned"
    parameter = f"x; touch {pwned}"
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as fw:
        await subscribed(fw)
        await fw.service.put_app(app_definition(build_app(tmp_path)))
        job = script_job(
            "inject",
            out,
            cron="*/2 * * * * ?",
            shards=2,
            jobParameter=parameter,
            shardingItemParameters={"1": f"$(touch {pwned})`touch {pwned}`"},
        )
        await fw.service.schedule(job)
        done = await async_wait_for(lambda: len(finished(out)) >= 2 and finished(out))
        await fw.service.unschedule(job.key)
    for run in done:
        assert run.argc == 3, "out dir, seconds, and the context as one argument"
        assert run.context["job_parameter"] == parameter
    shard_one = next(r for r in done if r.shard == 1)
    assert shard_one.context["sharding_parameter"] == f"$(touch {pwned})`touch {pwned}`"
    assert not pwned.exists()
    assert Counter(r.shard for r in done).keys() <= {0, 1}


async def test_duplicated_and_reordered_updates_change_nothing_twice(
    zookeeper: ZooKeeperServer, zk_namespace: str, two_agents: LocalMesos, tmp_path: Path
) -> None:
    two_agents.duplicate_status_updates(True)
    two_agents.reorder_status_updates(True)
    settings = framework_settings(two_agents.master_address)
    out = tmp_path / "out"
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as fw:
        await subscribed(fw)
        await fw.service.put_app(app_definition(build_app(tmp_path)))
        job = script_job("noisy", out, cron=NEVER, shards=3, failover=True)
        await fw.service.schedule(job)
        (out / "fail-next").touch()
        for n in range(2):
            before = len(runs(out))
            await fw.service.trigger(job.key, f"run-{n}")
            await async_wait_for(lambda start=before: len(runs(out)) >= start + 3, what="a run")
            await async_wait_for(lambda: not fw.service.job_runtime(job.key).active_shards)
        await async_wait_for(
            lambda: fw.service.job_runtime(job.key).succeeded == 6,
            what="six successful shard runs",
        )
        runtime = fw.service.job_runtime(job.key)
        assert (runtime.succeeded, runtime.failed) == (6, 1)
        assert len(runs(out)) == 7, "6 shard runs and the one failed shard run once more"
        assert fw.metric("cloudjob_tasks_launched_total", source="FAILOVER") == 1
        # Events reach the test's collector through a queue, a moment after the counters.
        await async_wait_for(
            lambda: fw.kinds(job.key).count(EventKind.SUCCEEDED) >= 6, what="six events"
        )
        assert fw.kinds(job.key).count(EventKind.SUCCEEDED) == 6


async def test_status_updates_arriving_together_are_persisted_in_one_transaction(
    zookeeper: ZooKeeperServer, zk_namespace: str, tmp_path: Path, start_cluster: StartCluster
) -> None:
    cluster = start_cluster([AgentSpec(cpus=4, mem=4096)])
    settings = framework_settings(cluster.master_address, status_batch_seconds=0.5)
    out = tmp_path / "out"
    shards = 8
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as fw:
        await subscribed(fw)
        await fw.service.put_app(app_definition(build_app(tmp_path)))
        job = script_job("batched", out, cron=NEVER, shards=shards, seconds=60)
        await fw.service.schedule(job)
        store = fw.service.view().state
        before = store.counts.snapshot()
        await fw.service.trigger(job.key, "1")

        def all_running() -> bool:
            tasks = store.running_of(job.key)
            return len(tasks) == shards and all(t.state == "TASK_RUNNING" for t in tasks)

        await async_wait_for(all_running, what="every shard to be recorded as running")
        updates = fw.metric("cloudjob_task_states_total", state="TASK_RUNNING") + fw.metric(
            "cloudjob_task_states_total", state="TASK_STARTING"
        )
        assert updates >= shards
        # One transaction for the trigger, one for the launch, and the updates that
        # arrived within each batching window together: far fewer than one each.
        transactions = store.counts.since(before).transactions
        assert transactions - 2 <= shards // 2, (transactions, updates)
        await fw.service.unschedule(job.key)


async def test_a_deleted_job_leaves_no_statistics_behind(
    zookeeper: ZooKeeperServer, zk_namespace: str, two_agents: LocalMesos, tmp_path: Path
) -> None:
    settings = framework_settings(two_agents.master_address)
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as fw:
        await subscribed(fw)
        await fw.service.put_app(app_definition(build_app(tmp_path)))
        for name in ("kept", "churned"):
            job = script_job(name, tmp_path / name, cron=NEVER, shards=1)
            await fw.service.schedule(job)
            await fw.service.trigger(job.key, "1")
        for key in ("ns.kept", "ns.churned"):
            await async_wait_for(lambda k=key: fw.service.job_runtime(k).succeeded == 1)
        # Jobs come and go by the thousand: what is known of a deleted one is dropped,
        # and a new job of the same name starts from nothing.
        await fw.service.unschedule("ns.churned")
        assert fw.service.job_runtime("ns.churned").succeeded == 0
        assert fw.service.job_runtime("ns.churned").last_fire_time is None
        assert fw.service.job_runtime("ns.kept").succeeded == 1


async def test_a_batch_of_updates_that_cannot_be_persisted_is_not_acknowledged_and_retried(
    zookeeper: ZooKeeperServer,
    zk_namespace: str,
    zk_client: KazooClient,
    tmp_path: Path,
    start_cluster: StartCluster,
) -> None:
    cluster = start_cluster([AgentSpec(cpus=4, mem=4096)])
    settings = framework_settings(cluster.master_address, status_batch_seconds=0.5)
    out = tmp_path / "out"
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as fw:
        await subscribed(fw)
        await fw.service.put_app(app_definition(build_app(tmp_path)))
        job = script_job("refused", out, cron=NEVER, shards=3, seconds=60)
        await fw.service.schedule(job)
        store = fw.service.view().state
        real_update = store.update_task_states
        vanished: list[str] = []

        def lose_one_record_first(states: Mapping[str, str], also: Sequence[Op] = ()) -> int:
            running = [t for t, s in states.items() if s == "TASK_RUNNING"]
            if not vanished and len(running) >= 2:
                # Someone deletes one running entry behind the leader's back: the
                # transaction of this batch of RUNNING updates is refused.
                task = store.running_task(running[0])
                assert task is not None
                zk_client.delete(Layout(zk_namespace).running_task(task.job_key, task.shard))
                vanished.append(task.task_id)
            return real_update(states, also)

        store.update_task_states = lose_one_record_first  # type: ignore[method-assign]
        await fw.service.trigger(job.key, "1")

        def others_running() -> bool:
            tasks = store.running_of(job.key)
            return len(tasks) == 2 and all(t.state == "TASK_RUNNING" for t in tasks)

        # Nothing of the refused batch was acknowledged: Mesos resends those updates
        # and they are persisted then, not taken for duplicates already handled.
        await async_wait_for(others_running, what="the other shards' states to be persisted")
        assert vanished and vanished[0] not in store.running()
        await fw.service.unschedule(job.key)
