"""Local Mesos conformance: injected faults produce the task states a real cluster
produces (partitions, agent and executor deaths, lost launches, update delivery
faults, rescinded offers, status update retries)."""

from __future__ import annotations

import base64
import os
import signal
from collections.abc import Callable, Iterator

import pytest

from devcluster.mesos import AgentSpec, LocalMesos
from tests.mesos_emulator.conftest import (
    Framework,
    command_task,
    executor_info,
    executor_task,
    framework_info,
)
from tests.mesos_emulator.test_failover import pid_alive, start_sleeper
from tests.mesos_emulator.test_tasks import executor_log, running
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def reconcile_with_agent(fw: Framework, task_id: str, agent_id: str) -> None:
    status, body = fw.raw_call(
        {
            "type": "RECONCILE",
            "reconcile": {
                "tasks": [{"task_id": {"value": task_id}, "agent_id": {"value": agent_id}}]
            },
        }
    )
    assert status == 202, body


def test_partition_then_heal_brings_the_task_back(
    cluster: LocalMesos, framework: Framework
) -> None:
    pid = start_sleeper(framework)
    agent_id = cluster.agents[0].agent_id
    cluster.partition_agent(agent_id)
    unreachable = framework.wait_state("t1", "TASK_UNREACHABLE")
    assert unreachable["source"] == "SOURCE_MASTER"
    assert unreachable["reason"] == "REASON_AGENT_REMOVED"
    assert unreachable["unreachable_time"]["nanoseconds"] > 0
    assert "uuid" not in unreachable
    assert framework.wait(lambda: framework.events("agent_lost"), "FAILURE for the agent") == [
        agent_id
    ]
    reconcile_with_agent(framework, "t1", agent_id)
    answers = framework.wait(
        lambda: [u for u in framework.updates("t1") if u.get("reason") == "REASON_RECONCILIATION"],
        "a reconciliation answer",
    )
    assert answers[0]["state"] == "TASK_UNREACHABLE"
    assert pid_alive(pid), "a partitioned agent's tasks keep running"
    cluster.heal_agent(agent_id)
    back = framework.wait(
        lambda: [
            u for u in framework.updates("t1") if u.get("reason") == "REASON_AGENT_REREGISTERED"
        ],
        "the task to come back",
    )
    assert back[0]["state"] == "TASK_RUNNING"
    assert back[0]["source"] == "SOURCE_MASTER"
    assert [t["id"] for t in cluster.state()["frameworks"][0]["tasks"]] == ["t1"]


def test_partition_then_mark_gone(cluster: LocalMesos, framework: Framework) -> None:
    pid = start_sleeper(framework)
    agent_id = cluster.agents[0].agent_id
    cluster.partition_agent(agent_id)
    framework.wait_state("t1", "TASK_UNREACHABLE")
    cluster.mark_agent_gone(agent_id)
    gone = framework.wait_state("t1", "TASK_GONE_BY_OPERATOR")
    assert gone["reason"] == "REASON_AGENT_REMOVED_BY_OPERATOR"
    assert gone["message"] == "Agent has been marked gone"
    cluster.heal_agent(agent_id)  # the agent is refused and shuts down
    wait_for(lambda: not pid_alive(pid), what="the gone agent to kill its tasks")
    reconcile_with_agent(framework, "t1", agent_id)
    answer = framework.wait(
        lambda: [u for u in framework.updates("t1") if u.get("reason") == "REASON_RECONCILIATION"],
        "a reconciliation answer",
    )
    assert answer[0]["state"] == "TASK_GONE_BY_OPERATOR"
    assert cluster.state()["gone_slaves"] == [agent_id]


def test_partition_without_partition_awareness_is_task_lost(
    cluster: LocalMesos, make_framework: Callable[..., Framework]
) -> None:
    fw = make_framework(cluster, framework_info(partition_aware=False))
    fw.wait_subscribed()
    start_sleeper(fw)
    agent_id = cluster.agents[0].agent_id
    cluster.partition_agent(agent_id)
    assert fw.wait_state("t1", "TASK_LOST")["reason"] == "REASON_AGENT_REMOVED"
    cluster.heal_agent(agent_id)
    back = fw.wait(
        lambda: [u for u in fw.updates("t1") if u.get("reason") == "REASON_AGENT_REREGISTERED"],
        "the task to come back",
    )
    assert back[0]["state"] == "TASK_RUNNING"


