"""What each command of the plugin shows (controller/plugin/views.py, printing.py), from
documents that the history API's own OpenAPI schemas accept."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from controller.api.openapi import DOCUMENT
from controller.plugin.printing import dumped
from controller.plugin.tables import render, render_all
from controller.plugin.views import (
    outcome,
    queue_tables,
    queues_in,
    runs_table,
    series_table,
    statistics_tables,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def valid(schema: str, document: dict[str, Any]) -> dict[str, Any]:
    """`document`, once the API's schema `schema` accepts it."""
    validator = Draft202012Validator({**DOCUMENT, "$ref": f"#/components/schemas/{schema}"})
    validator.validate(document)
    return document


def run(shard: int, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": shard + 1,
        "namespace": "default",
        "job": "report",
        "shard": shard,
        "taskId": f"default.report@-@{shard}@-@READY@-@agent-1@-@uuid{shard}",
        "source": "READY",
        "agentId": "agent-1",
        "hostname": "host-1",
        "executorId": None,
        "fireTime": "2026-03-01T11:58:00+00:00",
        "startedAt": "2026-03-01T11:58:00.100000+00:00",
        "endedAt": "2026-03-01T11:58:01.600000+00:00",
        "outcome": "succeeded",
        "state": "TASK_FINISHED",
        "message": None,
        "exitStatus": 0,
        "stderrTail": None,
        "sandbox": None,
    }
    base.update(fields)
    return base


RUNS = valid(
    "RunPage",
    {
        "items": [
            run(
                2,
                outcome="failed",
                state="TASK_FAILED",
                exitStatus=3,
                hostname="host-3",
                message="Command exited with status 3; stderr: " + "x" * 80,
            ),
            run(1, outcome=None, state=None, endedAt=None, exitStatus=None),
            run(0),
        ],
        "next": None,
    },
)["items"]


def test_runs_show_shard_outcome_host_start_duration_and_message_newest_first() -> None:
    text = render(runs_table(RUNS, NOW))
    lines = text.splitlines()
    assert lines[0].split() == ["SHARD", "OUTCOME", "HOST", "STARTED", "DURATION", "MESSAGE"]
    assert lines[1].split()[:5] == ["2", "Failed", "host-3", "2026-03-01T11:58:00Z", "1.5s"]
    assert lines[1].endswith("…")
    assert lines[2].split() == ["1", "Running", "host-1", "2026-03-01T11:58:00Z", "119s", "<none>"]
    assert lines[3].split() == [
        "0",
        "Succeeded",
        "host-1",
        "2026-03-01T11:58:00Z",
        "1.5s",
        "<none>",
    ]


def test_wide_runs_add_exit_fire_time_and_task_and_keep_the_whole_message() -> None:
    table = runs_table(RUNS, NOW, wide=True)
    assert table.headers == (
        "shard", "outcome", "host", "started", "duration", "exit", "fire time", "task", "message",
    )  # fmt: skip
    failed = dict(zip(table.headers, table.rows[0], strict=True))
    assert failed["exit"] == "3"
    assert failed["fire time"] == "2026-03-01T11:58:00Z"
    assert failed["task"] == RUNS[0]["taskId"]
    assert failed["message"] == RUNS[0]["message"]


def test_runs_of_every_job_name_namespace_and_job() -> None:
    table = runs_table(RUNS, NOW, with_job=True)
    assert table.headers[:3] == ("namespace", "job", "shard")
    assert table.rows[0][:3] == ("default", "report", "2")


def test_outcomes_are_capitalised_and_an_open_run_is_running() -> None:
    assert [outcome(r) for r in RUNS] == ["Failed", "Running", "Succeeded"]
    assert outcome(run(0, outcome="killed")) == "Killed"


QUEUES = valid(
    "Queues",
    {
        "ready": [
            {
                "namespace": "default",
                "job": "report",
                "runs": 5,
                "fireTimes": [f"2026-03-01T11:5{i}:00+00:00" for i in range(5)],
            },
            {"namespace": "team", "job": "cleanup", "runs": 1, "fireTimes": []},
        ],
        "running": [
            {
                "namespace": "default",
                "job": "hello",
                "shard": 0,
                "taskId": "t-0",
                "agentId": "agent-1",
                "hostname": "host-1",
                "state": "TASK_RUNNING",
                "launchedAt": "2026-03-01T11:57:00+00:00",
                "fireTime": None,
            }
        ],
        "failover": [
            {
                "namespace": "team",
                "job": "cleanup",
                "shard": 2,
                "taskId": "t-9",
                "fireTime": "2026-03-01T11:00:00+00:00",
            }
        ],
    },
)


