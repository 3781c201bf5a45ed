"""Planning a task from its TaskInfo: every way a payload can be unusable is a PlanError."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from controller.executor.plans import (
    DataflowWork,
    PlanError,
    PythonWork,
    ScriptWork,
    plan_task,
)
from controller.resources import ExecutionType, JobKind
from controller.taskdata import JobConfig, ShardingContext, TaskPayload

pytestmark = pytest.mark.unit

TASK_ID = "ns.job@-@0@-@READY@-@agent-1@-@0a1b"


def payload(**job: Any) -> TaskPayload:
    fields: dict[str, Any] = {
        "kind": JobKind.SCRIPT,
        "execution_type": ExecutionType.TRANSIENT,
        "command_line": "bin/hello.sh",
        "cron": "0/5 * * * * ?",
    }
    fields.update(job)
    return TaskPayload(
        job=JobConfig(**fields),
        sharding=ShardingContext(
            job_name="ns.job", task_id=TASK_ID, sharding_total_count=2, sharding_item=0
        ),
    )


def task_info(data: str | None, **extra: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"task_id": {"value": TASK_ID}, "name": "ns.job@-@0", **extra}
    if data is not None:
        info["data"] = data
    return info


def raw(document: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def test_each_kind_plans() -> None:
    script = plan_task(task_info(payload().encode_base64()))
    assert script.work == ScriptWork("bin/hello.sh")
    assert script.task_id == TASK_ID
    assert not script.is_daemon and script.schedule is None and script.grace_seconds is None

    python = plan_task(
        task_info(
            payload(kind=JobKind.PYTHON, command_line=None, callable="a.b:run").encode_base64()
        )
    )
    assert python.work == PythonWork(module="a.b", attribute="run")

    dataflow = plan_task(
        task_info(
            payload(
                kind=JobKind.DATAFLOW,
                command_line=None,
                dataflow_source="demo_jobs.dataflow:Numbers",
                streaming=True,
                execution_type=ExecutionType.DAEMON,
                time_zone="Europe/Paris",
            ).encode_base64()
        )
    )
    assert dataflow.work == DataflowWork("demo_jobs.dataflow", "Numbers", streaming=True)
    assert dataflow.is_daemon and dataflow.schedule is not None


def test_kill_policy_grace() -> None:
    info = task_info(
        payload().encode_base64(), kill_policy={"grace_period": {"nanoseconds": 2_500_000_000}}
    )
    assert plan_task(info).grace_seconds == 2.5


GOOD = json.loads(payload().encode())


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (None, "has no data"),
        ("", "has no data"),
        ("%%%", "not valid base64"),
        (base64.b64encode(b"not json").decode(), "not JSON"),
        (base64.b64encode(b"[]").decode(), "must be a JSON object"),
        (raw({**GOOD, "version": 2}), "version 2 is not supported"),
        (raw({**GOOD, "job": {**GOOD["job"], "kind": "java"}}), "invalid"),
        (raw({**GOOD, "job": {**GOOD["job"], "command_line": None}}), "command_line is required"),
        (raw({**GOOD, "job": {**GOOD["job"], "command_line": "a 'b"}}), "balance its quotes"),
        (
            raw({**GOOD, "job": {**GOOD["job"], "kind": "python", "callable": "no colon"}}),
            "job.callable is 'no colon'",
        ),
        (
            raw({**GOOD, "job": {**GOOD["job"], "kind": "dataflow"}}),
            "job.dataflow_source is None",
        ),
        (
            raw({**GOOD, "job": {**GOOD["job"], "execution_type": "DAEMON", "cron": "bad"}}),
            "job.cron 'bad'",
        ),
        (
            raw(
                {
                    **GOOD,
                    "job": {**GOOD["job"], "execution_type": "DAEMON", "time_zone": "Mars/Base"},
                }
            ),
            "Mars/Base",
        ),
    ],
)
def test_unusable_tasks_say_why(data: str | None, fragment: str) -> None:
    with pytest.raises(PlanError, match=fragment):
        plan_task(task_info(data))


def test_a_transient_task_needs_no_valid_cron() -> None:
    assert (
        plan_task(task_info(raw({**GOOD, "job": {**GOOD["job"], "cron": "bad"}}))).schedule is None
    )


@pytest.mark.parametrize(
    ("kill_policy", "fragment"),
    [
        ({"grace_period": {"nanoseconds": "x"}}, r"kill_policy\.grace_period\.nanoseconds"),
        ({"grace_period": {"nanoseconds": 1.5}}, r"kill_policy\.grace_period\.nanoseconds"),
        ({"grace_period": "5secs"}, r"kill_policy\.grace_period is '5secs'"),
        ("5secs", r"kill_policy is '5secs'"),
        ([], r"kill_policy is \[\]"),
    ],
)
def test_a_bad_kill_policy_is_named(kill_policy: Any, fragment: str) -> None:
    info = task_info(payload().encode_base64(), kill_policy=kill_policy)
    with pytest.raises(PlanError, match=fragment):
        plan_task(info)
