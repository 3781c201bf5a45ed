"""A starved controller: fires it notices too late are skipped and counted, never run in
a burst, updates the agents resend meanwhile are handled once, and once it gets the CPU
back it launches on schedule again with the same subscription."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from devcluster.zookeeper import ZooKeeperServer
from tests.framework.harness import StartCluster, every_second, runs
from tests.waiting import async_wait_for

pytestmark = pytest.mark.integration

STARVED_SECONDS = 4.0


def hog_the_loop(seconds: float) -> None:
    """Keep the calling thread, the event loop's, busy: as a CPU-bound stretch of work
    on the loop (or a process that gets no CPU) would."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


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
    async with every_second(zookeeper.hosts, zk_namespace, tmp_path, start_cluster) as (fw, out):
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
    async with every_second(
        zookeeper.hosts, zk_namespace, tmp_path, start_cluster, seconds=1.5
    ) as (
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
