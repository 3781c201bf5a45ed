"""Local Mesos conformance: explicit and implicit reconciliation answers (as
Mesos's reconciliation documentation describes them), including the silence
while agents re-register after a master failover."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from devcluster.mesos import AgentSpec, LocalMesos
from tests.mesos_emulator.conftest import Framework, command_task, framework_info
from tests.mesos_emulator.test_faults import reconcile_with_agent
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def answers(fw: Framework, task_id: str) -> list[dict[str, object]]:
    return [u for u in fw.updates(task_id) if u.get("reason") == "REASON_RECONCILIATION"]


def test_explicit_reconciliation_of_a_known_task(framework: Framework) -> None:
    offer = framework.next_offer()
    agent_id = offer["agent_id"]["value"]
    framework.launch(offer, [command_task("t1", agent_id, "sleep 60")])
    framework.wait_state("t1", "TASK_RUNNING")
    framework.driver.reconcileTasks([{"task_id": {"value": "t1"}}])
    [answer] = framework.wait(lambda: answers(framework, "t1"), "the answer")
    assert answer["state"] == "TASK_RUNNING"
    assert answer["source"] == "SOURCE_MASTER"
    assert answer["message"] == "Reconciliation: Latest task state"
    assert answer["agent_id"] == {"value": agent_id}
    assert "uuid" not in answer


def test_explicit_reconciliation_of_unknown_tasks(
    cluster: LocalMesos, framework: Framework
) -> None:
    agent_id = cluster.agents[0].agent_id
    framework.driver.reconcileTasks([{"task_id": {"value": "ghost"}}])
    assert (
        framework.wait_state("ghost", "TASK_UNKNOWN")["message"]
        == "Reconciliation: Task is unknown"
    )
    reconcile_with_agent(framework, "ghost-on-agent", agent_id)
    gone = framework.wait_state("ghost-on-agent", "TASK_GONE")
    assert gone["message"] == "Reconciliation: Task is unknown to the agent"
    reconcile_with_agent(framework, "ghost-elsewhere", "no-such-agent")
    framework.wait_state("ghost-elsewhere", "TASK_UNKNOWN")


def test_unknown_tasks_are_lost_without_partition_awareness(
    cluster: LocalMesos, make_framework: Callable[..., Framework]
) -> None:
    fw = make_framework(cluster, framework_info(partition_aware=False))
    fw.wait_subscribed()
    fw.driver.reconcileTasks([{"task_id": {"value": "ghost"}}])
    assert fw.wait_state("ghost", "TASK_LOST")["reason"] == "REASON_RECONCILIATION"
    reconcile_with_agent(fw, "ghost2", cluster.agents[0].agent_id)
    fw.wait_state("ghost2", "TASK_LOST")


def test_implicit_reconciliation_answers_every_known_task(framework: Framework) -> None:
    offer = framework.next_offer()
    agent_id = offer["agent_id"]["value"]
    framework.launch(
        offer, [command_task("a", agent_id, "sleep 60"), command_task("b", agent_id, "sleep 60")]
    )
    framework.wait_state("a", "TASK_RUNNING")
    framework.wait_state("b", "TASK_RUNNING")
    framework.driver.reconcileTasks([])
    framework.wait(
        lambda: answers(framework, "a") and answers(framework, "b"), "answers for a and b"
    )
    answered = [
        u["task_id"]["value"]
        for u in framework.updates()
        if u.get("reason") == "REASON_RECONCILIATION"
    ]
    assert sorted(answered) == ["a", "b"]


def test_no_answer_while_an_agent_is_still_reregistering(
    make_cluster: Callable[..., LocalMesos], make_framework: Callable[..., Framework]
) -> None:
    # Pings are slow here so the old master cannot mark the partitioned agent
    # unreachable before it crashes; the new master then waits for it.
    cluster = make_cluster([AgentSpec(), AgentSpec()], agent_ping_timeout=10.0)
    fw = make_framework(cluster)
    fw.wait_subscribed()
    reachable, partitioned = (a.agent_id for a in cluster.agents)
    cluster.partition_agent(partitioned)
    cluster.restart_master()
    fw.wait(lambda: fw.events("reregistered"), "re-subscription")
    # Answers to one RECONCILE call go out in order: if "x" had one, it would precede "y"'s.
    status, _ = fw.raw_call(
        {
            "type": "RECONCILE",
            "reconcile": {
                "tasks": [
                    {"task_id": {"value": "x"}, "agent_id": {"value": partitioned}},
                    {"task_id": {"value": "y"}, "agent_id": {"value": reachable}},
                ]
            },
        }
    )
    assert status == 202
    fw.wait_state("y", "TASK_GONE")
    assert fw.updates("x") == []
    fw.driver.reconcileTasks([{"task_id": {"value": "z"}}])
    reconcile_with_agent(fw, "after", reachable)
    fw.wait(lambda: fw.updates("after"), "a later answer")
    assert fw.updates("z") == [], "without an agent id, any recovering agent silences the answer"
    cluster.heal_agent(partitioned)
    reconcile_with_agent(fw, "x", partitioned)
    assert (
        fw.wait_state("x", "TASK_GONE")["message"] == "Reconciliation: Task is unknown to the agent"
    )


def test_agent_that_never_reregisters_becomes_unreachable(
    make_cluster: Callable[..., LocalMesos], make_framework: Callable[..., Framework]
) -> None:
    cluster = make_cluster(
        [AgentSpec(), AgentSpec()], agent_ping_timeout=10.0, agent_reregister_timeout=0.5
    )
    fw = make_framework(cluster)
    fw.wait_subscribed()
    partitioned = cluster.agents[1].agent_id
    cluster.partition_agent(partitioned)
    cluster.restart_master()
    wait_for(lambda: cluster.state()["unreachable_slaves"] == 1, what="the re-registration timeout")
    fw.wait(lambda: fw.events("reregistered"), "re-subscription")
    reconcile_with_agent(fw, "x", partitioned)
    assert (
        fw.wait_state("x", "TASK_UNREACHABLE")["message"] == "Reconciliation: Task is unreachable"
    )