def test_killed_agent_becomes_unreachable_for_checkpointing_frameworks(
    cluster: LocalMesos, make_framework: Callable[..., Framework]
) -> None:
    fw = make_framework(cluster, framework_info(checkpoint=True))
    fw.wait_subscribed()
    pid = start_sleeper(fw)
    agent_id = cluster.agents[0].agent_id
    cluster.kill_agent(agent_id)
    wait_for(lambda: not pid_alive(pid), what="the dead agent's processes to die")
    unreachable = fw.wait_state("t1", "TASK_UNREACHABLE")
    assert unreachable["reason"] == "REASON_AGENT_REMOVED"
    assert fw.states("t1")[-1] == "TASK_UNREACHABLE"
    assert cluster.state()["unreachable_slaves"] == 1


def test_killed_agent_loses_tasks_of_non_checkpointing_frameworks(
    cluster: LocalMesos, make_framework: Callable[..., Framework]
) -> None:
    fw = make_framework(cluster, framework_info(partition_aware=False))
    fw.wait_subscribed()
    start_sleeper(fw)
    cluster.kill_agent(cluster.agents[0].agent_id)
    lost = fw.wait_state("t1", "TASK_LOST")
    assert lost["reason"] == "REASON_AGENT_DISCONNECTED"
    assert lost["message"] == "Agent agent-1 disconnected"


def test_crashed_executor_fails_its_tasks(cluster: LocalMesos, framework: Framework) -> None:
    offer = framework.next_offer()
    agent_id = offer["agent_id"]["value"]
    framework.launch(offer, [executor_task("e1", agent_id, {"mode": "run"})])
    framework.wait_state("e1", "TASK_RUNNING")
    cluster.crash_executor(agent_id, "ex1")
    failed = framework.wait_state("e1", "TASK_FAILED")
    assert failed["reason"] == "REASON_EXECUTOR_TERMINATED"
    assert failed["source"] == "SOURCE_AGENT"
    [lost] = framework.wait(lambda: framework.events("executor_lost"), "FAILURE for the executor")
    assert lost == {"executor_id": "ex1", "status": 9}


@pytest.fixture
def spawned(framework: Framework) -> Iterator[Callable[[str], dict[str, int]]]:
    """Pids of the SIGTERM-ignoring children an executor_app "spawn" task started;
    whatever still runs after the test is killed."""
    found: list[int] = []

    def lookup(task_id: str) -> dict[str, int]:
        for event in executor_log(framework.cluster, framework.framework_id):
            if event["event"] == "spawned" and event["task_id"] == task_id:
                pids = {"group": int(str(event["group"])), "session": int(str(event["session"]))}
                found.extend(pids.values())
                assert all(running(pid) for pid in pids.values())
                return pids
        raise AssertionError(f"task {task_id} spawned nothing")

    yield lookup
    for pid in found:
        if running(pid):
            os.kill(pid, signal.SIGKILL)


def test_crashed_executor_takes_its_whole_container_down(
    cluster: LocalMesos, framework: Framework, spawned: Callable[[str], dict[str, int]]
) -> None:
    offer = framework.next_offer()
    agent_id = offer["agent_id"]["value"]
    framework.launch(offer, [executor_task("e1", agent_id, {"mode": "run", "spawn": True})])
    framework.wait_state("e1", "TASK_RUNNING")
    pids = spawned("e1")
    cluster.crash_executor(agent_id, "ex1")
    assert framework.wait_state("e1", "TASK_FAILED")["reason"] == "REASON_EXECUTOR_TERMINATED"
    for where, pid in pids.items():
        wait_for(
            lambda pid=pid: not running(pid), what=f"the child in its own {where} to be killed"
        )


def test_exited_executor_takes_its_session_down(
    framework: Framework, spawned: Callable[[str], dict[str, int]]
) -> None:
    offer = framework.next_offer()
    agent_id = offer["agent_id"]["value"]
    framework.launch(offer, [executor_task("e1", agent_id, {"mode": "run", "spawn": True})])
    framework.wait_state("e1", "TASK_RUNNING")
    # The child that made a session of its own loses its parent when the executor
    # exits, so only cgroups could still find it (Mesos's POSIX launcher cannot).
    group = spawned("e1")["group"]
    framework.driver.sendFrameworkMessage(
        {"value": "ex1"}, {"value": agent_id}, base64.b64encode(b"exit").decode()
    )
    assert framework.wait_state("e1", "TASK_FAILED")["reason"] == "REASON_EXECUTOR_TERMINATED"
    wait_for(lambda: not running(group), what="the executor's job process to be killed")


