"""Failed and lost shards fail over and run again once; a killed daemon comes back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from controller.mesos.tasks import TaskId
from controller.operations import EventKind
from controller.state.records import LaunchSource
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
    python_job,
    running_framework,
    runs,
    script_job,
    subscribed,
)
from tests.waiting import async_holds, async_wait_for

pytestmark = pytest.mark.integration


async def test_a_failed_shard_fails_over_and_runs_again_once(
    zookeeper: ZooKeeperServer, zk_namespace: str, tmp_path: Path, start_cluster: StartCluster
) -> None:
    cluster = start_cluster([AgentSpec(cpus=2, mem=1024)])
    settings = framework_settings(cluster.master_address)
    out = tmp_path / "out"
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as fw:
        await subscribed(fw)
        await fw.service.put_app(app_definition(build_app(tmp_path)))
        job = script_job("flaky", out, cron=NEVER, shards=2, failover=True)
        await fw.service.schedule(job)
        (out / "fail-next").touch()
        await fw.service.trigger(job.key, "1")

        await async_wait_for(lambda: len(finished(out)) == 2, what="both shards to succeed")
        # The files are written before the process exits: wait for its update too.
        await async_wait_for(
            lambda: (
                fw.service.job_runtime(job.key).succeeded == 2
                and fw.kinds(job.key).count(EventKind.SUCCEEDED) == 2
            ),
            what="the finished updates",
        )
        all_runs = runs(out)
        assert len(all_runs) == 3, "two shards, one of them once more"
        failed = [r for r in all_runs if r.ended is None]
        assert len(failed) == 1
        again = [r for r in all_runs if r.shard == failed[0].shard and r.ended is not None]
        assert len(again) == 1
        assert TaskId.parse(again[0].task_id).launch_type is LaunchSource.FAILOVER
        assert again[0].fire_time == failed[0].fire_time, "the rerun keeps the run's fire"
        kinds = fw.kinds(job.key)
        assert kinds.count(EventKind.FAILED) == 1 and kinds.count(EventKind.FAILOVER) == 1
        assert fw.metric("cloudjob_tasks_launched_total", source="FAILOVER") == 1
        runtime = fw.service.job_runtime(job.key)
        assert (runtime.succeeded, runtime.failed) == (2, 1)


async def test_a_failed_shard_without_failover_is_not_run_again(
    zookeeper: ZooKeeperServer, zk_namespace: str, tmp_path: Path, start_cluster: StartCluster
) -> None:
    cluster = start_cluster([AgentSpec(cpus=2, mem=1024)])
    settings = framework_settings(cluster.master_address)
    out = tmp_path / "out"
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as fw:
        await subscribed(fw)
        await fw.service.put_app(app_definition(build_app(tmp_path)))
        job = script_job("once", out, cron=NEVER, shards=1)
        await fw.service.schedule(job)
        (out / "fail-next").touch()
        await fw.service.trigger(job.key, "1")
        await async_wait_for(lambda: fw.service.job_runtime(job.key).failed == 1)
        await async_holds(lambda: len(runs(out)) == 1, seconds=1.0, what="one run only")
        assert fw.metric("cloudjob_tasks_launched_total", source="FAILOVER") == 0


async def test_a_lost_agent_fails_its_shard_over_to_another_agent_once(
    zookeeper: ZooKeeperServer, zk_namespace: str, tmp_path: Path, start_cluster: StartCluster
) -> None:
    cluster = start_cluster(
        [AgentSpec(cpus=1, mem=1024), AgentSpec(cpus=1, mem=1024)],
        agent_ping_timeout=0.3,
        max_agent_ping_timeouts=2,
    )
    settings = framework_settings(cluster.master_address, unreachable_grace_seconds=1.0)
    out = tmp_path / "out"
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as fw:
        await subscribed(fw)
        await fw.service.put_app(app_definition(build_app(tmp_path)))
        job = script_job("long", out, cron=NEVER, shards=1, seconds=60, failover=True)
        await fw.service.schedule(job)
        await fw.service.trigger(job.key, "1")
        first = await async_wait_for(lambda: runs(out), what="the shard to start")
        doomed = TaskId.parse(first[0].task_id).agent_id

        await asyncio.to_thread(cluster.kill_agent, doomed)
        second = await async_wait_for(
            lambda: len(runs(out)) == 2 and runs(out), timeout=30, what="the failover run"
        )
        rerun = next(r for r in second if r.task_id != first[0].task_id)
        rerun_id = TaskId.parse(rerun.task_id)
        assert rerun_id.launch_type is LaunchSource.FAILOVER
        assert rerun_id.agent_id != doomed
        await async_wait_for(
            lambda: EventKind.FAILOVER in fw.kinds(job.key), what="the failover event"
        )
        runtime = fw.service.job_runtime(job.key)
        assert [s.task_id for s in runtime.active_shards] == [rerun.task_id]
        await async_holds(
            lambda: len(runs(out)) == 2,
            seconds=1.5,
            what="the lost shard runs again exactly once",
        )
        await fw.service.unschedule(job.key)


async def test_a_lost_shard_found_again_after_its_failover_is_killed_so_one_copy_runs(
    zookeeper: ZooKeeperServer, zk_namespace: str, tmp_path: Path, start_cluster: StartCluster
) -> None:
    cluster = start_cluster(
        [AgentSpec(cpus=1, mem=1024), AgentSpec(cpus=1, mem=1024)],
        agent_ping_timeout=0.3,
        max_agent_ping_timeouts=2,
    )
    settings = framework_settings(cluster.master_address, unreachable_grace_seconds=1.0)
    out = tmp_path / "out"
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as fw:
        await subscribed(fw)
        await fw.service.put_app(app_definition(build_app(tmp_path)))
        job = script_job("long", out, cron=NEVER, shards=1, seconds=60, failover=True)
        await fw.service.schedule(job)
        await fw.service.trigger(job.key, "1")
        first = (await async_wait_for(lambda: runs(out), what="the shard to start"))[0]
        cut = TaskId.parse(first.task_id).agent_id

        await asyncio.to_thread(cluster.partition_agent, cut)
        await async_wait_for(lambda: len(runs(out)) == 2, timeout=30, what="the failover run")
        rerun = next(r for r in runs(out) if r.task_id != first.task_id)
        await asyncio.to_thread(cluster.heal_agent, cut)

        def state_of(task_id: str) -> str | None:
            for framework in cluster.state()["frameworks"]:
                for kind in ("tasks", "unreachable_tasks", "completed_tasks"):
                    for task in framework[kind]:
                        if task["id"] == task_id:
                            return str(task["state"])
            return None

        await async_wait_for(
            lambda: state_of(first.task_id) == "TASK_KILLED",
            timeout=30,
            what="the found task to be killed",
        )
        assert state_of(rerun.task_id) == "TASK_RUNNING"
        runtime = fw.service.job_runtime(job.key)
        assert [s.task_id for s in runtime.active_shards] == [rerun.task_id]
        await async_holds(lambda: len(runs(out)) == 2, seconds=1.0, what="two runs only")
        await fw.service.unschedule(job.key)


async def test_a_killed_daemon_task_goes_back_to_ready_and_is_relaunched(
    zookeeper: ZooKeeperServer, zk_namespace: str, tmp_path: Path, start_cluster: StartCluster
) -> None:
    cluster = start_cluster([AgentSpec(cpus=4, mem=4096)])
    settings = framework_settings(cluster.master_address)
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as fw:
        await subscribed(fw)
        await fw.service.put_app(demo_app_definition(build_demo_app(tmp_path)))
        job = python_job("resident", executionType="DAEMON")
        await fw.service.schedule(job)

        def running_task() -> str | None:
            shards = fw.service.job_runtime(job.key).active_shards
            if shards and shards[0].state == "TASK_RUNNING":
                return shards[0].task_id
            return None

        first = await async_wait_for(running_task, timeout=60, what="the daemon to run")
        # Killed from outside the framework (an operator, say): not on purpose.
        await fw.mesos.kill(first, TaskId.parse(first).agent_id)
        second = await async_wait_for(
            lambda: (task := running_task()) not in (None, first) and task,
            timeout=60,
            what="the daemon to be relaunched",
        )
        assert TaskId.parse(second).launch_type is LaunchSource.READY
        await async_wait_for(lambda: EventKind.KILLED in fw.kinds(job.key), what="the kill event")

        # Unscheduling kills it on purpose: it stays down.
        await fw.service.unschedule(job.key)
        await async_wait_for(
            lambda: not [t for t in cluster.state()["frameworks"][0]["tasks"] if t["id"] == second],
            timeout=30,
            what="the daemon task to be killed",
        )
        assert fw.service.job_runtime(job.key).active_shards == ()
        assert fw.service.view().state.ready() == {}


async def test_a_daemon_shard_killed_beside_running_shards_is_relaunched_alone(
    zookeeper: ZooKeeperServer, zk_namespace: str, tmp_path: Path, start_cluster: StartCluster
) -> None:
    cluster = start_cluster([AgentSpec(cpus=4, mem=4096)])
    settings = framework_settings(cluster.master_address)
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as fw:
        await subscribed(fw)
        await fw.service.put_app(demo_app_definition(build_demo_app(tmp_path)))
        job = python_job("pair", shards=2, executionType="DAEMON")
        await fw.service.schedule(job)

        def running() -> dict[int, str] | None:
            shards = fw.service.job_runtime(job.key).active_shards
            if len(shards) == 2 and all(s.state == "TASK_RUNNING" for s in shards):
                return {s.shard: s.task_id for s in shards}
            return None

        before = await async_wait_for(running, timeout=60, what="both shards to run")
        await fw.mesos.kill(before[1], TaskId.parse(before[1]).agent_id)
        after = await async_wait_for(
            lambda: (now := running()) is not None and now[1] != before[1] and now,
            timeout=60,
            what="shard 1 to be relaunched",
        )
        assert after[0] == before[0], "the other shard kept running"
        assert TaskId.parse(after[1]).launch_type is LaunchSource.FAILOVER
        await fw.service.unschedule(job.key)
