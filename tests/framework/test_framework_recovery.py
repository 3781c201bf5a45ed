"""A new controller takes over running tasks; reconciliation repairs what went missing."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient

from controller.mesos.calls import MesosCallError
from controller.mesos.driver import MesosDriver
from controller.mesos.tasks import TaskId
from controller.operations import EventKind
from controller.state import Layout
from controller.state.records import FailoverEntry, LaunchSource
from devcluster.mesos import AgentSpec
from devcluster.zookeeper import ZooKeeperServer
from tests.framework.harness import (
    NEVER,
    StartCluster,
    app_definition,
    build_app,
    build_demo_app,
    demo_app_definition,
    finished,
    framework_settings,
    framework_state,
    python_job,
    running_framework,
    runs,
    script_job,
    subscribed,
)
from tests.waiting import async_holds, async_wait_for

pytestmark = pytest.mark.integration


async def test_a_new_controller_takes_over_running_tasks_without_relaunching(
    zookeeper: ZooKeeperServer, zk_namespace: str, tmp_path: Path, start_cluster: StartCluster
) -> None:
    cluster = start_cluster([AgentSpec(cpus=4, mem=4096)])
    settings = framework_settings(cluster.master_address)
    out = tmp_path / "out"
    daemon = python_job("resident", shards=2, executionType="DAEMON")
    transient = script_job("batch", out, cron=NEVER, shards=1, seconds=4)
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as first:
        await subscribed(first)
        await first.service.put_app(demo_app_definition(build_demo_app(tmp_path)))
        await first.service.put_app(app_definition(build_app(tmp_path)))
        await first.service.schedule(daemon)
        await first.service.schedule(transient)
        await first.service.trigger(transient.key, "1")

        def daemon_tasks() -> list[str] | None:
            shards = first.service.job_runtime(daemon.key).active_shards
            if len(shards) == 2 and all(s.state == "TASK_RUNNING" for s in shards):
                return sorted(s.task_id for s in shards)
            return None

        before = await async_wait_for(daemon_tasks, timeout=60, what="the daemon to run")
        await async_wait_for(lambda: runs(out), what="the transient run to start")
        framework_id = framework_state(cluster)["id"]

    # The first controller is gone (its driver failed over, no teardown).
    assert framework_state(cluster)["connected"] is False
    assert len(framework_state(cluster)["tasks"]) == 3

    async with running_framework(zookeeper.hosts, zk_namespace, settings) as second:
        await subscribed(second)
        assert framework_state(cluster)["id"] == framework_id
        await async_wait_for(
            lambda: not second.service.view().reconciling, what="reconciliation to settle"
        )
        await async_wait_for(
            lambda: (
                len(finished(out)) == 1 and second.service.job_runtime(transient.key).succeeded == 1
            ),
            what="the transient run to finish under the new controller",
        )
        after = sorted(s.task_id for s in second.service.job_runtime(daemon.key).active_shards)
        assert after == before
        assert {t["id"] for t in framework_state(cluster)["tasks"]} == set(before)
        assert all(t["state"] == "TASK_RUNNING" for t in framework_state(cluster)["tasks"])
        assert second.metric("cloudjob_launch_cycles_total") >= 1
        assert second.metric("cloudjob_tasks_launched_total", source="READY") == 0
        assert second.metric("cloudjob_tasks_launched_total", source="FAILOVER") == 0
        assert len(runs(out)) == 1
        assert second.metric("cloudjob_reconciliation_runs_total", trigger="subscribed") == 1
        await second.service.unschedule(daemon.key)


async def test_a_dropped_launch_is_found_by_reconciliation_and_run_once(
    zookeeper: ZooKeeperServer, zk_namespace: str, tmp_path: Path, start_cluster: StartCluster
) -> None:
    cluster = start_cluster([AgentSpec(cpus=4, mem=4096)])
    settings = framework_settings(cluster.master_address, reconcile_interval_seconds=1.0)
    out = tmp_path / "out"
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as fw:
        await subscribed(fw)
        await fw.service.put_app(app_definition(build_app(tmp_path)))
        job = script_job("dropped", out, cron=NEVER, shards=2)  # failover off
        await fw.service.schedule(job)
        await asyncio.to_thread(cluster.drop_next_launch, f"{job.key}@-@1@-@")
        await fw.service.trigger(job.key, "1")

        done = await async_wait_for(
            lambda: len(finished(out)) == 2 and finished(out),
            timeout=30,
            what="the dropped shard to be found and run",
        )
        assert sorted(r.shard for r in done) == [0, 1]
        rerun = next(r for r in done if r.shard == 1)
        assert TaskId.parse(rerun.task_id).launch_type is LaunchSource.FAILOVER
        await async_holds(  # more reconciliation rounds: nothing runs twice
            lambda: Counter(r.shard for r in runs(out)),
            lambda shards: shards == {0: 1, 1: 1},
            seconds=2.5,
            what="one run per shard",
        )
        assert fw.metric("cloudjob_tasks_launched_total", source="FAILOVER") == 1


async def test_a_launch_lost_at_the_agent_times_out_and_its_shard_runs_once(
    zookeeper: ZooKeeperServer, zk_namespace: str, tmp_path: Path, start_cluster: StartCluster
) -> None:
    # The master keeps the lost task staging and reconciliation keeps saying so: only
    # the launch timeout ends it (docs/semantics.md#launches-that-never-get-going).
    cluster = start_cluster([AgentSpec(cpus=4, mem=4096)])
    settings = framework_settings(
        cluster.master_address, reconcile_interval_seconds=1.0, launch_timeout_seconds=4.0
    )
    out = tmp_path / "out"
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as fw:
        await subscribed(fw)
        await fw.service.put_app(app_definition(build_app(tmp_path)))
        job = script_job("stuck", out, cron=NEVER, shards=1)  # failover off
        await fw.service.schedule(job)
        # A first run starts the app's executor, so the relaunch is not slowed by it.
        await fw.service.trigger(job.key, "1")
        await async_wait_for(lambda: len(finished(out)) == 1, what="the first run")
        await async_wait_for(
            lambda: not fw.service.job_runtime(job.key).active_shards,
            what="the first run's end to be applied",
        )

        await asyncio.to_thread(cluster.drop_next_launch, f"{job.key}@-@0@-@", where="agent")
        await fw.service.trigger(job.key, "2")
        lost = await async_wait_for(
            lambda: [
                t["id"] for t in framework_state(cluster)["tasks"] if t["state"] == "TASK_STAGING"
            ],
            what="the master to hold the lost launch staging",
        )
        done = await async_wait_for(
            lambda: len(finished(out)) == 2 and finished(out),
            timeout=30,
            what="the shard to be launched again after the launch timeout",
        )
        rerun = done[-1]
        assert rerun.task_id != lost[0]
        assert TaskId.parse(rerun.task_id).launch_type is LaunchSource.FAILOVER
        assert fw.metric("cloudjob_task_kills_total", why="launch_timeout") == 1
        failed = [e for e in fw.events if e.task_id == lost[0]]
        assert [e.kind for e in failed] == [EventKind.FAILED, EventKind.FAILOVER]
        assert "launch timed out" in failed[0].message
        await async_holds(  # reconciliation rounds and the kill's answer: no second run
            lambda: len(runs(out)),
            lambda count: count == 2,
            seconds=2.5,
            what="one run per trigger",
        )
        assert fw.metric("cloudjob_tasks_launched_total", source="FAILOVER") == 1
        assert not fw.service.job_runtime(job.key).active_shards


async def test_a_task_mesos_runs_but_the_controller_does_not_know_is_killed(
    zookeeper: ZooKeeperServer,
    zk_namespace: str,
    zk_client: KazooClient,
    tmp_path: Path,
    start_cluster: StartCluster,
) -> None:
    cluster = start_cluster([AgentSpec(cpus=4, mem=4096)])
    settings = framework_settings(cluster.master_address)
    out = tmp_path / "out"
    job = script_job("orphaned", out, cron=NEVER, shards=1, seconds=60)
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as first:
        await subscribed(first)
        await first.service.put_app(app_definition(build_app(tmp_path)))
        await first.service.schedule(job)
        await first.service.trigger(job.key, "1")
        started = await async_wait_for(lambda: runs(out), what="the task to start")
        orphan = started[0].task_id

    # The controller's record of the task is lost while no controller runs.
    zk_client.delete(Layout(zk_namespace).running_job(job.key), recursive=True)

    async with running_framework(zookeeper.hosts, zk_namespace, settings) as second:
        await subscribed(second)

        def killed() -> bool:
            done = framework_state(cluster)["completed_tasks"]
            return any(t["id"] == orphan and t["state"] == "TASK_KILLED" for t in done)

        await async_wait_for(killed, timeout=30, what="the orphan to be killed")
        assert second.metric("cloudjob_task_kills_total", why="status") >= 1
        assert second.service.job_runtime(job.key).active_shards == ()


async def test_an_accept_that_fails_after_the_launch_was_recorded_is_reconciled_and_run_once(
    zookeeper: ZooKeeperServer, zk_namespace: str, tmp_path: Path, start_cluster: StartCluster
) -> None:
    # One agent: the offers of the failed ACCEPT are all there is to run the retry on.
    cluster = start_cluster([AgentSpec(cpus=2, mem=1024)])
    settings = framework_settings(cluster.master_address)
    out = tmp_path / "out"
    failed: list[list[str]] = []

    class FirstAcceptLost(MesosDriver):
        async def accept(
            self, offer_ids: Sequence[str], tasks: Sequence[dict[str, Any]], refuse: float
        ) -> None:
            # The HTTP call fails before the master sees it (a broken keep-alive
            # connection): the tasks are recorded as running but never launched.
            if not failed:
                failed.append([t["task_id"]["value"] for t in tasks])
                raise MesosCallError("ACCEPT failed: connection reset by peer")
            await super().accept(offer_ids, tasks, refuse)

    async with running_framework(
        zookeeper.hosts, zk_namespace, settings, driver=FirstAcceptLost
    ) as fw:
        await subscribed(fw)
        await fw.service.put_app(app_definition(build_app(tmp_path)))
        job = script_job("unsent", out, cron=NEVER, shards=2)  # failover off
        await fw.service.schedule(job)
        await fw.service.trigger(job.key, "1")

        done = await async_wait_for(
            lambda: len(finished(out)) == 2 and finished(out),
            timeout=30,
            what="the unsent shards to be found by reconciliation and run",
        )
        assert sorted(r.shard for r in done) == [0, 1]
        assert {TaskId.parse(r.task_id).launch_type for r in done} == {LaunchSource.FAILOVER}
        assert not {r.task_id for r in done} & set(failed[0])
        assert fw.metric("cloudjob_launch_errors_total", stage="accept") == 1
        await async_holds(
            lambda: Counter(r.shard for r in runs(out)),
            lambda shards: shards == {0: 1, 1: 1},
            seconds=1.5,
            what="nothing runs twice",
        )
        assert fw.service.view().state.running() == {}


async def test_a_framework_the_master_removed_is_registered_anew_and_its_work_relaunched(
    zookeeper: ZooKeeperServer, zk_namespace: str, tmp_path: Path, start_cluster: StartCluster
) -> None:
    cluster = start_cluster([AgentSpec(cpus=4, mem=4096)])
    # No controller for longer than the failover timeout: the master removes the
    # framework, kills its tasks, and refuses its id ("Framework has been removed").
    settings = framework_settings(cluster.master_address, failover_timeout_seconds=1.0)
    daemon = python_job("resident", executionType="DAEMON")
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as first:
        await subscribed(first)
        await first.service.put_app(demo_app_definition(build_demo_app(tmp_path)))
        await first.service.schedule(daemon)
        await async_wait_for(
            lambda: [
                s
                for s in first.service.job_runtime(daemon.key).active_shards
                if s.state == "TASK_RUNNING"
            ],
            timeout=60,
            what="the daemon to run",
        )
        old_id = framework_state(cluster)["id"]
    await async_wait_for(
        lambda: any(f["id"] == old_id for f in cluster.state()["completed_frameworks"]),
        what="the master to remove the framework",
    )

    async with running_framework(zookeeper.hosts, zk_namespace, settings) as second:
        await subscribed(second)
        new_id = framework_state(cluster)["id"]
        assert new_id != old_id
        await async_wait_for(
            lambda: second.service.view().state.framework_id() == new_id,
            what="the new framework id to be stored",
        )
        await async_wait_for(
            lambda: [t for t in framework_state(cluster)["tasks"] if t["state"] == "TASK_RUNNING"],
            timeout=60,
            what="the daemon to run again under the new framework",
        )
        assert second.metric("cloudjob_tasks_launched_total", source="FAILOVER") == 1
        await second.service.unschedule(daemon.key)


async def test_a_new_leader_launches_nothing_of_a_job_until_reconciliation_accounted_for_it(
    zookeeper: ZooKeeperServer,
    zk_namespace: str,
    zk_client: KazooClient,
    tmp_path: Path,
    start_cluster: StartCluster,
) -> None:
    cluster = start_cluster([AgentSpec(cpus=4, mem=4096)])
    settings = framework_settings(cluster.master_address)
    out = tmp_path / "out"
    job = script_job("held", out, cron=NEVER, shards=2, seconds=60)  # failover off
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as first:
        await subscribed(first)
        await first.service.put_app(app_definition(build_app(tmp_path)))
        await first.service.schedule(job)
        (out / "fail-next").touch()  # one of the two shards exits 3 at once
        await first.service.trigger(job.key, "1")
        await async_wait_for(
            lambda: (
                len(runs(out)) == 2
                and first.service.view().state.failover() == {}
                and len(first.service.job_runtime(job.key).active_shards) == 1
            ),
            what="one shard running, the other failed",
        )
        (alive,) = first.service.job_runtime(job.key).active_shards
    # While no controller runs, the failed shard is queued for failover.
    failed_shard = 1 - alive.shard
    entry = FailoverEntry(job.key, failed_shard, "earlier-task")
    path = Layout(zk_namespace).failover_task(job.key, failed_shard)
    await asyncio.to_thread(zk_client.create, path, entry.encode(), makepath=True)
    # Answers about the running shard come late: the new leader has to wait for them.
    await asyncio.to_thread(cluster.delay_status_updates, 2.0)

    async with running_framework(zookeeper.hosts, zk_namespace, settings) as second:
        await subscribed(second)

        def reconciled() -> bool:
            assert second.metric("cloudjob_tasks_launched_total", source="FAILOVER") == 0
            return not second.service.view().reconciling

        await async_wait_for(reconciled, what="reconciliation to end", timeout=60, interval=0.05)
        await async_wait_for(
            lambda: second.metric("cloudjob_tasks_launched_total", source="FAILOVER") == 1,
            what="the failed-over shard to launch once the job is accounted for",
        )
        await async_wait_for(lambda: len(runs(out)) == 3, what="the failed-over run")
        assert Counter(r.shard for r in runs(out))[failed_shard] == 2
        assert second.metric("cloudjob_tasks_launched_total", source="READY") == 0
