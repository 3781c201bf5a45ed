"""Local Mesos conformance: offers and task launches driven by the unmodified pymesos
scheduler driver (command tasks, URIs, custom executors, kill, messages)."""

from __future__ import annotations

import base64
import http.server
import io
import json
import sys
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devcluster.mesos import AgentSpec, LocalMesos
from tests.mesos_emulator.conftest import (
    WAIT,
    Framework,
    command_task,
    executor_info,
    executor_task,
    framework_info,
    http_get_json,
    sandbox_of,
    scalar,
    small,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def running(pid: int) -> bool:
    """Whether `pid` runs; a zombie waiting for its reaper has ended."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def executor_log(
    cluster: LocalMesos, framework_id: str, executor_id: str = "ex1"
) -> list[dict[str, object]]:
    path = sandbox_of(cluster, framework_id, executor_id) / "events.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_offer_describes_the_agent(
    make_cluster: Callable[..., LocalMesos], make_framework: Callable[..., Framework]
) -> None:
    spec = AgentSpec(
        cpus=2.0,
        mem=1024.0,
        disk=2048.0,
        ports=[(31000, 31009)],
        attributes={"rack": "r1", "zone": 3},
        hostname="agent-x",
    )
    cluster = make_cluster([spec])
    fw = make_framework(cluster)
    framework_id = fw.wait_subscribed()
    offer = fw.next_offer()
    assert offer["framework_id"]["value"] == framework_id
    assert offer["agent_id"]["value"] == cluster.agents[0].agent_id
    assert offer["hostname"] == "agent-x"
    assert offer["executor_ids"] == []
    by_name = {r["name"]: r for r in offer["resources"]}
    assert by_name["cpus"]["scalar"]["value"] == 2.0
    assert by_name["mem"]["scalar"]["value"] == 1024.0
    assert by_name["disk"]["scalar"]["value"] == 2048.0
    assert by_name["ports"]["ranges"]["range"] == [{"begin": 31000, "end": 31009}]
    attributes = {a["name"]: a for a in offer["attributes"]}
    assert attributes["rack"] == {"name": "rack", "type": "TEXT", "text": {"value": "r1"}}
    assert attributes["zone"]["scalar"]["value"] == 3.0


def test_command_task_writes_sandbox_file_and_finishes(
    cluster: LocalMesos, make_framework: Callable[..., Framework]
) -> None:
    framework = make_framework(cluster, auto_ack=False)
    framework.wait_subscribed()
    offer = framework.next_offer()
    agent_id = offer["agent_id"]["value"]
    framework.launch(
        offer, [command_task("t1", agent_id, "echo hello > out.txt && echo $MESOS_SANDBOX")]
    )
    for state in ("TASK_STARTING", "TASK_RUNNING"):
        update = framework.wait_state("t1", state)
        assert update["source"] == "SOURCE_EXECUTOR"
        assert update["agent_id"]["value"] == agent_id
        assert len(base64.b64decode(update["uuid"])) == 16
        framework.ack(update)
    finished = framework.wait_state("t1", "TASK_FINISHED")
    assert finished["message"] == "Command exited with status 0"
    sandbox = sandbox_of(cluster, framework.framework_id, "t1")
    assert (sandbox / "out.txt").read_text() == "hello\n"
    assert (sandbox / "stdout").read_text().strip() == str(sandbox)
    state = http_get_json(cluster.master_url + "/state")
    [fw_state] = state["frameworks"]
    assert [t["id"] for t in fw_state["tasks"]] == ["t1"], (
        "kept until the terminal update is acknowledged"
    )
    assert fw_state["tasks"][0]["state"] == "TASK_FINISHED"
    framework.ack(finished)
    framework.wait(
        lambda: (
            [t["id"] for f in cluster.state()["frameworks"] for t in f["completed_tasks"]] == ["t1"]
        ),
        "t1 to move to completed_tasks",
    )
    assert framework.distinct_states("t1") == ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]


def test_processes_a_command_task_leaves_behind_are_killed(
    cluster: LocalMesos, framework: Framework
) -> None:
    offer = framework.next_offer()
    # A background child in a process group of its own that ignores SIGTERM.
    command = "set -m; (trap '' TERM; exec sleep 600) & echo $! > child.pid"
    framework.launch(offer, [command_task("t1", offer["agent_id"]["value"], command)])
    framework.wait_state("t1", "TASK_FINISHED")
    pid = int((sandbox_of(cluster, framework.framework_id, "t1") / "child.pid").read_text())
    wait_for(lambda: not running(pid), what="the task's leftover child to be killed")


def test_failing_command_reports_exit_status(framework: Framework) -> None:
    offer = framework.next_offer()
    framework.launch(offer, [command_task("t1", offer["agent_id"]["value"], "exit 3")])
    failed = framework.wait_state("t1", "TASK_FAILED")
    assert failed["message"] == "Command exited with status 3"
    assert "TASK_RUNNING" in framework.states("t1")


def test_shell_false_execs_value_with_arguments(cluster: LocalMesos, framework: Framework) -> None:
    offer = framework.next_offer()
    task = command_task("t1", offer["agent_id"]["value"], "ignored")
    task["command"] = {
        "shell": False,
        "value": "printf",
        "arguments": ["printf", "%s-%s", "a b", "$HOME"],
    }
    framework.launch(offer, [task])
    framework.wait_state("t1", "TASK_FINISHED")
    assert (sandbox_of(cluster, framework.framework_id, "t1") / "stdout").read_text() == "a b-$HOME"


class _Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: _Files(*a, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def test_uris_are_fetched_extracted_and_cached(
    cluster: LocalMesos, framework: Framework, file_server: tuple[str, Path], tmp_path: Path
) -> None:
    base_url, root = file_server
    script = tmp_path / "tool.sh"
    script.write_text("#!/bin/sh\necho tool-ran\n")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = b"from-archive\n"
        member = tarfile.TarInfo("bundle/inner.txt")
        member.size = len(data)
        archive.addfile(member, io.BytesIO(data))
    (root / "bundle.tar.gz").write_bytes(buffer.getvalue())
    (root / "config.json").write_text('{"k": 1}')
    uris = [
        {"value": str(script), "executable": True},
        {"value": f"{base_url}/bundle.tar.gz"},
        {"value": f"{base_url}/config.json", "cache": True, "output_file": "conf.json"},
    ]
    command = (
        "./tool.sh > tool.out && cat bundle/inner.txt > inner.out"
        " && cat conf.json > conf.out && echo $GREETING > env.out"
    )
    env = {"variables": [{"name": "GREETING", "value": "hi there"}]}
    offer = framework.next_offer()
    agent_id = offer["agent_id"]["value"]
    task = command_task("t1", agent_id, command)
    task["command"].update({"uris": uris, "environment": env})
    framework.launch(offer, [task])
    framework.wait_state("t1", "TASK_FINISHED")
    sandbox = sandbox_of(cluster, framework.framework_id, "t1")
    assert (sandbox / "tool.out").read_text() == "tool-ran\n"
    assert (sandbox / "inner.out").read_text() == "from-archive\n"
    assert (sandbox / "conf.out").read_text() == '{"k": 1}'
    assert (sandbox / "env.out").read_text() == "hi there\n"
    # A cached URI is served from the agent's cache even after the origin changed.
    (root / "config.json").write_text('{"k": 2}')
    offer = framework.next_offer()
    task = command_task("t2", agent_id, "cat conf.json > conf.out")
    task["command"]["uris"] = [uris[2]]
    framework.launch(offer, [task])
    framework.wait_state("t2", "TASK_FINISHED")
    assert (
        sandbox_of(cluster, framework.framework_id, "t2") / "conf.out"
    ).read_text() == '{"k": 1}'


def test_fetch_failure_fails_the_task(framework: Framework) -> None:
    offer = framework.next_offer()
    task = command_task("t1", offer["agent_id"]["value"], "true")
    task["command"]["uris"] = [{"value": "/nonexistent/file.bin"}]
    framework.launch(offer, [task])
    failed = framework.wait_state("t1", "TASK_FAILED")
    assert failed["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
    assert "/nonexistent/file.bin" in failed["message"]


def test_custom_executor_environment_data_messages_and_reuse(
    cluster: LocalMesos, framework: Framework
) -> None:
    offer = framework.next_offer()
    agent = cluster.agents[0]
    executor = executor_info(
        command={
            "value": f"{sys.executable} {Path(__file__).with_name('executor_app.py')}",
            "environment": {"variables": [{"name": "TEST_SETTING", "value": "on"}]},
        }
    )
    framework.launch(offer, [executor_task("e1", agent.agent_id, {"mode": "run"}, executor)])
    running = framework.wait_state("e1", "TASK_RUNNING")
    assert running["source"] == "SOURCE_EXECUTOR"
    assert running["executor_id"]["value"] == "ex1"
    assert base64.b64decode(running["data"]) == b"payload-e1"
    assert running["message"] == "running"
    framework.ack(running)

    log = executor_log(cluster, framework.framework_id)
    [registered] = [e for e in log if e["event"] == "registered"]
    sandbox = sandbox_of(cluster, framework.framework_id, "ex1")
    env = registered["env"]
    assert isinstance(env, dict)
    assert env["MESOS_FRAMEWORK_ID"] == framework.framework_id
    assert env["MESOS_EXECUTOR_ID"] == "ex1"
    assert env["MESOS_SLAVE_ID"] == agent.agent_id
    assert env["MESOS_AGENT_ENDPOINT"] == agent.endpoint
    assert env["MESOS_DIRECTORY"] == env["MESOS_SANDBOX"] == str(sandbox)
    assert env["MESOS_CHECKPOINT"] == "0"
    assert env["MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"] == "1secs"
    assert "MESOS_RECOVERY_TIMEOUT" not in env
    assert env["TEST_SETTING"] == "on"
    assert registered["cwd"] == str(sandbox)

    framework.driver.sendFrameworkMessage(
        {"value": "ex1"}, {"value": agent.agent_id}, base64.b64encode(b"ping").decode()
    )
    [message] = framework.wait(lambda: framework.events("message"), "the executor's echo")
    assert base64.b64decode(message["data"]) == b"echo:ping"
    assert message["executor_id"]["value"] == "ex1"
    assert message["agent_id"]["value"] == agent.agent_id

    second = framework.next_offer()
    assert [e["value"] for e in second["executor_ids"]] == ["ex1"]
    framework.launch(
        second, [executor_task("e2", agent.agent_id, {"mode": "finish", "seconds": 0}, executor)]
    )
    framework.ack(framework.wait_state("e2", "TASK_RUNNING"))
    framework.ack(framework.wait_state("e2", "TASK_FINISHED"))
    log = executor_log(cluster, framework.framework_id)
    assert [e["event"] for e in log].count("registered") == 1, "the executor is reused"
    assert [e.get("task_id") for e in log if e["event"] == "launch"] == ["e1", "e2"]


def test_checkpointing_framework_gets_recovery_environment(
    cluster: LocalMesos, make_framework: Callable[..., Framework]
) -> None:
    fw = make_framework(cluster, framework_info(checkpoint=True))
    fw.wait_subscribed()
    offer = fw.next_offer()
    fw.launch(
        offer, [executor_task("e1", offer["agent_id"]["value"], {"mode": "finish", "seconds": 0})]
    )
    fw.wait_state("e1", "TASK_RUNNING")
    [registered] = [e for e in executor_log(cluster, fw.framework_id) if e["event"] == "registered"]
    env = registered["env"]
    assert isinstance(env, dict)
    assert env["MESOS_CHECKPOINT"] == "1"
    assert env["MESOS_RECOVERY_TIMEOUT"] == "15mins"
    assert env["MESOS_SUBSCRIPTION_BACKOFF_MAX"] == "2secs"


def test_kill_command_task(make_framework: Callable[..., Framework], cluster: LocalMesos) -> None:
    fw = make_framework(cluster, framework_info(capabilities=[{"type": "TASK_KILLING_STATE"}]))
    fw.wait_subscribed()
    offer = fw.next_offer()
    fw.launch(offer, [command_task("t1", offer["agent_id"]["value"], "sleep 60")])
    fw.wait_state("t1", "TASK_RUNNING")
    fw.ack_all("t1")
    fw.driver.killTask({"value": "t1"})
    fw.ack(fw.wait_state("t1", "TASK_KILLING"))
    killed = fw.wait_state("t1", "TASK_KILLED")
    assert killed["message"] == "Command terminated with signal Terminated"


def test_kill_executor_task_goes_through_the_executor(
    cluster: LocalMesos, framework: Framework
) -> None:
    offer = framework.next_offer()
    framework.launch(offer, [executor_task("e1", offer["agent_id"]["value"], {"mode": "run"})])
    framework.ack(framework.wait_state("e1", "TASK_RUNNING"))
    framework.driver.killTask({"value": "e1"})
    killed = framework.wait_state("e1", "TASK_KILLED")
    assert killed["message"] == "killed"
    assert {"event": "kill", "task_id": "e1"} in executor_log(cluster, framework.framework_id)


def test_kill_of_unknown_task_is_answered_like_reconciliation(
    cluster: LocalMesos, framework: Framework, make_framework: Callable[..., Framework]
) -> None:
    framework.driver.killTask({"value": "nope"})
    answer = framework.wait_state("nope", "TASK_UNKNOWN")
    assert answer["reason"] == "REASON_RECONCILIATION"
    assert "uuid" not in answer
    legacy = make_framework(cluster, framework_info(name="legacy", partition_aware=False))
    legacy.wait_subscribed()
    legacy.driver.killTask({"value": "nope"})
    assert legacy.wait_state("nope", "TASK_LOST")["reason"] == "REASON_RECONCILIATION"


def test_shutdown_executor_kills_its_tasks(cluster: LocalMesos, framework: Framework) -> None:
    offer = framework.next_offer()
    agent_id = offer["agent_id"]["value"]
    framework.launch(offer, [executor_task("e1", agent_id, {"mode": "run"})])
    framework.ack(framework.wait_state("e1", "TASK_RUNNING"))
    status, _ = framework.raw_call(
        {
            "type": "SHUTDOWN",
            "shutdown": {"executor_id": {"value": "ex1"}, "agent_id": {"value": agent_id}},
        }
    )
    assert status == 202
    framework.ack(framework.wait_state("e1", "TASK_KILLED"))
    lost = framework.wait(lambda: framework.events("executor_lost"), "the executor's FAILURE event")
    assert lost[0]["executor_id"] == "ex1"
    assert {"event": "shutdown"} in executor_log(cluster, framework.framework_id)


def test_executor_and_task_resources_are_accounted(
    make_cluster: Callable[..., LocalMesos], make_framework: Callable[..., Framework]
) -> None:
    cluster = make_cluster([AgentSpec(cpus=1.0, mem=256.0, ports=[])])
    fw = make_framework(cluster)
    fw.wait_subscribed()
    offer = fw.next_offer()
    agent_id = offer["agent_id"]["value"]
    fw.launch(offer, [executor_task("e1", agent_id, {"mode": "run"})])
    fw.ack(fw.wait_state("e1", "TASK_RUNNING"))
    leftover = fw.next_offer()
    cpus = {r["name"]: r["scalar"]["value"] for r in leftover["resources"]}
    assert cpus == {"cpus": pytest.approx(0.8), "mem": pytest.approx(192.0), "disk": 10240.0}
    fw.driver.declineOffer(leftover["id"], {"refuse_seconds": 0.05})
    fw.driver.killTask({"value": "e1"})
    fw.ack(fw.wait_state("e1", "TASK_KILLED"))
    status, _ = fw.raw_call(
        {
            "type": "SHUTDOWN",
            "shutdown": {"executor_id": {"value": "ex1"}, "agent_id": {"value": agent_id}},
        }
    )
    assert status == 202

    def full_offer() -> bool:
        for offer in fw.events("offer")[-3:]:
            amounts = {r["name"]: r["scalar"]["value"] for r in offer["resources"]}
            if amounts.get("cpus") == 1.0 and amounts.get("mem") == 256.0:
                return True
        return False

    fw.wait(full_offer, "the executor's resources to be offered again", WAIT)


def test_several_offers_of_one_agent_in_one_accept(
    make_cluster: Callable[..., LocalMesos], make_framework: Callable[..., Framework]
) -> None:
    cluster = make_cluster([AgentSpec(cpus=2.0, mem=512.0, ports=[])])
    fw = make_framework(cluster)
    fw.wait_subscribed()
    first = fw.next_offer()
    agent_id = first["agent_id"]["value"]
    fw.launch(
        first, [command_task("short", agent_id, "sleep 60", resources=small(cpus=1.0, mem=256.0))]
    )
    second = fw.next_offer()
    fw.wait_state("short", "TASK_RUNNING")
    fw.driver.killTask({"value": "short"})
    fw.wait_state("short", "TASK_KILLED")
    third = fw.next_offer()
    assert second["id"] != third["id"]
    big = command_task(
        "big", agent_id, "true", resources=[scalar("cpus", 2.0), scalar("mem", 512.0)]
    )
    fw.driver.launchTasks([second["id"], third["id"]], [big])
    assert fw.wait_state("big", "TASK_FINISHED")["agent_id"]["value"] == agent_id


def test_offer_ids_are_single_use_and_invalid_offers_drop_tasks(
    make_cluster: Callable[..., LocalMesos], make_framework: Callable[..., Framework]
) -> None:
    cluster = make_cluster([AgentSpec(), AgentSpec()])
    fw = make_framework(cluster)
    fw.wait_subscribed()
    one, two = fw.next_offer(), fw.next_offer()
    assert one["agent_id"] != two["agent_id"]
    fw.driver.launchTasks(
        [one["id"], two["id"]], [command_task("mixed", one["agent_id"]["value"], "true")]
    )
    dropped = fw.wait_state("mixed", "TASK_DROPPED")
    assert dropped["reason"] == "REASON_INVALID_OFFERS"
    assert dropped["source"] == "SOURCE_MASTER"
    assert "Aggregated offers must belong to one single agent" in dropped["message"]
    assert "uuid" not in dropped
    fw.launch(one, [command_task("reused", one["agent_id"]["value"], "true")])
    stale = fw.wait_state("reused", "TASK_DROPPED")
    assert (
        stale["message"]
        == f"Task launched with invalid offers: Offer {one['id']['value']} is no longer valid"
    )


def test_invalid_offer_is_task_lost_without_partition_awareness(
    cluster: LocalMesos, make_framework: Callable[..., Framework]
) -> None:
    fw = make_framework(cluster, framework_info(partition_aware=False))
    fw.wait_subscribed()
    offer = fw.next_offer()
    fw.driver.launchTasks(
        [{"value": "no-such-offer"}], [command_task("t1", offer["agent_id"]["value"], "true")]
    )
    assert fw.wait_state("t1", "TASK_LOST")["reason"] == "REASON_INVALID_OFFERS"


@pytest.mark.parametrize(
    ("task_id", "mutate", "message"),
    [
        ("", lambda t: None, "ID must not be empty"),
        ("a/b", lambda t: None, "'a/b' contains invalid characters"),
        ("x" * 256, lambda t: None, "ID must not be greater than 255 characters"),
        ("ctl\x01", lambda t: None, "contains invalid characters"),
        ("nores", lambda t: t.pop("resources"), "Task uses no resources"),
        ("huge", lambda t: t.update(resources=small(cpus=99.0)), "is more than available"),
        ("both", lambda t: t.update(executor=executor_info()), "at least one (but not both)"),
        (
            "wrongagent",
            lambda t: t.update(agent_id={"value": "elsewhere"}),
            "Task uses invalid agent elsewhere",
        ),
    ],
)
def test_invalid_task_is_task_error(
    framework: Framework, task_id: str, mutate: Callable[[dict[str, object]], object], message: str
) -> None:
    offer = framework.next_offer()
    task = command_task(task_id, offer["agent_id"]["value"], "true")
    mutate(task)
    framework.launch(offer, [task])
    error = framework.wait_state(task_id, "TASK_ERROR")
    assert error["reason"] == "REASON_TASK_INVALID"
    assert error["source"] == "SOURCE_MASTER"
    assert message in error["message"]
    assert "uuid" not in error


def test_duplicate_task_id_is_task_error(framework: Framework) -> None:
    offer = framework.next_offer()
    agent_id = offer["agent_id"]["value"]
    framework.launch(
        offer, [command_task("dup", agent_id, "sleep 30"), command_task("dup", agent_id, "true")]
    )
    framework.wait_state("dup", "TASK_RUNNING")
    error = framework.wait_state("dup", "TASK_ERROR")
    assert error["message"] == "Task has duplicate ID: dup"


def test_decline_filter_then_revive(
    make_cluster: Callable[..., LocalMesos], make_framework: Callable[..., Framework]
) -> None:
    cluster = make_cluster([AgentSpec(), AgentSpec()])
    fw = make_framework(cluster)
    fw.wait_subscribed()
    first = fw.next_offer()
    declined_agent = first["agent_id"]["value"]
    fw.driver.declineOffer(first["id"], {"refuse_seconds": 3600})
    other = fw.next_offer()
    assert other["agent_id"]["value"] != declined_agent
    fw.driver.declineOffer(other["id"], {"refuse_seconds": 0.05})
    # The other agent is re-offered several times while the declined one stays filtered.
    for _ in range(3):
        offer = fw.next_offer()
        assert offer["agent_id"]["value"] != declined_agent
        fw.driver.declineOffer(offer["id"], {"refuse_seconds": 0.05})
    fw.driver.reviveOffers()
    fw.next_offer(agent_id=declined_agent)


def test_suppress_stops_offers_until_revive(cluster: LocalMesos, framework: Framework) -> None:
    offer = framework.next_offer()
    framework.driver.suppressOffers()
    framework.driver.declineOffer(offer["id"], {"refuse_seconds": 0.05})
    # A later explicit reconciliation answer proves the master processed the
    # suppress before any offer that could still come.
    framework.driver.reconcileTasks([{"task_id": {"value": "marker"}}])
    framework.wait_state("marker", "TASK_UNKNOWN")
    offers_before = len(framework.events("offer"))
    framework.driver.reconcileTasks([{"task_id": {"value": "marker2"}}])
    framework.wait_state("marker2", "TASK_UNKNOWN")
    assert cluster.outstanding_offers() == []
    assert len(framework.events("offer")) == offers_before
    framework.driver.reviveOffers()
    framework.next_offer()
