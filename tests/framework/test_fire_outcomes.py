"""What became of each run a cron fire asked for, counted by outcome
(`cloudjob_cron_fire_runs_total`), through the emulated Mesos over HTTP: runs planned
ahead and sent at their fire, runs queued behind a run still going, and fires merged
into a run already pending (misfire off)."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.mesos.engine import LAUNCHED_AT_FIRE
from controller.state.rules import ReadyOutcome
from devcluster.zookeeper import ZooKeeperServer
from tests.framework.harness import Framework, StartCluster, every_second
from tests.waiting import async_wait_for

pytestmark = pytest.mark.integration

RUNS = "cloudjob_cron_fire_runs_total"
OUTCOMES = (LAUNCHED_AT_FIRE, *(o.value for o in ReadyOutcome))


def by_outcome(fw: Framework) -> dict[str, float]:
    counted = {outcome: fw.metric(RUNS, outcome=outcome) for outcome in OUTCOMES}
    return {outcome: n for outcome, n in counted.items() if n}


async def test_an_idle_job_s_fires_are_counted_launched_at_the_fire(
    zookeeper: ZooKeeperServer, zk_namespace: str, tmp_path: Path, start_cluster: StartCluster
) -> None:
    async with every_second(zookeeper.hosts, zk_namespace, tmp_path, start_cluster) as (fw, _):
        await async_wait_for(
            lambda: fw.metric(RUNS, outcome=LAUNCHED_AT_FIRE) >= 3,
            what="runs planned ahead and sent at their fire",
        )
        counted = by_outcome(fw)
        # One job: each fire asked for one run, and each is counted once (on a busy
        # machine a fire may find the run before still pending: queued or merged).
        assert sum(counted.values()) == fw.metric("cloudjob_cron_fires_total"), counted


async def test_fires_of_a_job_still_running_are_counted_queued_then_merged(
    zookeeper: ZooKeeperServer, zk_namespace: str, tmp_path: Path, start_cluster: StartCluster
) -> None:
    # Each run takes 2.5 s and the job fires every second: the fire after a launch queues
    # a run behind it, and the fires after that merge into that pending run.
    async with every_second(
        zookeeper.hosts, zk_namespace, tmp_path, start_cluster, seconds=2.5
    ) as (fw, _):
        await async_wait_for(
            lambda: fw.metric(RUNS, outcome=ReadyOutcome.SET_TO_ONE.value) >= 2,
            what="fires merged into the run pending",
        )
        counted = by_outcome(fw)
        assert counted.get(ReadyOutcome.ADDED.value, 0) >= 1, counted
        assert sum(counted.values()) == fw.metric("cloudjob_cron_fires_total"), counted
