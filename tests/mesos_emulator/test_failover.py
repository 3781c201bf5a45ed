"""Local Mesos conformance: framework failover, failover timeouts, teardown, master
restarts and ZooKeeper master detection, driven by the unmodified pymesos driver."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from devcluster.mesos import LocalMesos
from devcluster.zookeeper import ZooKeeperServer
from tests.mesos_emulator.conftest import (
    SUBSCRIBE_BODY,
    Framework,
    command_task,
    framework_info,
    http_get_json,
    http_post,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def start_sleeper(fw: Framework, task_id: str = "t1") -> int:
    """Launch `sleep` as a command task; returns its pid once RUNNING."""
    offer = fw.next_offer()
    fw.launch(
        offer, [command_task(task_id, offer["agent_id"]["value"], "echo $$ > pid; exec sleep 120")]
    )
    fw.wait_state(task_id, "TASK_RUNNING")
    sandboxes = list(
        fw.cluster.work_dir.glob(f"slaves/*/frameworks/*/executors/{task_id}/runs/latest")
    )
    pid_file = sandboxes[0] / "pid"
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), what="the task's pid file")
    return int(pid_file.read_text())


def test_failover_with_the_same_id_keeps_tasks(
    cluster: LocalMesos, make_framework: Callable[..., Framework]
) -> None:
    first = make_framework(cluster)
    framework_id = first.wait_subscribed()
    pid = start_sleeper(first)
    first.stop()
    wait_for(
        lambda: not cluster.state()["frameworks"][0]["connected"],
        what="the master to see the disconnect",
    )
    second = make_framework(cluster, framework_info(id={"value": framework_id}))
    second.wait(lambda: second.events("reregistered"), "re-subscription")
    assert second.framework_id == framework_id
    second.driver.reconcileTasks([{"task_id": {"value": "t1"}}])
    answer = second.wait_state("t1", "TASK_RUNNING")
    assert answer["reason"] == "REASON_RECONCILIATION"
    assert pid_alive(pid)
    [state] = cluster.state()["frameworks"]
    assert state["id"] == framework_id and state["connected"] and state["active"]


def test_a_failed_over_scheduler_is_resent_pending_updates_at_once(
    make_cluster: Callable[..., LocalMesos], make_framework: Callable[..., Framework]
) -> None:
    # Retries far apart: only the re-subscription can bring the update back in time.
    cluster = make_cluster(status_update_retry=600.0, status_update_retry_max=600.0)
    first = make_framework(cluster, auto_ack=False)
    framework_id = first.wait_subscribed()
    offer = first.next_offer()
    first.launch(offer, [command_task("t1", offer["agent_id"]["value"], "true")])
    starting = first.wait_state("t1", "TASK_STARTING")
    first.stop()
    second = make_framework(cluster, framework_info(id={"value": framework_id}), auto_ack=False)
    second.wait(lambda: second.events("reregistered"), "re-subscription")
    resent = second.wait_state("t1", "TASK_STARTING")
    assert resent["uuid"] == starting["uuid"]
    # The task finished meanwhile: the master knew it from the resent update.
    [task] = cluster.state()["frameworks"][0]["tasks"]
    assert task["state"] == "TASK_FINISHED"
    second.ack(resent)
    second.ack(second.wait_state("t1", "TASK_RUNNING"))
    second.ack(second.wait_state("t1", "TASK_FINISHED"))
    wait_for(
        lambda: [t["id"] for t in cluster.state()["frameworks"][0]["completed_tasks"]] == ["t1"],
        what="t1 to be complete once its updates are acknowledged",
    )


def test_failover_timeout_expiry_kills_tasks_and_removes_the_framework(
    cluster: LocalMesos, make_framework: Callable[..., Framework]
) -> None:
    first = make_framework(cluster, framework_info(failover_timeout=0.5))
    framework_id = first.wait_subscribed()
    pid = start_sleeper(first)
    first.stop()

    def removed() -> dict[str, object] | None:
        for fw in cluster.state()["completed_frameworks"]:
            if fw["id"] == framework_id:
                return dict(fw)
        return None

    completed = wait_for(removed, what="the framework to be removed after its failover timeout")
    [task] = completed["completed_tasks"]
    assert task["state"] == "TASK_KILLED"
    assert task["statuses"][-1]["state"] == "TASK_KILLED"
    wait_for(lambda: not pid_alive(pid), what="the task's process to be killed")
    again = make_framework(cluster, framework_info(id={"value": framework_id}))
    assert again.wait(lambda: again.events("error"), "ERROR") == ["Framework has been removed"]


def test_second_subscription_fails_over_the_first(
    cluster: LocalMesos, make_framework: Callable[..., Framework]
) -> None:
    first = make_framework(cluster)
    framework_id = first.wait_subscribed()
    second = make_framework(cluster, framework_info(id={"value": framework_id}))
    second.wait(lambda: second.events("reregistered"), "the second subscription")
    assert first.wait(lambda: first.events("error"), "ERROR on the old stream") == [
        "Framework failed over"
    ]
    assert [f["connected"] for f in cluster.state()["frameworks"]] == [True]
    second.driver.reconcileTasks([{"task_id": {"value": "probe"}}])
    second.wait_state("probe", "TASK_UNKNOWN")


def test_teardown_kills_tasks_and_forbids_the_id(
    cluster: LocalMesos, make_framework: Callable[..., Framework]
) -> None:
    fw = make_framework(cluster)
    framework_id = fw.wait_subscribed()
    pid = start_sleeper(fw)
    fw.driver.stop()  # without failover pymesos sends TEARDOWN
    fw.driver.join()
    wait_for(
        lambda: [f["id"] for f in cluster.state()["completed_frameworks"]] == [framework_id],
        what="the framework to be torn down",
    )
    assert cluster.state()["frameworks"] == []
    wait_for(lambda: not pid_alive(pid), what="the task's process to be killed")
    again = make_framework(cluster, framework_info(id={"value": framework_id}))
    assert again.wait(lambda: again.events("error"), "ERROR") == ["Framework has been removed"]


def test_master_restart_drops_streams_and_updates_are_retried(
    cluster: LocalMesos, make_framework: Callable[..., Framework]
) -> None:
    fw = make_framework(cluster, auto_ack=False)
    framework_id = fw.wait_subscribed()
    offer = fw.next_offer()
    fw.launch(offer, [command_task("t1", offer["agent_id"]["value"], "sleep 120")])
    starting = fw.wait_state("t1", "TASK_STARTING")
    cluster.restart_master()
    fw.wait(lambda: fw.events("reregistered"), "re-subscription after the master restart")
    assert fw.events("disconnected")
    assert fw.framework_id == framework_id

    def starting_again() -> bool:
        return len([u for u in fw.updates("t1") if u["uuid"] == starting["uuid"]]) >= 2

    fw.wait(starting_again, "the unacknowledged STARTING to be resent through the new master")
    fw.ack(starting)
    fw.ack(fw.wait_state("t1", "TASK_RUNNING"))
    fw.driver.reconcileTasks([{"task_id": {"value": "t1"}}])
    fw.wait(
        lambda: [u for u in fw.updates("t1") if u.get("reason") == "REASON_RECONCILIATION"],
        "a reconciliation answer from the new master",
    )
    state = cluster.state()
    assert [f["id"] for f in state["frameworks"]] == [framework_id]
    assert [t["id"] for t in state["frameworks"][0]["tasks"]] == ["t1"]
    assert state["slaves"][0]["reregistered_time"]


def test_zookeeper_registration_and_zk_master_detection(
    make_cluster: Callable[..., LocalMesos],
    make_framework: Callable[..., Framework],
    zookeeper: ZooKeeperServer,
    zk_client: KazooClient,
    zk_namespace: str,
) -> None:
    path = f"/{zk_namespace}/mesos"
    cluster = make_cluster(zk_hosts=zookeeper.hosts, zk_path=path)
    [node] = zk_client.get_children(path)
    assert node.startswith("json.info_")
    info = json.loads(zk_client.get(f"{path}/{node}")[0])
    assert info["address"] == {
        "hostname": "127.0.0.1",
        "ip": "127.0.0.1",
        "port": int(cluster.master_address.split(":")[1]),
    }
    assert cluster.zk_url == f"zk://{zookeeper.hosts}{path}"
    fw = make_framework(cluster, master=cluster.zk_url)
    framework_id = fw.wait_subscribed()
    cluster.restart_master()
    [new_node] = wait_for(
        lambda: [n for n in zk_client.get_children(path) if n != node], what="a new json.info_ node"
    )
    assert zk_client.exists(f"{path}/{node}") is None, "the crashed master's ephemeral node is gone"
    assert new_node > node
    fw.wait(lambda: fw.events("reregistered"), "re-subscription through ZooKeeper detection")
    assert fw.framework_id == framework_id


def test_heartbeats_are_streamed(framework: Framework) -> None:
    framework.wait(lambda: len(framework.events("heartbeat")) >= 2, "two HEARTBEAT events")


def test_state_and_version_endpoints(cluster: LocalMesos, framework: Framework) -> None:
    version = http_get_json(cluster.master_url + "/version")
    assert version["version"].count(".") == 2
    for path in ("/state", "/master/state"):
        state = http_get_json(cluster.master_url + path)
        assert state["leader_info"]["port"] == int(cluster.master_address.split(":")[1])
        assert [s["id"] for s in state["slaves"]] == [a.agent_id for a in cluster.agents]
        assert state["slaves"][0]["resources"]["cpus"] == 4.0
        assert state["slaves"][0]["resources"]["ports"] == "[31000-32000]"
        [fw] = state["frameworks"]
        assert fw["id"] == framework.framework_id
        assert fw["name"] == "conformance"
        assert "PARTITION_AWARE" in fw["capabilities"]
        assert fw["failover_timeout"] == 604800.0
        for key in ("tasks", "completed_tasks", "unreachable_tasks", "executors", "offers"):
            assert isinstance(fw[key], list)
    assert Path(cluster.work_dir).is_dir()


def test_standby_master_redirects_to_the_leader(
    cluster: LocalMesos, make_framework: Callable[..., Framework]
) -> None:
    standby = cluster.add_standby_master()
    status, _ = http_post(
        f"http://{standby}/api/v1/scheduler", SUBSCRIBE_BODY, {"Content-Type": "application/json"}
    )
    assert status == 307
    fw = make_framework(cluster, master=standby)
    fw.wait_subscribed()
    assert fw.driver.master == cluster.master_address, "pymesos followed the redirect"


def test_a_resubscription_clears_an_earlier_suppress(
    cluster: LocalMesos, make_framework: Callable[..., Framework]
) -> None:
    first = make_framework(cluster)
    framework_id = first.wait_subscribed()
    offer = first.next_offer()
    first.driver.suppressOffers()
    first.driver.declineOffer(offer["id"], {"refuse_seconds": 0.05})
    first.driver.reconcileTasks([{"task_id": {"value": "marker"}}])
    first.wait_state("marker", "TASK_UNKNOWN")
    first.stop()
    second = make_framework(cluster, framework_info(id={"value": framework_id}))
    second.wait(lambda: second.events("reregistered"), "re-subscription")
    assert second.framework_id == framework_id
    second.next_offer()
