"""Task ids, executor ids and the TaskInfo / ExecutorInfo a launch sends
(docs/semantics.md#launching)."""

from __future__ import annotations

import base64
import json
import shlex
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.mesos.executors import ExecutorRegistry
from controller.mesos.states import StatusUpdate, TaskState
from controller.mesos.tasks import (
    AppVersion,
    ExecutorId,
    ExecutorOptions,
    MetaInfo,
    TaskId,
    TaskIdError,
    app_version,
    build_task_info,
    is_archive,
)
from controller.state.records import LaunchSource
from controller.taskdata import TaskPayload
from tests.framework.factories import make_app, make_job

pytestmark = pytest.mark.unit

AGENT = "5c1e-41f0-S3"


def test_task_id_round_trip() -> None:
    task = TaskId.new(MetaInfo("ns.job", 2), LaunchSource.FAILOVER, AGENT, "u-1")
    assert task.value == f"ns.job@-@2@-@FAILOVER@-@{AGENT}@-@u-1"
    assert TaskId.parse(task.value) == task
    assert task.meta.value == "ns.job@-@2"


@given(
    job=st.from_regex(r"[a-z0-9]{1,10}\.[a-z0-9]{1,10}", fullmatch=True),
    shard=st.integers(min_value=0, max_value=9999),
    agent=st.text(alphabet="abcdef0123456789-S@", min_size=1, max_size=40),
    source=st.sampled_from(list(LaunchSource)),
)
def test_task_id_parses_back_whatever_the_agent_id(
    job: str, shard: int, agent: str, source: LaunchSource
) -> None:
    task = TaskId.new(MetaInfo(job, shard), source, agent)
    assert TaskId.parse(task.value) == task


@pytest.mark.parametrize(
    "value",
    [
        "",
        "ns.job",
        "ns.job@-@x@-@READY@-@a@-@u",
        "ns.job@-@1@-@LATER@-@a@-@u",
        "@-@1@-@READY@-@a@-@u",
    ],
)
def test_foreign_task_ids_are_rejected_with_a_reason(value: str) -> None:
    with pytest.raises(TaskIdError, match="task id"):
        TaskId.parse(value)


def test_meta_info_parse() -> None:
    assert MetaInfo.parse("ns.job@-@7") == MetaInfo("ns.job", 7)
    with pytest.raises(TaskIdError):
        MetaInfo.parse("ns.job")


def test_executor_id_is_one_per_app_version_per_agent() -> None:
    executor = ExecutorId.of(AppVersion("ns.app", "0123456789ab"), AGENT)
    assert executor.value == f"ns.app@-@{AGENT}@-@0123456789ab"
    assert ExecutorId.parse(executor.value) == executor
    with pytest.raises(TaskIdError):
        ExecutorId.parse("no-delimiter")


def test_a_command_executor_named_after_its_task_is_no_app_executor() -> None:
    # A job named like an app of its namespace must not pass for that app's executor.
    task = TaskId.new(MetaInfo("ns.app", 0), LaunchSource.READY, AGENT).value
    with pytest.raises(TaskIdError, match="task id"):
        ExecutorId.parse(task)
    registry = ExecutorRegistry()
    registry.status_received(
        StatusUpdate(task_id=task, state=TaskState.RUNNING, agent_id=AGENT, executor_id=task)
    )
    assert registry.known() == []


@given(agent=st.text(alphabet="abcdef0123456789-S@", min_size=1, max_size=40))
def test_executor_ids_parse_back_whatever_the_agent_id(agent: str) -> None:
    executor = ExecutorId("ns.app", agent, "a1b2c3d4e5f6")
    assert ExecutorId.parse(executor.value) == executor


@pytest.mark.parametrize("agent", [AGENT, "a@-@b", "x@-@0123"])
def test_executor_ids_from_before_versions_still_parse_with_no_version(agent: str) -> None:
    old = ExecutorId.parse(f"ns.app@-@{agent}")
    assert old == ExecutorId("ns.app", agent, None)
    assert old.version == AppVersion("ns.app", None)
    assert old.version != app_version(make_app(), ExecutorOptions())


def test_the_version_changes_with_whatever_the_executor_info_holds() -> None:
    base = app_version(make_app(), ExecutorOptions())
    assert base == app_version(make_app(), ExecutorOptions())
    assert len(base.digest or "") == 12
    edits: list[dict[str, object]] = [
        {"appURL": "http://127.0.0.1:8000/app-2.tar.gz"},
        {"bootstrapScript": "bin/start.sh --new"},
        {"cpuCount": 2},
        {"memoryMB": 256},
        {"appCacheEnable": False},
    ]
    versions = {app_version(make_app(**edit), ExecutorOptions()) for edit in edits}
    versions.add(app_version(make_app(), ExecutorOptions(idle_seconds=5)))
    assert base not in versions
    assert len(versions) == len(edits) + 1
    # What does not reach the ExecutorInfo leaves the version alone.
    assert app_version(make_app(eventTraceSamplingCount=7), ExecutorOptions()) == base


@pytest.mark.parametrize(
    ("url", "archive"),
    [
        ("http://h/app.tar.gz", True),
        ("http://h/app.TGZ", True),
        ("file:///srv/app.zip?x=1", True),
        ("http://h/run.sh", False),
        ("http://h/app.tar.gz.sig", False),
    ],
)
def test_archive_detection(url: str, archive: bool) -> None:
    assert is_archive(url) is archive


def _payload(info: dict[str, object]) -> TaskPayload:
    return TaskPayload.decode(base64.b64decode(str(info["data"])))


