"""Bad task data, failing jobs and hostile parameters: each fails (or is harmless) on its own."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from controller.executor.messages import COMPLETE
from controller.resources import ExecutionType, JobKind
from tests.executor.conftest import App, Framework, payload, task_id_for

pytestmark = pytest.mark.integration


def test_malformed_data_fails_that_task_only(framework: Framework, demo_app: App) -> None:
    daemon = framework.task(
        demo_app,
        "tests.steady",
        kind=JobKind.PYTHON,
        callable="demo_jobs.simple:run",
        execution_type=ExecutionType.DAEMON,
        cron="* * * * * ?",
    )
    good = json.loads(payload("tests.bad", "x", kind=JobKind.SCRIPT, command_line="a").encode())
    broken = {
        "no data": None,
        "not JSON": base64.b64encode(b"\x00garbage").decode(),
        "version 2": _b64({**good, "version": 2}),
        "no command line": _b64({**good, "job": {**good["job"], "command_line": None}}),
        "bad cron": _b64(
            {**good, "job": {**good["job"], "execution_type": "DAEMON", "cron": "61 * * * * ?"}}
        ),
    }
    bad_tasks = {
        name: framework.raw_task(demo_app, task_id_for("tests.bad", n, framework.agent_id), data)
        for n, (name, data) in enumerate(broken.items())
    }
    bad_policy = framework.raw_task(
        demo_app, task_id_for("tests.bad", len(broken), framework.agent_id), _b64(good)
    )
    bad_policy["kill_policy"] = {"grace_period": "5secs"}
    bad_tasks["bad kill policy"] = bad_policy
    daemon_id, *bad_ids = framework.launch(daemon, *bad_tasks.values())

    expected = {
        "no data": "the task has no data",
        "not JSON": "task data is not JSON",
        "version 2": "task data version 2 is not supported",
        "no command line": "job.command_line is required for a script job",
        "bad cron": "job.cron '61 * * * * ?'",
        "bad kill policy": "kill_policy.grace_period is '5secs'",
    }
    for name, task_id in zip(bad_tasks, bad_ids, strict=True):
        updates = framework.wait_terminal(task_id)
        assert [u.state for u in updates] == ["TASK_ERROR"], name
        assert expected[name] in updates[0].message, name

    # The executor keeps serving: the daemon keeps running, and new tasks still run.
    reported = framework.runs_reported(daemon_id).count(COMPLETE)
    framework.wait_for(
        lambda: framework.runs_reported(daemon_id).count(COMPLETE) >= reported + 2,
        "more daemon runs after the errors",
    )
    (later,) = framework.launch(
        framework.task(demo_app, "tests.later", kind=JobKind.SCRIPT, command_line="bin/hello.sh")
    )
    assert [u.state for u in framework.wait_terminal(later)] == ["TASK_RUNNING", "TASK_FINISHED"]
    framework.kill(daemon_id)
    assert framework.wait_terminal(daemon_id)[-1].state == "TASK_KILLED"


def _b64(document: dict[str, object]) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


@pytest.mark.parametrize(
    ("job", "message"),
    [
        (
            {"kind": JobKind.PYTHON, "callable": "demo_jobs.failing:run"},
            "RuntimeError: failing on purpose in shard 0",
        ),
        (
            {"kind": JobKind.PYTHON, "callable": "demo_jobs.failing:exit_non_zero"},
            "exit status 4; stderr: exiting with status 4",
        ),
        (
            {"kind": JobKind.SCRIPT, "command_line": "bin/fail.sh"},
            "exit status 3; stderr: failing on purpose in shard 0",
        ),
        (
            {"kind": JobKind.SCRIPT, "command_line": "bin/missing.sh"},
            "cannot start 'bin/missing.sh': No such file or directory",
        ),
        (
            {"kind": JobKind.DATAFLOW, "source": "demo_jobs.dataflow:Letters"},
            "AttributeError: module 'demo_jobs.dataflow' has no attribute 'Letters'",
        ),
        (
            {"kind": JobKind.PYTHON, "callable": "demo_jobs.absent:run"},
            "ModuleNotFoundError: No module named 'demo_jobs.absent'",
        ),
    ],
    ids=["raises", "python-exit-4", "script-exit-3", "missing-script", "no-class", "no-module"],
)
def test_a_failing_job_fails_its_task_with_the_reason(
    framework: Framework, demo_app: App, job: dict[str, object], message: str
) -> None:
    (task_id,) = framework.launch(framework.task(demo_app, "tests.failing", **job))
    updates = framework.wait_terminal(task_id)
    assert [(u.state, u.message) for u in updates] == [
        ("TASK_RUNNING", ""),
        ("TASK_FAILED", message),
    ]


def test_a_failing_run_of_a_daemon_is_reported_and_the_task_goes_on(
    framework: Framework, demo_app: App
) -> None:
    task = framework.task(
        demo_app,
        "tests.failing-daemon",
        kind=JobKind.SCRIPT,
        command_line="bin/fail.sh",
        execution_type=ExecutionType.DAEMON,
        cron="* * * * * ?",
    )
    (task_id,) = framework.launch(task)
    framework.wait_for(
        lambda: framework.runs_reported(task_id).count(COMPLETE) >= 2, "two failed runs"
    )
    framework.kill(task_id)
    updates = framework.wait_terminal(task_id)
    reports = [u.data for u in updates if u.message == COMPLETE]
    for data in reports:
        assert json.loads(data or b"")["outcome"] == "failed"
        assert json.loads(data or b"")["detail"].startswith("exit status 3")
    assert updates[-1].state == "TASK_KILLED"


@pytest.mark.parametrize(
    "command_line",
    ["bin/hello.sh", "cd bin && ./hello.sh"],
    ids=["no-shell", "shell"],
)
def test_a_parameter_cannot_inject_shell_syntax(
    framework: Framework, demo_app: App, tmp_path: Path, command_line: str
) -> None:
    job_parameter = f"x; touch {tmp_path}/pwned"
    sharding_parameter = f"$(touch {tmp_path}/pwned2)'\"`touch {tmp_path}/pwned3`"
    task = framework.task(
        demo_app,
        "tests.hostile",
        kind=JobKind.SCRIPT,
        command_line=command_line,
        job_parameter=job_parameter,
        sharding_parameter=sharding_parameter,
    )
    (task_id,) = framework.launch(task)
    assert [u.state for u in framework.wait_terminal(task_id)] == [
        "TASK_RUNNING",
        "TASK_FINISHED",
    ]
    lines = framework.task_output(demo_app, task_id).read_text().splitlines()
    assert lines[1] == "argument count: 1"
    context = json.loads(lines[2].removeprefix("argument 1: "))
    assert context["job_parameter"] == job_parameter
    assert context["sharding_parameter"] == sharding_parameter
    assert list(tmp_path.iterdir()) == []
