"""A starved controller: fires it notices too late are skipped and counted, never run in
a burst, updates the agents resend meanwhile are handled once, and once it gets the CPU
back it launches on schedule again with the same subscription."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from devcluster.mesos import AgentSpec
from devcluster.zookeeper import ZooKeeperServer
from tests.framework.harness import (
    Framework,
    StartCluster,
    app_definition,
    build_app,
    framework_settings,
    running_framework,
    runs,
    script_job,
    subscribed,
)
from tests.waiting import async_wait_for

pytestmark = pytest.mark.integration

EVERY_SECOND = "* * * * * ?"
STARVED_SECONDS = 4.0


def hog_the_loop(seconds: float) -> None:
    """Keep the calling thread, the event loop's, busy: as a CPU-bound stretch of work
    on the loop (or a process that gets no CPU) would."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@asynccontextmanager
async def every_second(
    zookeeper: ZooKeeperServer,
    zk_namespace: str,
    tmp_path: Path,
    start_cluster: StartCluster,
    *,
    seconds: float = 0.0,
) -> AsyncIterator[tuple[Framework, Path]]:
    """A framework running one job every second, each run taking `seconds`; the
    framework and the directory the runs record themselves in."""
    cluster = start_cluster([AgentSpec(cpus=4, mem=4096)])
    settings = framework_settings(cluster.master_address, misfire_threshold_seconds=1.0)
    out = tmp_path / "out"
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as fw:
        await subscribed(fw)
        await fw.service.put_app(app_definition(build_app(tmp_path)))
        await fw.service.schedule(
            script_job("steady", out, cron=EVERY_SECOND, shards=1, seconds=seconds)
        )
        yield fw, out


async def runs_again_each_fire_once(out: Path, count: int) -> None:
    resumed = time.time()
    await async_wait_for(
        lambda: sum(run.started >= resumed for run in runs(out)) >= count,
        what="runs every second again",
    )
    fires = [run.fire_time for run in runs(out)]
    assert len(fires) == len(set(fires)), "a fire ran twice"


async def test_a_starved_loop_skips_and_counts_late_fires_then_runs_on_schedule(
    zookeeper: ZooKeeperServer, zk_namespace: str, tmp_path: Path, start_cluster: StartCluster
) -> None:
    async with every_second(zookeeper, zk_namespace, tmp_path, start_cluster) as (fw, out):
        await async_wait_for(lambda: len(runs(out)) >= 2, what="runs every second")

        # The fault: nothing else runs on the event loop for four seconds.
        hog_the_loop(STARVED_SECONDS)
        await async_wait_for(
            lambda: fw.metric("cloudjob_cron_misfires_total") >= 1,
            what="the fires noticed late skipped and counted",
        )
        await runs_again_each_fire_once(out, 3)
        assert fw.metric("cloudjob_mesos_subscriptions_total", kind="first") == 1
        assert fw.metric("cloudjob_mesos_subscriptions_total", kind="again") == 0
        assert fw.metric("cloudjob_launch_errors_total", stage="cycle") == 0


async def test_an_update_an_agent_sends_again_while_the_loop_is_starved_is_handled_once(
    zookeeper: ZooKeeperServer, zk_namespace: str, tmp_path: Path, start_cluster: StartCluster
) -> None:
    # The agents resend an unacknowledged update after 1 s, then 2 s. A run takes 1.5 s:
    # one running when the loop stops ends (and its TASK_FINISHED is resent) before the
    # loop runs again.
    async with every_second(zookeeper, zk_namespace, tmp_path, start_cluster, seconds=1.5) as (
        fw,
        out,
    ):
        await async_wait_for(
            lambda: any(run.ended is None for run in runs(out)), what="a run going on"
        )

        hog_the_loop(STARVED_SECONDS)
        await async_wait_for(
            lambda: fw.metric("cloudjob_status_updates_resent_total") >= 1,
            what="the copy of an update still waiting dropped and counted",
        )
        await runs_again_each_fire_once(out, 2)
        ended = sum(run.ended is not None for run in runs(out))
        assert fw.metric("cloudjob_task_outcomes_total", outcome="succeeded") <= ended
