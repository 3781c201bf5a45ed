"""The offer pool on the wire: bounded holding, declines, SUPPRESS when idle, REVIVE on work."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from devcluster.mesos import AgentSpec, LocalMesos
from devcluster.zookeeper import ZooKeeperServer
from tests.framework.harness import (
    NEVER,
    StartCluster,
    app_definition,
    build_app,
    finished,
    framework_settings,
    framework_state,
    running_framework,
    script_job,
    subscribed,
)
from tests.waiting import async_wait_for

pytestmark = pytest.mark.integration


def suppressed(cluster: LocalMesos) -> bool:
    framework_id = framework_state(cluster)["id"]
    return bool(cluster.run_on_loop(lambda: cluster.master.frameworks[framework_id].suppressed))


async def test_the_pool_suppresses_when_idle_and_revives_when_work_arrives(
    zookeeper: ZooKeeperServer, zk_namespace: str, tmp_path: Path, start_cluster: StartCluster
) -> None:
    cluster = start_cluster([AgentSpec(cpus=2, mem=1024)])
    settings = framework_settings(cluster.master_address)
    out = tmp_path / "out"
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as fw:
        await subscribed(fw)
        await async_wait_for(lambda: suppressed(cluster), what="SUPPRESS with nothing to run")
        await async_wait_for(lambda: cluster.outstanding_offers() == [], what="no offers held")
        assert fw.metric("cloudjob_offers_held") == 0

        await fw.service.put_app(app_definition(build_app(tmp_path)))
        job = script_job("work", out, cron=NEVER, shards=2)
        await fw.service.schedule(job)
        await fw.service.trigger(job.key, "1")
        await async_wait_for(lambda: len(finished(out)) == 2, what="the run after REVIVE")
        assert fw.metric("cloudjob_offer_revives_total") >= 1

        await async_wait_for(lambda: suppressed(cluster), what="SUPPRESS once idle again")
        assert fw.metric("cloudjob_offer_suppressions_total") >= 2
        await async_wait_for(lambda: cluster.outstanding_offers() == [], what="offers declined")


async def test_offers_are_never_held_past_the_bound_while_work_waits(
    zookeeper: ZooKeeperServer, zk_namespace: str, tmp_path: Path, start_cluster: StartCluster
) -> None:
    cluster = start_cluster([AgentSpec(cpus=1, mem=1024), AgentSpec(cpus=1, mem=1024)])
    hold = 0.5
    settings = framework_settings(
        cluster.master_address, offer_hold_seconds=hold, decline_refuse_seconds=0.2
    )
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as fw:
        await subscribed(fw)
        await fw.service.put_app(app_definition(build_app(tmp_path)))
        job = script_job("huge", tmp_path / "out", cron=NEVER, shards=1, cpuCount=8.0)
        await fw.service.schedule(job)
        await fw.service.trigger(job.key, "1")

        first_seen: dict[str, float] = {}
        longest = 0.0
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            now = time.monotonic()
            for offer_id in await asyncio.to_thread(cluster.outstanding_offers):
                first_seen.setdefault(offer_id, now)
                longest = max(longest, now - first_seen[offer_id])
            await asyncio.sleep(0.1)
        assert len(first_seen) >= 4, "declined offers come back (refuse filter expired)"
        # Generous margin for a loaded machine: the bound is 0.5 s.
        assert longest < hold + 2.0, f"an offer stayed outstanding for {longest:.2f}s"
        assert fw.metric("cloudjob_offers_declined_total", why="expired") >= 2
        assert not suppressed(cluster), "work is pending: never suppressed"
        assert fw.service.job_runtime(job.key).pending_runs == 1


async def test_rescinded_offers_are_forgotten_and_work_still_launches(
    zookeeper: ZooKeeperServer, zk_namespace: str, tmp_path: Path, start_cluster: StartCluster
) -> None:
    cluster = start_cluster([AgentSpec(cpus=2, mem=1024)])
    settings = framework_settings(cluster.master_address, launch_batch_seconds=0.5)
    out = tmp_path / "out"
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as fw:
        await subscribed(fw)
        await fw.service.put_app(app_definition(build_app(tmp_path)))
        job = script_job("rescinded", out, cron=NEVER, shards=1)
        await fw.service.schedule(job)
        await fw.service.trigger(job.key, "1")
        await async_wait_for(lambda: cluster.outstanding_offers(), what="an offer")
        await asyncio.to_thread(cluster.rescind_all_offers)
        await async_wait_for(lambda: len(finished(out)) == 1, what="the run on a later offer")
