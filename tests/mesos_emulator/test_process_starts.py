"""Local Mesos: agents start their processes off the event loop the master shares.

`LocalMesos.hold_process_starts` holds every new process before it starts, as a slow
container launch would: the master keeps answering meanwhile, and a task killed or
an executor shut down while its process was starting ends once, with the process
killed as soon as it exists."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devcluster.mesos import LocalMesos
from devcluster.mesos.processes import start_process
from tests.mesos_emulator.conftest import (
    Framework,
    command_task,
    executor_task,
    framework_info,
    http_get_json,
    sandbox_of,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def processes_in(directory: Path) -> list[int]:
    """Pids of the live processes whose working directory is `directory`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{name}/cwd")
            with open(f"/proc/{name}/stat") as stat:
                zombie = stat.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            continue
        if not zombie and Path(cwd) == directory:
            found.append(int(name))
    return found


def test_the_master_answers_while_processes_start(
    cluster: LocalMesos, framework: Framework
) -> None:
    cluster.hold_process_starts()
    offer = framework.next_offer()
    agent_id = offer["agent_id"]["value"]
    tasks = [command_task(f"t{n}", agent_id, "echo ran > ran.txt") for n in range(12)]
    framework.launch(offer, tasks)
    for n in range(12):
        framework.wait_state(f"t{n}", "TASK_STARTING")
    # Every start is held on a spawning thread; the event loop is free.
    state = http_get_json(cluster.master_url + "/state")
    [tracked] = state["frameworks"]
    assert sorted(t["state"] for t in tracked["tasks"]) == ["TASK_STARTING"] * 12
    fw_id = framework.framework_id
    assert not any((sandbox_of(cluster, fw_id, f"t{n}") / "ran.txt").exists() for n in range(12))
    cluster.hold_process_starts(False)
    for n in range(12):
        framework.wait_state(f"t{n}", "TASK_FINISHED")
        assert framework.distinct_states(f"t{n}") == [
            "TASK_STARTING",
            "TASK_RUNNING",
            "TASK_FINISHED",
        ]
        assert (sandbox_of(cluster, framework.framework_id, f"t{n}") / "ran.txt").exists()


def test_a_task_killed_while_its_process_starts_is_killed_once_it_exists(
    cluster: LocalMesos, make_framework: Callable[..., Framework]
) -> None:
    fw = make_framework(cluster, framework_info(capabilities=[{"type": "TASK_KILLING_STATE"}]))
    fw.wait_subscribed()
    cluster.hold_process_starts()
    offer = fw.next_offer()
    fw.launch(offer, [command_task("t1", offer["agent_id"]["value"], "exec sleep 600")])
    fw.wait_state("t1", "TASK_STARTING")
    fw.driver.killTask({"value": "t1"})
    fw.wait_state("t1", "TASK_KILLING")
    cluster.hold_process_starts(False)
    killed = fw.wait_state("t1", "TASK_KILLED")
    assert killed["message"] == "Command terminated with signal Terminated"
    assert fw.distinct_states("t1") == ["TASK_STARTING", "TASK_KILLING", "TASK_KILLED"]
    directory = sandbox_of(cluster, fw.framework_id, "t1")
    wait_for(lambda: not processes_in(directory), what="the task's process to be gone")


def test_an_executor_shut_down_while_its_process_starts_ends_once(
    cluster: LocalMesos, framework: Framework
) -> None:
    cluster.hold_process_starts()
    offer = framework.next_offer()
    agent_id = offer["agent_id"]["value"]
    framework.launch(offer, [executor_task("e1", agent_id, {"mode": "run"})])
    directory = sandbox_of(cluster, framework.framework_id, "ex1")
    status, _ = framework.raw_call(
        {
            "type": "SHUTDOWN",
            "shutdown": {"executor_id": {"value": "ex1"}, "agent_id": {"value": agent_id}},
        }
    )
    assert status == 202
    ended = framework.wait_state("e1", "TASK_FAILED")
    assert ended["reason"] == "REASON_EXECUTOR_TERMINATED"
    framework.wait(lambda: framework.events("executor_lost"), "the executor's FAILURE event")
    cluster.hold_process_starts(False)
    # The executor's process starts now, and is killed without a second ending.
    wait_for(lambda: not processes_in(directory), what="the executor's process to be gone")
    offer = framework.next_offer()
    framework.launch(offer, [command_task("after", agent_id, "true")])
    framework.wait_state("after", "TASK_FINISHED")
    assert framework.distinct_states("e1") == ["TASK_FAILED"]
    assert len(framework.events("executor_lost")) == 1


def test_a_start_whose_executable_is_still_open_for_writing_is_tried_again(
    tmp_path: Path,
) -> None:
    # Another process holds the script open for writing, as a sibling thread's child
    # does between its fork and its exec while a fetch writes the sandbox.
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/sh\necho ran > ran.txt\n")
    script.chmod(0o755)
    with open(script, "ab") as writing:
        holder = subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.stdin.read()"],
            stdin=subprocess.PIPE,
            pass_fds=(writing.fileno(),),
        )
    assert holder.stdin is not None
    paused: list[float] = []

    def pauses() -> Iterator[float]:
        # The first start failed: the holder lets go, and the next one is due at once.
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait()
        paused.append(0.0)
        yield 0.0

    child = start_process(["./job.sh"], cwd=tmp_path, env={}, executable=None, busy_pauses=pauses())

    assert child.wait() == 0
    assert paused == [0.0]
    assert (tmp_path / "ran.txt").read_text() == "ran\n"


def test_a_start_still_busy_after_its_pauses_fails_with_the_cause(tmp_path: Path) -> None:
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    with open(script, "ab"), pytest.raises(OSError) as raised:
        start_process(["./job.sh"], cwd=tmp_path, env={}, executable=None, busy_pauses=[0.0])
    assert raised.value.errno == errno.ETXTBSY
