"""The framework and its master: FrameworkInfo on the wire, zk:// detection with a master
restart, the heartbeat watchdog, and settings that refuse a malformed master address."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import ValidationError

from controller.mesos.settings import ONE_WEEK, FrameworkSettings
from devcluster.mesos import AgentSpec, LocalMesos
from devcluster.zookeeper import ZooKeeperServer
from tests.framework.harness import (
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


async def test_subscribes_through_zookeeper_with_a_durable_identity_and_follows_a_new_master(
    zookeeper: ZooKeeperServer, zk_namespace: str, tmp_path: Path, start_cluster: StartCluster
) -> None:
    cluster = start_cluster(
        [AgentSpec(cpus=2, mem=1024)], zk_hosts=zookeeper.hosts, zk_path=f"/{zk_namespace}-mesos"
    )
    assert cluster.zk_url is not None
    settings = framework_settings(
        cluster.zk_url,
        role="jobs",
        principal="cloudjob",
        webui_url="http://127.0.0.1:8080/",
        framework_name="cloudjob-test",
    )
    out = tmp_path / "out"
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as fw:
        await subscribed(fw)
        info = framework_state(cluster)
        assert info["failover_timeout"] == ONE_WEEK
        assert info["checkpoint"] is True
        assert "PARTITION_AWARE" in info["capabilities"]
        assert (info["role"], info["principal"], info["name"]) == (
            "jobs",
            "cloudjob",
            "cloudjob-test",
        )
        assert info["webui_url"] == "http://127.0.0.1:8080/"
        assert info["hostname"] == "127.0.0.1"
        framework_id = info["id"]
        assert fw.service.view().state.framework_id() == framework_id

        await fw.service.put_app(app_definition(build_app(tmp_path)))
        job = script_job("steady", out, cron="* * * * * ?", shards=1)
        await fw.service.schedule(job)
        await async_wait_for(lambda: finished(out), what="a run before the master restart")

        await asyncio.to_thread(cluster.restart_master)
        await async_wait_for(
            lambda: fw.metric("cloudjob_mesos_subscriptions_total", kind="again") >= 1,
            timeout=30,
            what="a resubscription to the new master",
        )
        assert framework_state(cluster)["id"] == framework_id
        assert fw.metric("cloudjob_reconciliation_runs_total", trigger="subscribed") >= 2
        count = len(finished(out))
        await async_wait_for(lambda: len(finished(out)) > count, what="runs after the restart")
        await fw.service.unschedule(job.key)


async def test_silent_master_stream_is_replaced_by_a_new_subscription(
    zookeeper: ZooKeeperServer, zk_namespace: str, start_cluster: StartCluster
) -> None:
    cluster = start_cluster([AgentSpec(cpus=1, mem=512)])
    settings = framework_settings(cluster.master_address, heartbeat_missed_limit=2)
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as fw:
        await subscribed(fw)
        await async_wait_for(lambda: cluster.outstanding_offers() == [], what="an idle stream")
        framework_id = framework_state(cluster)["id"]
        silence(cluster, framework_id)
        await async_wait_for(
            lambda: fw.metric("cloudjob_mesos_resubscribes_total", reason="heartbeat") == 1,
            timeout=20,
            what="the watchdog to resubscribe",
        )
        await async_wait_for(
            lambda: fw.metric("cloudjob_mesos_subscriptions_total", kind="again") == 1,
            timeout=20,
            what="the new subscription",
        )
        assert framework_state(cluster)["id"] == framework_id
        assert framework_state(cluster)["connected"] is True


def silence(cluster: LocalMesos, framework_id: str) -> None:
    """Stop the master's heartbeats on the framework's stream, leaving it open."""

    def stop() -> None:
        framework = cluster.master.frameworks[framework_id]
        assert framework.heartbeat is not None
        framework.heartbeat.cancel()

    cluster.run_on_loop(stop)


@pytest.mark.parametrize(
    ("master", "message"),
    [
        ("localhost", "must be 'host:port'"),
        ("zk://127.0.0.1:2181", "zk://host:port"),
        ("127.0.0.1:http", "must be 'host:port'"),
    ],
)
def test_a_malformed_master_address_is_refused_with_the_fix(master: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        FrameworkSettings(master=master)


def test_framework_info_defaults() -> None:
    info = FrameworkSettings(master="127.0.0.1:5050").framework_info("fw-1")
    assert info["failover_timeout"] == ONE_WEEK
    assert info["checkpoint"] is True
    assert info["capabilities"] == [{"type": "PARTITION_AWARE"}]
    assert info["id"] == {"value": "fw-1"}
    assert "id" not in FrameworkSettings(master="127.0.0.1:5050").framework_info(None)