def test_transient_script_uses_the_command_executor_without_a_shell() -> None:
    app = make_app(appURL="http://127.0.0.1/tools/run.sh", appCacheEnable=False)
    job = make_job(
        shards=2,
        cpus=0.25,
        mem=32,
        jobParameter="x; touch /tmp/pwned",
        shardingItemParameters={"1": "$(reboot)"},
        script={"commandLine": "bin/job.sh 'two words' --flag"},
    )
    task = TaskId.new(MetaInfo(job.key, 1), LaunchSource.READY, AGENT, "u")
    fired = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    info = build_task_info(task, job, app, fire_time=fired)

    assert "executor" not in info
    command = info["command"]
    assert command["shell"] is False
    assert command["value"] == "bin/job.sh"
    assert command["arguments"][:3] == ["bin/job.sh", "two words", "--flag"]
    assert len(command["arguments"]) == 4
    context = json.loads(command["arguments"][3])
    assert context["job_parameter"] == "x; touch /tmp/pwned"
    assert context["sharding_parameter"] == "$(reboot)"
    assert context["sharding_item"] == 1
    assert command["uris"] == [
        {
            "value": "http://127.0.0.1/tools/run.sh",
            "cache": False,
            "executable": True,
            "extract": False,
        }
    ]
    assert info["task_id"] == {"value": task.value}
    assert info["agent_id"] == {"value": AGENT}
    assert info["resources"] == [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.25}},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": 32.0}},
    ]
    payload = _payload(info)
    assert payload.sharding.task_id == task.value
    assert payload.sharding.fire_time == fired
    assert payload.sharding.sharding_total_count == 2
    assert payload.job.command_line == "bin/job.sh 'two words' --flag"
    variables = {v["name"]: v["value"] for v in command["environment"]["variables"]}
    assert variables["CLOUDJOB_SHARDING_ITEM"] == "1"
    assert variables["CLOUDJOB_SHARDING_PARAMETER"] == "$(reboot)"
    assert variables["CLOUDJOB_JOB_PARAMETER"] == "x; touch /tmp/pwned"
    assert variables["CLOUDJOB_FIRE_TIME"] == fired.isoformat()


def test_a_command_line_with_shell_syntax_runs_under_sh_with_the_context_quoted() -> None:
    job = make_job(jobParameter="'; touch /tmp/pwned; '", script={"commandLine": "bin/a.sh | cat"})
    task = TaskId.new(MetaInfo(job.key, 0), LaunchSource.READY, AGENT, "u")
    info = build_task_info(task, job, make_app())
    command = info["command"]
    assert command["shell"] is False
    assert command["arguments"][:2] == ["/bin/sh", "-c"]
    script = command["arguments"][2]
    assert script.startswith("bin/a.sh | cat ")
    quoted_context = script.removeprefix("bin/a.sh | cat ")
    assert shlex.split(quoted_context) == [_payload(info).sharding.model_dump_json()]


def test_archive_app_for_command_executor_is_extracted() -> None:
    info = build_task_info(
        TaskId.new(MetaInfo("ns.job", 0), LaunchSource.READY, AGENT), make_job(), make_app()
    )
    assert info["command"]["uris"] == [
        {"value": "http://127.0.0.1:8000/app.tar.gz", "cache": True, "extract": True}
    ]


@pytest.mark.parametrize(
    "spec",
    [
        {"executionType": "DAEMON"},
        {"python": {"callable": "jobs.simple:run"}, "script": None},
        {"dataflow": {"source": "jobs.flow:Source", "streaming": True}, "script": None},
    ],
)
def test_other_jobs_run_in_the_apps_executor(spec: dict[str, object]) -> None:
    app = make_app(cpuCount=0.5, memoryMB=96, bootstrapScript="bin/start.sh --x")
    job = make_job(**spec)
    task = TaskId.new(MetaInfo(job.key, 0), LaunchSource.READY, AGENT)
    info = build_task_info(task, job, app)

    assert "command" not in info
    executor = info["executor"]
    version = app_version(app, ExecutorOptions())
    assert executor["executor_id"] == {"value": f"ns.app@-@{AGENT}@-@{version.digest}"}
    assert executor["command"]["value"] == "bin/start.sh --x"
    assert executor["command"]["environment"] == {
        "variables": [{"name": "CLOUDJOB_EXECUTOR_IDLE_TIMEOUT", "value": "60secs"}]
    }
    assert executor["command"]["uris"] == [
        {"value": "http://127.0.0.1:8000/app.tar.gz", "cache": True, "extract": True}
    ]
    assert executor["resources"] == [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": 96.0}},
    ]
    # Mesos reuses an executor only if every task carries an identical ExecutorInfo.
    other = build_task_info(TaskId.new(MetaInfo(job.key, 1), LaunchSource.READY, AGENT), job, app)
    assert other["executor"] == executor


def test_resources_take_role_and_reservation_from_the_offer() -> None:
    offered = [
        {
            "name": "cpus",
            "type": "SCALAR",
            "scalar": {"value": 4},
            "role": "jobs",
            "reservation": {"principal": "ops"},
        },
        {"name": "mem", "type": "SCALAR", "scalar": {"value": 4096}, "role": "jobs"},
    ]
    info = build_task_info(
        TaskId.new(MetaInfo("ns.job", 0), LaunchSource.READY, AGENT),
        make_job(cpus=1, mem=10),
        make_app(),
        offered=offered,
    )
    assert info["resources"][0] == {
        "name": "cpus",
        "type": "SCALAR",
        "scalar": {"value": 1.0},
        "role": "jobs",
        "reservation": {"principal": "ops"},
    }
    assert info["resources"][1]["role"] == "jobs"
