"""Local Mesos conformance: agent process restarts (executors re-subscribe or are
destroyed) and what the master settles when a known agent re-registers (tasks the
agent never got, executors that ended meanwhile, KILLs it missed)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest

from devcluster.mesos import AgentSpec, LocalMesos
from tests.mesos_emulator.conftest import (
    Framework,
    command_task,
    executor_task,
    framework_info,
    http_get_json,
)
from tests.mesos_emulator.test_failover import start_sleeper
from tests.mesos_emulator.test_tasks import executor_log, running
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

# Long enough that an agent off the network for a moment is not marked unreachable.
PATIENT = {"agent_ping_timeout": 5.0}


def executor_pid(fw: Framework) -> int:
    [registered] = [
        e for e in executor_log(fw.cluster, fw.framework_id) if e["event"] == "registered"
    ]
    return int(str(registered["pid"]))


def test_checkpointing_executor_resubscribes_after_an_agent_restart(
    make_cluster: Callable[..., LocalMesos], make_framework: Callable[..., Framework]
) -> None:
    cluster = make_cluster(executor_reregistration_timeout=15.0, **PATIENT)
    fw = make_framework(cluster, framework_info(checkpoint=True))
    fw.wait_subscribed()
    offer = fw.next_offer()
    agent_id = offer["agent_id"]["value"]
    fw.launch(offer, [executor_task("e1", agent_id, {"mode": "run"})])
    fw.wait_state("e1", "TASK_RUNNING")
    pid = executor_pid(fw)

    cluster.restart_agent(agent_id)

    wait_for(
        lambda: any(e["event"] == "reregistered" for e in executor_log(cluster, fw.framework_id)),
        what="the executor to subscribe again",
    )
    assert running(pid)
    fw.driver.killTask({"value": "e1"})
    assert fw.wait_state("e1", "TASK_KILLED")["message"] == "killed"
    assert fw.distinct_states("e1") == ["TASK_RUNNING", "TASK_KILLED"]


def test_executor_that_does_not_resubscribe_is_destroyed(
    make_cluster: Callable[..., LocalMesos], make_framework: Callable[..., Framework]
) -> None:
    cluster = make_cluster(executor_reregistration_timeout=0.5, **PATIENT)
    fw = make_framework(cluster, framework_info(checkpoint=True))
    fw.wait_subscribed()
    offer = fw.next_offer()
    agent_id = offer["agent_id"]["value"]
    fw.launch(offer, [executor_task("e1", agent_id, {"mode": "run"})])
    fw.wait_state("e1", "TASK_RUNNING")
    pid = executor_pid(fw)
    os.kill(pid, signal.SIGSTOP)  # a hung executor: it cannot subscribe again
    try:
        cluster.restart_agent(agent_id)
        gone = fw.wait_state("e1", "TASK_GONE")
        assert gone["reason"] == "REASON_EXECUTOR_REREGISTRATION_TIMEOUT"
        assert gone["message"] == "Executor did not reregister within 500ms"
        assert gone["source"] == "SOURCE_AGENT"
        wait_for(lambda: not running(pid), what="the executor's container to be destroyed")
        fw.wait(lambda: fw.events("executor_lost"), "FAILURE for the executor")
    finally:
        if running(pid):
            os.kill(pid, signal.SIGKILL)


def test_restart_ends_the_tasks_of_frameworks_without_checkpointing(
    make_cluster: Callable[..., LocalMesos], make_framework: Callable[..., Framework]
) -> None:
    cluster = make_cluster(**PATIENT)
    fw = make_framework(cluster)
    fw.wait_subscribed()
    sleeper = start_sleeper(fw)
    offer = fw.next_offer()
    agent_id = offer["agent_id"]["value"]
    fw.launch(offer, [executor_task("e1", agent_id, {"mode": "run"})])
    fw.wait_state("e1", "TASK_RUNNING")
    pid = executor_pid(fw)

    cluster.bring_agent_down(agent_id)
    for task_id in ("t1", "e1"):
        lost = fw.wait_state(task_id, "TASK_LOST")
        assert lost["reason"] == "REASON_AGENT_DISCONNECTED"
    # The agent is down, not its host: the processes run on until it recovers.
    assert running(sleeper) and running(pid)
    cluster.bring_agent_up(agent_id)
    for orphan in (sleeper, pid):
        wait_for(lambda orphan=orphan: not running(orphan), what="orphaned containers destroyed")


def test_executor_that_ended_during_a_partition_is_released(
    make_cluster: Callable[..., LocalMesos], make_framework: Callable[..., Framework]
) -> None:
    cluster = make_cluster([AgentSpec(cpus=1.0, mem=256.0, ports=[])], **PATIENT)
    fw = make_framework(cluster)
    fw.wait_subscribed()
    offer = fw.next_offer()
    agent_id = offer["agent_id"]["value"]
    fw.launch(offer, [executor_task("e1", agent_id, {"mode": "run"})])
    fw.wait_state("e1", "TASK_RUNNING")
    cluster.partition_agent(agent_id)
    cluster.crash_executor(agent_id, "ex1")
    agent_state = f"http://{cluster.agents[0].endpoint}/state"

    def failed_on_agent() -> bool:
        [framework] = http_get_json(agent_state)["frameworks"]
        return any(
            t["id"] == "e1" and t["state"] == "TASK_FAILED"
            for e in framework["executors"]
            for t in e["completed_tasks"]
        )

    # The agent saw its executor end while cut off: its report of it is lost.
    wait_for(failed_on_agent, what="the agent to see its executor end")
    cluster.heal_agent(agent_id)
    failed = fw.wait_state("e1", "TASK_FAILED")
    assert failed["reason"] == "REASON_EXECUTOR_TERMINATED"

    def used_on_agent() -> dict[str, float]:
        # The master's books, not offers: two offers outstanding for one agent
        # (the task's share and the executor's) are never merged while either is
        # held, so waiting for one whole offer can chase them forever.
        [agent] = http_get_json(cluster.master_url + "/state")["slaves"]
        used = agent["used_resources"]
        return {name: used[name] for name in ("cpus", "mem")}

    wait_for(
        used_on_agent,
        lambda used: used == {"cpus": 0.0, "mem": 0.0},
        what="the executor's share back",
    )


def test_kill_missed_during_a_partition_is_sent_again(
    make_cluster: Callable[..., LocalMesos], make_framework: Callable[..., Framework]
) -> None:
    cluster = make_cluster(**PATIENT)
    fw = make_framework(cluster)
    fw.wait_subscribed()
    start_sleeper(fw)
    agent_id = cluster.agents[0].agent_id
    cluster.partition_agent(agent_id)
    fw.driver.killTask({"value": "t1"})
    cluster.heal_agent(agent_id)
    assert fw.wait_state("t1", "TASK_KILLED")["source"] == "SOURCE_EXECUTOR"


def test_launch_the_agent_never_got_is_dropped_when_it_reregisters(
    make_cluster: Callable[..., LocalMesos], make_framework: Callable[..., Framework]
) -> None:
    cluster = make_cluster(**PATIENT)
    frameworks: list[Framework] = []
    # One framework after the other, so that each gets the agent's offer.
    for name, partition_aware, task_id in (("aware", True, "t1"), ("legacy", False, "t2")):
        fw = make_framework(
            cluster, framework_info(name=name, partition_aware=partition_aware, checkpoint=True)
        )
        fw.wait_subscribed()
        cluster.drop_next_launch(task_id, where="agent")
        offer = fw.next_offer()
        fw.launch(offer, [command_task(task_id, offer["agent_id"]["value"], "sleep 30")])
        fw.driver.reconcileTasks([{"task_id": {"value": task_id}}])
        fw.wait_state(task_id, "TASK_STAGING")
        frameworks.append(fw)
    aware, legacy = frameworks

    cluster.restart_agent(cluster.agents[0].agent_id)

    for fw, task_id, state in ((aware, "t1", "TASK_DROPPED"), (legacy, "t2", "TASK_LOST")):
        dropped = fw.wait_state(task_id, state)
        assert dropped["reason"] == "REASON_RECONCILIATION"
        assert dropped["source"] == "SOURCE_AGENT"
        assert dropped["message"] == "Reconciliation: task unknown to the agent"
        assert "uuid" in dropped, "the agent's updates are reliable"
    wait_for(
        lambda: [t["id"] for f in cluster.state()["frameworks"] for t in f["tasks"]] == [],
        what="the master to forget both tasks once their updates are acknowledged",
    )


def test_kill_naming_another_agent_is_ignored(cluster: LocalMesos, framework: Framework) -> None:
    start_sleeper(framework)
    agent_id = cluster.agents[0].agent_id

    def kill(on: str) -> None:
        status, _ = framework.raw_call(
            {"type": "KILL", "kill": {"task_id": {"value": "t1"}, "agent_id": {"value": on}}}
        )
        assert status == 202

    kill("elsewhere")
    # The master handled the call before answering: it sent no KILL to any agent.
    assert cluster.run_on_loop(lambda: set(cluster.master.agents[agent_id].killed_tasks)) == set()
    kill(agent_id)
    framework.wait_state("t1", "TASK_KILLED")


def test_kill_of_a_task_awaiting_its_resubscribing_executor(
    make_cluster: Callable[..., LocalMesos], make_framework: Callable[..., Framework]
) -> None:
    cluster = make_cluster(executor_reregistration_timeout=30.0, **PATIENT)
    fw = make_framework(cluster, framework_info(checkpoint=True))
    fw.wait_subscribed()
    offer = fw.next_offer()
    agent_id = offer["agent_id"]["value"]
    fw.launch(offer, [executor_task("e1", agent_id, {"mode": "run"})])
    fw.wait_state("e1", "TASK_RUNNING")
    pid = executor_pid(fw)
    os.kill(pid, signal.SIGSTOP)  # it will not subscribe again before the kill
    try:
        cluster.restart_agent(agent_id)
        fw.driver.killTask({"value": "e1"})
        killed = fw.wait_state("e1", "TASK_KILLED")
        assert killed["reason"] == "REASON_TASK_KILLED_DURING_LAUNCH"
        assert killed["source"] == "SOURCE_AGENT"
        assert killed["message"] == "Killed before delivery to the executor"
    finally:
        os.kill(pid, signal.SIGKILL)