def test_shut_down_executor_takes_its_session_down(
    cluster: LocalMesos, framework: Framework, spawned: Callable[[str], dict[str, int]]
) -> None:
    offer = framework.next_offer()
    agent_id = offer["agent_id"]["value"]
    framework.launch(offer, [executor_task("e1", agent_id, {"mode": "run", "spawn": True})])
    framework.wait_state("e1", "TASK_RUNNING")
    group = spawned("e1")["group"]
    status, _ = framework.raw_call(
        {
            "type": "SHUTDOWN",
            "shutdown": {"executor_id": {"value": "ex1"}, "agent_id": {"value": agent_id}},
        }
    )
    assert status == 202
    framework.wait(lambda: framework.events("executor_lost"), "the executor to end")
    wait_for(lambda: not running(group), what="the executor's job process to be killed")


def test_killed_agent_takes_every_container_down(
    cluster: LocalMesos, framework: Framework, spawned: Callable[[str], dict[str, int]]
) -> None:
    offer = framework.next_offer()
    agent_id = offer["agent_id"]["value"]
    framework.launch(offer, [executor_task("e1", agent_id, {"mode": "run", "spawn": True})])
    framework.wait_state("e1", "TASK_RUNNING")
    pids = spawned("e1")
    cluster.kill_agent(agent_id)
    for where, pid in pids.items():
        wait_for(
            lambda pid=pid: not running(pid), what=f"the child in its own {where} to be killed"
        )


def test_executor_exit_with_live_tasks(framework: Framework) -> None:
    offer = framework.next_offer()
    framework.launch(offer, [executor_task("e1", offer["agent_id"]["value"], {"mode": "exit"})])
    failed = framework.wait_state("e1", "TASK_FAILED")
    assert failed["reason"] == "REASON_EXECUTOR_TERMINATED"
    [lost] = framework.wait(lambda: framework.events("executor_lost"), "FAILURE for the executor")
    assert lost["status"] == 3 << 8


def test_executor_registration_timeout(
    make_cluster: Callable[..., LocalMesos], make_framework: Callable[..., Framework]
) -> None:
    cluster = make_cluster(executor_registration_timeout=1.0)
    fw = make_framework(cluster)
    fw.wait_subscribed()
    offer = fw.next_offer()
    silent = executor_info(command={"value": "sleep 60"})
    fw.launch(offer, [executor_task("e1", offer["agent_id"]["value"], {}, silent)])
    failed = fw.wait_state("e1", "TASK_FAILED")
    assert failed["reason"] == "REASON_EXECUTOR_REGISTRATION_TIMEOUT"
    assert failed["message"] == "Executor did not register within 1secs"


def test_dropped_launch_is_revealed_by_reconciliation(
    cluster: LocalMesos, framework: Framework
) -> None:
    cluster.drop_next_launch("lost-")
    offer = framework.next_offer()
    agent_id = offer["agent_id"]["value"]
    framework.launch(
        offer, [command_task("lost-1", agent_id, "true"), command_task("kept", agent_id, "true")]
    )
    framework.wait_state("kept", "TASK_FINISHED")
    assert framework.updates("lost-1") == []
    framework.driver.reconcileTasks([{"task_id": {"value": "lost-1"}}])
    assert framework.wait_state("lost-1", "TASK_UNKNOWN")["reason"] == "REASON_RECONCILIATION"
    reconcile_with_agent(framework, "lost-1", agent_id)
    assert (
        framework.wait_state("lost-1", "TASK_GONE")["message"]
        == "Reconciliation: Task is unknown to the agent"
    )


def test_launch_dropped_before_the_agent_stays_staging(
    cluster: LocalMesos, framework: Framework
) -> None:
    cluster.drop_next_launch("t", where="agent")
    offer = framework.next_offer()
    framework.launch(offer, [command_task("t1", offer["agent_id"]["value"], "true")])
    framework.driver.reconcileTasks([{"task_id": {"value": "t1"}}])
    assert framework.wait_state("t1", "TASK_STAGING")["reason"] == "REASON_RECONCILIATION"
    assert framework.states("t1") == ["TASK_STAGING"]


def test_duplicated_updates_arrive_twice(cluster: LocalMesos, framework: Framework) -> None:
    cluster.duplicate_status_updates(True)
    offer = framework.next_offer()
    framework.launch(offer, [command_task("t1", offer["agent_id"]["value"], "true")])
    framework.wait(lambda: framework.states("t1").count("TASK_FINISHED") >= 2, "FINISHED twice")
    updates = framework.updates("t1")
    # Every delivery is doubled back to back (retries, if any, are doubled too).
    assert len(updates) % 2 == 0
    assert all(a["uuid"] == b["uuid"] for a, b in zip(updates[::2], updates[1::2], strict=True))
    assert framework.distinct_states("t1") == ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]


def test_delayed_updates_still_arrive_in_order(cluster: LocalMesos, framework: Framework) -> None:
    cluster.delay_status_updates(0.3)
    offer = framework.next_offer()
    framework.launch(offer, [command_task("t1", offer["agent_id"]["value"], "true")])
    framework.wait_state("t1", "TASK_FINISHED")
    assert framework.distinct_states("t1") == ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]


