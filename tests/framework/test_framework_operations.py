"""The scheduling operations on a live cluster: trigger (daemon by framework message),
disable / enable of jobs and apps, reschedule, and app removal stopping its executors."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from controller.mesos.driver import MesosDriver
from controller.mesos.events import Disconnected, MasterError, Subscribed
from controller.mesos.tasks import TaskId
from controller.operations import SchedulingError, TriggerResult
from controller.producer import TimerKey
from devcluster.mesos import AgentSpec, LocalMesos
from devcluster.zookeeper import ZooKeeperServer
from tests.framework.harness import (
    NEVER,
    Framework,
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
from tests.tcp_proxy import TcpProxy
from tests.waiting import async_holds, async_wait_for

pytestmark = pytest.mark.integration


def running_daemon(fw: Framework, job_key: str) -> list[str] | None:
    shards = fw.service.job_runtime(job_key).active_shards
    if shards and all(s.state == "TASK_RUNNING" for s in shards):
        return sorted(s.task_id for s in shards)
    return None


def live_ids(cluster: LocalMesos) -> set[str]:
    return {t["id"] for t in framework_state(cluster)["tasks"]}


@pytest.fixture
def cluster(start_cluster: StartCluster) -> LocalMesos:
    return start_cluster([AgentSpec(cpus=4, mem=4096)])


async def test_triggering_a_daemon_runs_it_once_per_token(
    zookeeper: ZooKeeperServer, zk_namespace: str, cluster: LocalMesos, tmp_path: Path
) -> None:
    settings = framework_settings(cluster.master_address)
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as fw:
        await subscribed(fw)
        await fw.service.put_app(demo_app_definition(build_demo_app(tmp_path)))
        job = python_job("resident", executionType="DAEMON")  # its cron never fires
        await fw.service.schedule(job)
        with pytest.raises(SchedulingError, match="no running task"):
            await fw.service.trigger(job.key, "early")
        assert fw.service.view().state.last_trigger(job.key) is None, "retried later, not lost"
        await async_wait_for(lambda: running_daemon(fw, job.key), timeout=60, what="the daemon")
        assert fw.service.job_runtime(job.key).succeeded == 0

        assert await fw.service.trigger(job.key, "early") is TriggerResult.RAN
        await async_wait_for(lambda: fw.service.job_runtime(job.key).succeeded == 1, timeout=30)
        assert await fw.service.trigger(job.key, "early") is TriggerResult.ALREADY_HANDLED
        assert await fw.service.trigger(job.key, "second") is TriggerResult.RAN
        await async_wait_for(lambda: fw.service.job_runtime(job.key).succeeded == 2, timeout=30)
        await async_holds(
            lambda: fw.service.job_runtime(job.key).succeeded == 2,
            seconds=1.0,
            what="each token ran once",
        )
        executors = fw.service.app_executors("ns.demo")
        assert len(executors) == 1 and executors[0].tasks == 1


async def test_a_trigger_a_leader_ran_is_not_run_again_by_the_next_leader(
    zookeeper: ZooKeeperServer, zk_namespace: str, cluster: LocalMesos, tmp_path: Path
) -> None:
    # The first leader runs each token and stops before anyone records it elsewhere (as
    # the Kubernetes side's status): the next leader, asked for the same tokens, runs none.
    settings = framework_settings(cluster.master_address)
    out = tmp_path / "out"
    tarball = build_demo_app(tmp_path)
    batch = script_job("batch", out, cron=NEVER, shards=2)
    resident = python_job("resident", executionType="DAEMON")
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as first:
        await subscribed(first)
        await first.service.put_app(app_definition(build_app(tmp_path)))
        await first.service.put_app(demo_app_definition(tarball))
        await first.service.schedule(batch)
        await first.service.schedule(resident)
        await async_wait_for(lambda: running_daemon(first, resident.key), timeout=60)
        assert await first.service.trigger(batch.key, "t1") is TriggerResult.RAN
        assert await first.service.trigger(resident.key, "t1") is TriggerResult.RAN
        await async_wait_for(lambda: len(finished(out)) == 2, timeout=60, what="the batch run")
        await async_wait_for(lambda: first.service.job_runtime(resident.key).succeeded == 1)

    async with running_framework(zookeeper.hosts, zk_namespace, settings) as second:
        await subscribed(second)
        await async_wait_for(lambda: running_daemon(second, resident.key), timeout=60)
        assert await second.service.trigger(batch.key, "t1") is TriggerResult.ALREADY_HANDLED
        assert await second.service.trigger(resident.key, "t1") is TriggerResult.ALREADY_HANDLED
        assert second.service.job_runtime(batch.key).pending_runs == 0
        await async_holds(
            lambda: (len(runs(out)), second.service.job_runtime(resident.key).succeeded),
            lambda counts: counts == (2, 0),
            seconds=2.0,
            what="the batch ran once and the daemon ran once (runs, daemon successes)",
        )

        assert await second.service.trigger(batch.key, "t2") is TriggerResult.RAN
        await async_wait_for(
            lambda: len(finished(out)) == 4, timeout=60, what="the next token's run"
        )


async def test_disable_and_enable_a_transient_job(
    zookeeper: ZooKeeperServer, zk_namespace: str, cluster: LocalMesos, tmp_path: Path
) -> None:
    settings = framework_settings(cluster.master_address)
    out = tmp_path / "out"
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as fw:
        await subscribed(fw)
        await fw.service.put_app(app_definition(build_app(tmp_path)))
        job = script_job("ticking", out, cron="* * * * * ?", shards=1)
        await fw.service.schedule(job)
        await async_wait_for(lambda: len(finished(out)) >= 1, what="a run")

        await fw.service.disable_job(job.key)
        runtime = fw.service.job_runtime(job.key)
        assert not runtime.scheduled and runtime.pending_runs == 0
        await asyncio.sleep(0.5)  # a run launched just before may still finish
        settled = len(runs(out))
        await async_holds(
            lambda: len(runs(out)) == settled,
            seconds=2.5,
            what="a disabled job accumulates and runs nothing",
        )
        assert fw.service.view().state.ready() == {}

        await fw.service.enable_job(job.key)
        assert fw.service.job_runtime(job.key).scheduled
        await async_wait_for(lambda: len(runs(out)) > settled, what="runs after enabling")
        await fw.service.unschedule(job.key)


async def test_disabling_an_app_stops_its_daemons_and_enabling_brings_them_back(
    zookeeper: ZooKeeperServer, zk_namespace: str, cluster: LocalMesos, tmp_path: Path
) -> None:
    settings = framework_settings(cluster.master_address)
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as fw:
        await subscribed(fw)
        await fw.service.put_app(demo_app_definition(build_demo_app(tmp_path)))
        job = python_job("resident", shards=2, executionType="DAEMON")
        await fw.service.schedule(job)
        before = await async_wait_for(lambda: running_daemon(fw, job.key), timeout=60)

        await fw.service.disable_app("ns.demo")
        await async_wait_for(lambda: not live_ids(cluster) & set(before), timeout=30, what="kills")
        assert fw.service.job_runtime(job.key).active_shards == ()
        assert not fw.service.job_runtime(job.key).scheduled
        await async_holds(
            lambda: fw.service.job_runtime(job.key).active_shards == (),
            seconds=1.0,
            what="it stays down",
        )

        await fw.service.enable_app("ns.demo")
        after = await async_wait_for(lambda: running_daemon(fw, job.key), timeout=60)
        assert not set(after) & set(before)


async def test_rescheduling_moves_the_cron_and_restarts_a_daemon(
    zookeeper: ZooKeeperServer, zk_namespace: str, cluster: LocalMesos, tmp_path: Path
) -> None:
    settings = framework_settings(cluster.master_address)
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as fw:
        await subscribed(fw)
        await fw.service.put_app(demo_app_definition(build_demo_app(tmp_path)))
        transient = python_job("batch")
        await fw.service.schedule(transient)
        assert fw.service.job_runtime(transient.key).next_fire_time is not None
        hourly = python_job("batch", cron="0 0 * * * ?")
        await fw.service.schedule(hourly)
        next_fire = fw.service.job_runtime(transient.key).next_fire_time
        assert next_fire is not None and next_fire.minute == 0 and next_fire.second == 0
        assert fw.service.view().cron_timers() == {TimerKey("0 0 * * * ?", "UTC"): ("ns.batch",)}

        daemon = python_job("resident", executionType="DAEMON")
        await fw.service.schedule(daemon)
        before = await async_wait_for(lambda: running_daemon(fw, daemon.key), timeout=60)
        await fw.service.schedule(python_job("resident", executionType="DAEMON", cpuCount=0.3))
        after = await async_wait_for(
            lambda: (ids := running_daemon(fw, daemon.key)) and ids != before and ids,
            timeout=60,
            what="the daemon to restart with its new definition",
        )
        assert TaskId.parse(after[0]).job_key == daemon.key
        await async_wait_for(lambda: before[0] not in live_ids(cluster), timeout=30)


async def test_removing_an_app_kills_its_tasks_and_stops_its_executors(
    zookeeper: ZooKeeperServer, zk_namespace: str, cluster: LocalMesos, tmp_path: Path
) -> None:
    settings = framework_settings(cluster.master_address)
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as fw:
        await subscribed(fw)
        await fw.service.put_app(demo_app_definition(build_demo_app(tmp_path)))
        job = python_job("resident", executionType="DAEMON")
        await fw.service.schedule(job)
        await async_wait_for(lambda: running_daemon(fw, job.key), timeout=60)
        assert len(framework_state(cluster)["executors"]) == 1

        await fw.service.remove_app("ns.demo")
        await async_wait_for(
            lambda: framework_state(cluster)["executors"] == [],
            timeout=30,
            what="the executor to stop",
        )
        assert framework_state(cluster)["tasks"] == []
        assert fw.service.view().state.job(job.key) is None
        assert fw.service.app_executors("ns.demo") == []
        assert not fw.service.job_runtime(job.key).scheduled


async def test_a_leader_whose_zookeeper_connection_is_suspended_sends_nothing_to_mesos(
    zookeeper: ZooKeeperServer, zk_namespace: str, cluster: LocalMesos, tmp_path: Path
) -> None:
    settings = framework_settings(cluster.master_address)
    proxy = TcpProxy("127.0.0.1", zookeeper.port)
    try:
        async with running_framework(proxy.hosts, zk_namespace, settings) as fw:
            await subscribed(fw)
            await fw.service.put_app(demo_app_definition(build_demo_app(tmp_path)))
            job = python_job("resident", executionType="DAEMON")
            await fw.service.schedule(job)
            await async_wait_for(lambda: running_daemon(fw, job.key), timeout=60, what="the daemon")

            proxy.blackhole()  # only kazoo's timeouts tell: SUSPENDED, not leading
            await async_wait_for(lambda: not fw.election.is_leading, what="SUSPENDED")
            # The engine is still up (nobody has stopped it yet), but no call reaches Mesos,
            # and the trigger is not recorded (it is retried under the next leader).
            with pytest.raises(SchedulingError, match="does not lead"):
                await fw.service.trigger(job.key, "1")
            assert fw.service.view().state.last_trigger(job.key) is None

            # Another leader subscribes with the framework id: this process must not
            # subscribe again and fail it over back (nobody has stopped this engine).
            framework_id = framework_state(cluster)["id"]
            events: list[object] = []
            successor = MesosDriver(settings, events.append, asyncio.get_running_loop())
            await successor.start(framework_id)
            try:
                await async_wait_for(lambda: successor.connected, what="the successor to subscribe")
                await async_holds(
                    lambda: successor.connected, seconds=2.0, what="the successor subscribed"
                )
                # Subscribed once and never failed over (offers may come: it is not suppressed).
                lifecycle = Subscribed | Disconnected | MasterError
                assert [type(e) for e in events if isinstance(e, lifecycle)] == [Subscribed]
                assert framework_state(cluster)["connected"] is True
                assert fw.service.job_runtime(job.key).succeeded == 0
            finally:
                await successor.close()
            proxy.restore()
            await async_wait_for(lambda: fw.election.is_leading, what="leadership to come back")
    finally:
        proxy.close()


async def test_removing_an_app_stops_an_idle_executor_a_new_leader_never_saw(
    zookeeper: ZooKeeperServer, zk_namespace: str, tmp_path: Path, start_cluster: StartCluster
) -> None:
    # Sized so that, once set up, the agent has nothing left to offer: no offer ever
    # lists the idle executor to the second controller.
    cluster = start_cluster([AgentSpec(cpus=1.25, mem=160, disk=0, ports=[])])
    settings = framework_settings(cluster.master_address)
    tarball = build_demo_app(tmp_path)
    batch = python_job("batch")  # transient, app ns.demo
    resident = python_job("resident", app="other", executionType="DAEMON")
    async with running_framework(zookeeper.hosts, zk_namespace, settings) as first:
        await subscribed(first)
        await first.service.put_app(demo_app_definition(tarball))
        await first.service.put_app(demo_app_definition(tarball, name="other"))
        await first.service.schedule(batch)
        await first.service.trigger(batch.key, "1")
        await async_wait_for(
            lambda: first.service.job_runtime(batch.key).succeeded == 1, timeout=60
        )
        await first.service.schedule(resident)
        await async_wait_for(lambda: running_daemon(first, resident.key), timeout=60)

    executors = {e["executor_id"] for e in framework_state(cluster)["executors"]}
    idle = next(e for e in executors if e.startswith("ns.demo@-@"))
    assert len(executors) == 2

    async with running_framework(zookeeper.hosts, zk_namespace, settings) as second:
        await subscribed(second)
        await async_wait_for(lambda: not second.service.view().reconciling)
        assert second.metric("cloudjob_offers_received_total") == 0
        await second.service.remove_app("ns.demo")
        await async_wait_for(
            lambda: (
                {e["executor_id"] for e in framework_state(cluster)["executors"]}
                == executors - {idle}
            ),
            timeout=30,
            what="the idle executor to stop",
        )
        assert running_daemon(second, resident.key)
