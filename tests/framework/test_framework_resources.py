"""Work that does not fit: all-or-nothing, a readable reason, launch when resources appear,
and the app executor's own resources counted so an agent is never over-committed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from controller.mesos.tasks import TaskId
from controller.operations import EventKind
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
    live_tasks,
    python_job,
    running_framework,
    script_job,
    subscribed,
)
from tests.waiting import async_wait_for

pytestmark = pytest.mark.integration


async def test_a_job_that_does_not_fit_waits_with_a_reason_and_runs_when_an_agent_joins(
    zookeeper: ZooKeeperServer, zk_namespace: str, tmp_path: Path, start_cluster: StartCluster
) -> None:
    cluster = start_cluster([AgentSpec(cpus=1.2, mem=1024)])
    settings = framework_settings(cluster.master_address, unplaceable_report_seconds=0.5)
    out = tmp_path / "out"
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as fw:
        await subscribed(fw)
        await fw.service.put_app(app_definition(build_app(tmp_path)))
        job = script_job("wide", out, cron=NEVER, shards=3)  # 3 x 0.5 cpus > 1.2
        await fw.service.schedule(job)
        await fw.service.trigger(job.key, "1")

        reason = await async_wait_for(
            lambda: fw.service.job_runtime(job.key).unplaceable_reason,
            what="an unplaceable reason",
        )
        assert "cannot place all 3 shards (only 2 fit), so none were launched" in reason
        assert "0.5 cpus and 32 MB memory per shard" in reason
        # The runtime event reaches listeners on the loop after the reason is recorded.
        await async_wait_for(
            lambda: EventKind.UNPLACEABLE in fw.kinds(job.key), what="the unplaceable event"
        )
        # The queue gauges are set at most every half second.
        await async_wait_for(
            lambda: fw.metric("cloudjob_unplaceable_jobs") == 1, what="the unplaceable gauge"
        )
        assert live_tasks(cluster) == [] and finished(out) == []
        assert fw.service.job_runtime(job.key).pending_runs == 1

        await asyncio.to_thread(cluster.add_agent, AgentSpec(cpus=2, mem=1024))
        done = await async_wait_for(
            lambda: len(finished(out)) == 3 and finished(out), what="the 3 shards to run"
        )
        assert sorted(r.shard for r in done) == [0, 1, 2]
        await async_wait_for(
            lambda: fw.service.job_runtime(job.key).unplaceable_reason is None,
            what="the reason to clear",
        )
        assert fw.service.job_runtime(job.key).pending_runs == 0


async def test_the_app_executor_is_counted_once_per_agent(
    zookeeper: ZooKeeperServer, zk_namespace: str, tmp_path: Path, start_cluster: StartCluster
) -> None:
    # The job's two tasks need 2 x 0.25 cpus; its app's executor 1 cpu more on an agent
    # where it is not running yet. 1.1 cpus hold both tasks, but not one task and the
    # executor; 1.6 cpus hold both tasks and one executor.
    cluster = start_cluster([AgentSpec(cpus=1.1, mem=2048)])
    settings = framework_settings(cluster.master_address, unplaceable_report_seconds=0.5)
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as fw:
        await subscribed(fw)
        demo = build_demo_app(tmp_path)
        await fw.service.put_app(demo_app_definition(demo, cpuCount=1.0, memoryMB=128))
        job = python_job("simple", shards=2)
        await fw.service.schedule(job)
        await fw.service.trigger(job.key, "1")

        reason = await async_wait_for(
            lambda: fw.service.job_runtime(job.key).unplaceable_reason,
            what="an unplaceable reason",
        )
        assert "plus 1 cpus and 128 MB for app ns.demo's executor" in reason
        assert "(only 0 fit)" in reason
        assert live_tasks(cluster) == []

        big = await asyncio.to_thread(cluster.add_agent, AgentSpec(cpus=1.6, mem=2048))
        await async_wait_for(
            lambda: fw.service.job_runtime(job.key).succeeded == 2,
            timeout=60,
            what="both shards to succeed in one executor",
        )
        state = cluster.state()["frameworks"][0]
        executors = state["executors"]
        assert [e["slave_id"] for e in executors] == [big.agent_id]
        agents = {TaskId.parse(t["id"]).agent_id for t in state["completed_tasks"]}
        assert agents == {big.agent_id}
        assert [e.agent_id for e in fw.service.app_executors("ns.demo")] == [big.agent_id]