def test_reordered_updates_overtake_each_other(cluster: LocalMesos, framework: Framework) -> None:
    cluster.reorder_status_updates(True)
    framework.driver.reconcileTasks(
        [{"task_id": {"value": "first"}}, {"task_id": {"value": "second"}}]
    )
    framework.wait(lambda: len(framework.updates()) == 2, "both answers")
    assert [u["task_id"]["value"] for u in framework.updates()] == ["second", "first"]


def test_rescinded_offer_cannot_be_used(cluster: LocalMesos, framework: Framework) -> None:
    offer = framework.next_offer()
    assert cluster.rescind_offer(offer["id"]["value"])
    assert framework.wait(lambda: framework.events("rescind"), "RESCIND") == [offer["id"]["value"]]
    framework.launch(offer, [command_task("t1", offer["agent_id"]["value"], "true")])
    assert framework.wait_state("t1", "TASK_DROPPED")["reason"] == "REASON_INVALID_OFFERS"
    framework.next_offer()
    assert cluster.rescind_all_offers() >= 1


def test_status_updates_are_retried_until_acknowledged(
    cluster: LocalMesos, make_framework: Callable[..., Framework]
) -> None:
    fw = make_framework(cluster, auto_ack=False)
    fw.wait_subscribed()
    offer = fw.next_offer()
    fw.launch(offer, [command_task("t1", offer["agent_id"]["value"], "true")])
    first = fw.wait_state("t1", "TASK_STARTING")
    fw.wait(lambda: len(fw.updates("t1")) >= 3, "two retries of the unacknowledged update")
    assert {u["uuid"] for u in fw.updates("t1")} == {first["uuid"]}
    assert set(fw.states("t1")) == {"TASK_STARTING"}, "one outstanding update per task"
    fw.ack(first)
    running = fw.wait_state("t1", "TASK_RUNNING")
    fw.ack(running)
    fw.ack(fw.wait_state("t1", "TASK_FINISHED"))


def test_kill_of_a_finished_task_is_ignored(
    cluster: LocalMesos, make_framework: Callable[..., Framework]
) -> None:
    fw = make_framework(cluster, auto_ack=False)
    fw.wait_subscribed()
    offer = fw.next_offer()
    agent_id = offer["agent_id"]["value"]
    fw.launch(offer, [command_task("t1", agent_id, "true")])
    fw.ack(fw.wait_state("t1", "TASK_STARTING"))
    fw.ack(fw.wait_state("t1", "TASK_RUNNING"))
    finished = fw.wait_state("t1", "TASK_FINISHED")
    fw.driver.killTask({"value": "t1"})  # crosses the finish: not acknowledged yet
    # The master passed the kill on before answering; the agent has handled it by now.
    assert cluster.pending_status_updates(agent_id) == {"t1": ["TASK_FINISHED"]}
    fw.ack(finished)
    wait_for(lambda: cluster.pending_status_updates(agent_id) == {}, what="the stream to close")
    assert fw.distinct_states("t1") == ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]


def test_bad_acknowledgement_gets_400_through_pymesos(framework: Framework) -> None:
    offer = framework.next_offer()
    framework.launch(offer, [command_task("t1", offer["agent_id"]["value"], "true")])
    update = framework.wait_state("t1", "TASK_FINISHED")
    bogus = {**update, "uuid": base64.b64encode(b"short").decode()}
    try:
        framework.driver.acknowledgeStatusUpdate(bogus)
    except RuntimeError as error:
        assert "400" in str(error)
        assert "Not a valid UUID" in str(error)
    else:
        raise AssertionError("a malformed ACKNOWLEDGE must be refused")


def test_declined_resources_go_to_another_framework(
    make_cluster: Callable[..., LocalMesos], make_framework: Callable[..., Framework]
) -> None:
    cluster = make_cluster([AgentSpec(cpus=1.0), AgentSpec(cpus=1.0)])
    one = make_framework(cluster, framework_info(name="one"))
    one.wait_subscribed()
    offers = [one.next_offer(), one.next_offer()]
    assert {o["agent_id"]["value"] for o in offers} == {a.agent_id for a in cluster.agents}
    two = make_framework(cluster, framework_info(name="two"))
    two.wait_subscribed()
    for offer in offers:
        one.driver.declineOffer(offer["id"], {"refuse_seconds": 3600})
    got = {two.next_offer()["agent_id"]["value"], two.next_offer()["agent_id"]["value"]}
    assert got == {a.agent_id for a in cluster.agents}