def test_each_queue_is_a_table_whose_rows_name_their_queue() -> None:
    ready, running, failover = queue_tables(QUEUES, NOW)
    assert ready.headers == ("queue", "namespace", "job", "runs", "fire times")
    assert ready.rows == (
        (
            "ready",
            "default",
            "report",
            "5",
            "2026-03-01T11:50:00Z,2026-03-01T11:51:00Z,2026-03-01T11:52:00Z +2 more",
        ),
        ("ready", "team", "cleanup", "1", "<none>"),
    )
    assert running.rows == (("running", "default", "hello", "0", "TASK_RUNNING", "host-1", "3m"),)
    assert failover.rows == (("failover", "team", "cleanup", "2", "2026-03-01T11:00:00Z"),)
    text = render_all(queue_tables(QUEUES, NOW), headers=False)
    assert [line.split()[0] for line in text.splitlines() if line] == [
        "ready", "ready", "running", "failover",
    ]  # fmt: skip


def test_wide_queues_add_the_tasks() -> None:
    _, running, failover = queue_tables(QUEUES, NOW, wide=True)
    assert running.headers[-2:] == ("fire time", "task")
    assert running.rows[0][-2:] == ("<none>", "t-0")
    assert failover.rows[0][-1] == "t-9"


def test_queues_of_one_namespace() -> None:
    only = queues_in(QUEUES, "team")
    assert [i["job"] for i in only["ready"]] == ["cleanup"]
    assert only["running"] == []
    assert len(only["failover"]) == 1
    valid("Queues", only)


STATISTICS = valid(
    "Statistics",
    {
        "results": {
            "lastMinute": {"succeeded": 3, "failed": 1, "killed": 0},
            "lastHour": {"succeeded": 30, "failed": 2, "killed": 1},
            "lastDay": {"succeeded": 300, "failed": 20, "killed": 4},
        },
        "runningTasks": 4,
        "jobs": {
            "total": 3,
            "byExecutionType": {"TRANSIENT": 2, "DAEMON": 1},
            "byKind": {"script": 2, "python": 1},
            "byState": {"Running": 1, "Scheduled": 2},
        },
    },
)


def test_statistics_are_results_per_window_then_tasks_and_jobs() -> None:
    windows, totals = statistics_tables(STATISTICS)
    assert render(windows) == (
        "WINDOW        SUCCEEDED   FAILED   KILLED\n"
        "last minute   3           1        0\n"
        "last hour     30          2        1\n"
        "last day      300         20       4\n"
    )
    assert render(totals) == (
        "RUNNING TASKS   JOBS   BY STATE                BY EXECUTION TYPE      BY KIND\n"
        "4               3      Running=1,Scheduled=2   DAEMON=1,TRANSIENT=2   python=1,script=2\n"
    )


def test_a_results_series_is_a_row_per_interval() -> None:
    series = valid(
        "ResultSeries",
        {
            "interval": "hour",
            "items": [
                {"start": "2026-03-01T10:00:00+00:00", "succeeded": 5, "failed": 1, "killed": 0}
            ],
        },
    )
    assert series_table(series).rows == (("2026-03-01T10:00:00Z", "5", "1", "0"),)


@pytest.mark.parametrize("output", ["json", "yaml"])
def test_documents_print_as_json_or_yaml_that_parse_back(output: str) -> None:
    text = dumped({"items": RUNS}, output)
    loaded = json.loads(text) if output == "json" else yaml.safe_load(text)
    assert loaded == {"items": RUNS}


def test_json_is_indented_as_kubectl_does() -> None:
    assert dumped({"a": [1]}, "json") == '{\n    "a": [\n        1\n    ]\n}\n'
    with pytest.raises(ValueError, match="none of json, yaml"):
        dumped({}, "xml")
