"""The executor when its agent goes away and comes back (an agent process restart):
with checkpointing it reconnects and delivers what happened meanwhile, or gives up
after MESOS_RECOVERY_TIMEOUT; without checkpointing it stops its jobs at once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest

from controller.executor.messages import COMPLETE
from controller.resources import ExecutionType, JobKind
from devcluster.mesos import AgentSpec, LocalMesos
from tests.executor.conftest import (
    App,
    Framework,
    job_pid,
    parent_of,
    process_alive,
    start_framework,
    wait_gone,
)

pytestmark = pytest.mark.integration

SLEEP_SCRIPT = {"kind": JobKind.SCRIPT, "command_line": "bin/sleep.sh"}


@pytest.fixture
def make_mesos(start_mesos: Callable[..., LocalMesos]) -> Callable[..., LocalMesos]:
    def make(**knobs: Any) -> LocalMesos:
        return start_mesos(
            [AgentSpec(cpus=8, mem=8192)],
            heartbeat_interval=2.0,
            offer_refresh=0.2,
            executor_registration_timeout=30.0,
            **knobs,
        )

    return make


@pytest.fixture
def make_framework(
    make_mesos: Callable[..., LocalMesos],
) -> Iterator[Callable[[LocalMesos, bool], Framework]]:
    # Depends on make_mesos so that frameworks stop before their clusters do.
    frameworks: list[Framework] = []

    def make(cluster: LocalMesos, checkpoint: bool) -> Framework:
        frameworks.append(start_framework(cluster, checkpoint))
        return frameworks[-1]

    yield make
    for framework in frameworks:
        framework.tear_down()


def executor_log(framework: Framework, app: App) -> str:
    return (framework.sandbox(app) / "stderr").read_text()


def test_executor_rides_out_an_agent_restart(
    make_mesos: Callable[..., LocalMesos],
    make_framework: Callable[[LocalMesos, bool], Framework],
    demo_app: App,
) -> None:
    # pymesos retries the agent after 2, 4, 8 s (with jitter): allow for that.
    cluster = make_mesos(executor_reregistration_timeout=15.0)
    framework = make_framework(cluster, True)
    task = framework.task(
        demo_app,
        "tests.steady",
        kind=JobKind.PYTHON,
        callable="demo_jobs.simple:run",
        execution_type=ExecutionType.DAEMON,
        cron="* * * * * ?",
    )
    (task_id,) = framework.launch(task)
    framework.wait_for(lambda: COMPLETE in framework.runs_reported(task_id), "a daemon run")
    output = partial(framework.task_output, demo_app, task_id)

    cluster.bring_agent_down(framework.agent_id)
    runs = len(output().read_text().splitlines())
    framework.wait_for_file(
        output, lambda text: len(text.splitlines()) >= runs + 2, "runs while the agent is down"
    )
    cluster.bring_agent_up(framework.agent_id)

    # What the executor reported meanwhile reaches the framework once it is back.
    framework.wait_for(
        lambda: framework.runs_reported(task_id).count(COMPLETE) >= runs + 2,
        "the runs made while the agent was down",
    )
    framework.kill(task_id)
    states = [u.state for u in framework.wait_terminal(task_id)]
    assert set(states[:-1]) == {"TASK_RUNNING"} and states[-1] == "TASK_KILLED"
    log = executor_log(framework, demo_app)
    assert "re-registered with agent" in log
    assert log.count("registered as executor") == 1, "the same executor carried on"


def test_executor_without_checkpointing_stops_its_jobs_when_the_agent_goes(
    make_mesos: Callable[..., LocalMesos],
    make_framework: Callable[[LocalMesos, bool], Framework],
    demo_app: App,
) -> None:
    cluster = make_mesos()
    framework = make_framework(cluster, False)
    (task_id,) = framework.launch(framework.task(demo_app, "tests.sleep", **SLEEP_SCRIPT))
    output = partial(framework.task_output, demo_app, task_id)
    pid = job_pid(framework.wait_for_file(output, lambda t: "pid" in t, "the job"))
    executor = parent_of(pid)
    framework.wait_for(lambda: framework.states(task_id) == ["TASK_RUNNING"], "TASK_RUNNING")

    cluster.bring_agent_down(framework.agent_id)
    # The agent sets MESOS_CHECKPOINT=0, which pymesos alone would take for "on".
    wait_gone(executor)
    assert not process_alive(pid)
    assert "got SIGTERM" in output().read_text(), "the executor stopped its job itself"
    assert "does not checkpoint; shutting down" in executor_log(framework, demo_app)
    cluster.bring_agent_up(framework.agent_id)
    updates = framework.wait_terminal(task_id)
    assert [(u.state, u.reason) for u in updates] == [
        ("TASK_RUNNING", ""),
        ("TASK_LOST", "REASON_AGENT_DISCONNECTED"),
    ]


def test_executor_gives_up_after_the_recovery_timeout(
    make_mesos: Callable[..., LocalMesos],
    make_framework: Callable[[LocalMesos, bool], Framework],
    demo_app: App,
) -> None:
    cluster = make_mesos(recovery_timeout=1.0)
    framework = make_framework(cluster, True)
    (task_id,) = framework.launch(framework.task(demo_app, "tests.sleep", **SLEEP_SCRIPT))
    output = partial(framework.task_output, demo_app, task_id)
    pid = job_pid(framework.wait_for_file(output, lambda t: "pid" in t, "the job"))
    executor = parent_of(pid)
    framework.wait_for(lambda: framework.states(task_id) == ["TASK_RUNNING"], "TASK_RUNNING")

    cluster.bring_agent_down(framework.agent_id)
    wait_gone(executor)
    assert "got SIGTERM" in output().read_text(), "the executor stopped its job itself"
    assert "did not come back within the recovery timeout" in executor_log(framework, demo_app)
    cluster.bring_agent_up(framework.agent_id)
    # The recovered agent finds its executor gone.
    updates = framework.wait_terminal(task_id)
    assert [(u.state, u.reason) for u in updates] == [
        ("TASK_RUNNING", ""),
        ("TASK_FAILED", "REASON_EXECUTOR_TERMINATED"),
    ]
