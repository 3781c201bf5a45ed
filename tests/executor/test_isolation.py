"""Two apps' executors on one agent: separate processes and sandboxes, no interference."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.executor.messages import COMPLETE, Stop
from controller.resources import ExecutionType, JobKind
from tests.executor.conftest import App, Framework, job_pid, wait_gone

pytestmark = pytest.mark.integration

SIMPLE_DAEMON = {
    "kind": JobKind.PYTHON,
    "callable": "demo_jobs.simple:run",
    "execution_type": ExecutionType.DAEMON,
    "cron": "* * * * * ?",
}


def apps(tarball: Path) -> tuple[App, App]:
    return App(key="tests.app-a", tarball=tarball), App(key="tests.app-b", tarball=tarball)


def completes(framework: Framework, task_id: str) -> int:
    return framework.runs_reported(task_id).count(COMPLETE)


def test_stopping_one_apps_executor_leaves_the_other_serving(
    framework: Framework, demo_tarball: Path
) -> None:
    app_a, app_b = apps(demo_tarball)
    a_daemon = framework.task(app_a, "tests.job-a", **SIMPLE_DAEMON)
    b_daemon = framework.task(app_b, "tests.job-b", **SIMPLE_DAEMON)
    a_id, b_id = framework.launch(a_daemon, b_daemon)
    framework.wait_for(
        lambda: completes(framework, a_id) >= 1 and completes(framework, b_id) >= 1,
        "both apps' daemons to run",
    )
    assert framework.sandbox(app_a).resolve() != framework.sandbox(app_b).resolve()
    assert framework.task_output(app_a, a_id).exists()
    assert not (framework.sandbox(app_a) / "tasks" / b_id).exists()
    assert not (framework.sandbox(app_b) / "tasks" / a_id).exists()

    framework.send(app_a, Stop())
    assert framework.wait_terminal(a_id)[-1].state == "TASK_KILLED"
    executor_a = app_a.executor_id(framework.agent_id)
    framework.wait_for(
        lambda: (executor_a, 0) in framework.scheduler.executor_exits, "app A's executor to exit"
    )
    before = completes(framework, b_id)
    framework.wait_for(lambda: completes(framework, b_id) >= before + 2, "app B to keep running")
    assert set(framework.states(b_id)) == {"TASK_RUNNING"}

    # A new task of app A gets a fresh executor while app B's goes on.
    (again,) = framework.launch(
        framework.task(app_a, "tests.job-a2", kind=JobKind.SCRIPT, command_line="bin/hello.sh")
    )
    assert [u.state for u in framework.wait_terminal(again)] == ["TASK_RUNNING", "TASK_FINISHED"]
    framework.kill(b_id)
    assert framework.wait_terminal(b_id)[-1].state == "TASK_KILLED"


def test_a_crashed_executor_fails_only_its_own_tasks_and_takes_its_jobs_along(
    framework: Framework, demo_tarball: Path
) -> None:
    app_a, app_b = apps(demo_tarball)
    a_sleepy = framework.task(
        app_a, "tests.sleepy-a", kind=JobKind.PYTHON, callable="demo_jobs.sleepy:run"
    )
    b_daemon = framework.task(app_b, "tests.job-b", **SIMPLE_DAEMON)
    a_id, b_id = framework.launch(a_sleepy, b_daemon)
    text = framework.wait_for_file(
        lambda: framework.task_output(app_a, a_id), lambda t: "pid" in t, "app A's job to start"
    )
    pid = job_pid(text)

    framework.cluster.crash_executor(framework.agent_id, app_a.executor_id(framework.agent_id))

    updates = framework.wait_terminal(a_id)
    assert [u.state for u in updates] == ["TASK_RUNNING", "TASK_FAILED"]
    assert updates[-1].source == "SOURCE_AGENT"
    assert updates[-1].reason == "REASON_EXECUTOR_TERMINATED"
    # The job host noticed its executor was gone and ended its process group.
    wait_gone(pid)
    before = completes(framework, b_id)
    framework.wait_for(lambda: completes(framework, b_id) >= before + 2, "app B to keep running")
    framework.kill(b_id)
    assert framework.wait_terminal(b_id)[-1].state == "TASK_KILLED"
