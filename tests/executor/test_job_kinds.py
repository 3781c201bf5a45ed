"""Every job kind, transient and daemon, run by the real executor under the local Mesos."""

from __future__ import annotations

import json
from typing import Any

import pytest

from controller.executor.messages import BEGIN, COMPLETE, RunReport
from controller.resources import ExecutionType, JobKind
from tests.executor.conftest import App, Framework

pytestmark = pytest.mark.integration

KINDS: dict[str, dict[str, Any]] = {
    "script": {"kind": JobKind.SCRIPT, "command_line": "bin/hello.sh"},
    "python": {"kind": JobKind.PYTHON, "callable": "demo_jobs.simple:run"},
    "dataflow-streaming": {
        "kind": JobKind.DATAFLOW,
        "source": "demo_jobs.dataflow:Numbers",
        "streaming": True,
    },
    "dataflow-one-shot": {
        "kind": JobKind.DATAFLOW,
        "source": "demo_jobs.dataflow:Numbers",
        "streaming": False,
    },
}
PARAMETERS = ["alpha", "beta"]


def expected_output(kind: str, shard: int) -> list[str]:
    """What one run of the demo job of `kind` prints for shard `shard` of 2 (a script run
    also prints its last argument, the context JSON, checked on its own)."""
    job = f"tests.{kind}"
    if kind == "script":
        return [
            f"hello from {job} shard {shard}/2 parameter '{PARAMETERS[shard]}' job parameter 'jp'",
            "argument count: 1",
        ]
    if kind == "python":
        return [
            f"simple job ran: {job} shard {shard}/2 parameter '{PARAMETERS[shard]}' "
            "job parameter 'jp' fire now triggered False"
        ]
    batches = 3 if kind == "dataflow-streaming" else 1
    lines = []
    for batch in range(batches):
        start = (shard * 3 + batch) * 3
        items = [start, start + 1, start + 2]
        lines.append(f"batch {batch + 1} of shard {shard}: {items} sum {sum(items)}")
    return lines


@pytest.mark.parametrize("kind", KINDS)
def test_transient_jobs_run_once_per_shard(framework: Framework, demo_app: App, kind: str) -> None:
    tasks = [
        framework.task(
            demo_app,
            f"tests.{kind}",
            shard=shard,
            total=2,
            sharding_parameter=PARAMETERS[shard],
            job_parameter="jp",
            **KINDS[kind],
        )
        for shard in (0, 1)
    ]
    task_ids = framework.launch(*tasks)
    for shard, task_id in enumerate(task_ids):
        updates = framework.wait_terminal(task_id)
        assert [u.state for u in updates] == ["TASK_RUNNING", "TASK_FINISHED"]
        assert updates[-1].message == "exit status 0"
        assert all(u.source == "SOURCE_EXECUTOR" for u in updates)
        lines = framework.task_output(demo_app, task_id).read_text().splitlines()
        expected = expected_output(kind, shard)
        if kind == "script":
            context = json.loads(lines[-1].removeprefix("argument 1: "))
            assert context["task_id"] == task_id
            assert context["sharding_item"] == shard
            assert context["sharding_parameter"] == PARAMETERS[shard]
            assert lines[:-1] == expected
        else:
            assert lines == expected


@pytest.mark.parametrize("kind", KINDS)
def test_daemon_jobs_stay_running_and_report_each_run(
    framework: Framework, demo_app: App, kind: str
) -> None:
    task = framework.task(
        demo_app,
        f"tests.{kind}",
        total=2,
        sharding_parameter=PARAMETERS[0],
        job_parameter="jp",
        execution_type=ExecutionType.DAEMON,
        cron="* * * * * ?",
        **KINDS[kind],
    )
    (task_id,) = framework.launch(task)
    framework.wait_for(
        lambda: framework.runs_reported(task_id).count(COMPLETE) >= 2, "two reported runs"
    )
    framework.kill(task_id)
    updates = framework.wait_terminal(task_id)

    assert updates[0].state == "TASK_RUNNING" and updates[0].message == ""
    assert updates[-1].state == "TASK_KILLED"
    middle = updates[1:-1]
    assert all(u.state == "TASK_RUNNING" for u in middle)
    messages = [u.message for u in middle]
    completed = messages.count(COMPLETE)
    assert completed >= 2
    # BEGIN and COMPLETE alternate; a kill may land inside a run (BEGIN without COMPLETE).
    assert messages in ([BEGIN, COMPLETE] * completed, [BEGIN, COMPLETE] * completed + [BEGIN])
    reports = [RunReport.decode(u.data or b"") for u in middle if u.message == COMPLETE]
    assert all(r.outcome == "succeeded" and not r.triggered for r in reports)
    assert all(r.started_at for r in reports)
    fire_times = [r.fire_time for r in reports]
    assert all(fire_times) and fire_times == sorted(set(fire_times))

    output = framework.task_output(demo_app, task_id).read_text().splitlines()
    per_run = len(expected_output(kind, 0)) + (kind == "script")
    assert len(output) >= per_run * completed
    if kind == "python":
        for report, line in zip(reports, output, strict=False):
            assert report.fire_time is not None
            assert line.endswith(f"fire {report.fire_time.isoformat()} triggered False")
