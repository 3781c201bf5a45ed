"""End to end: CloudApps and CloudJobs applied through the real Kubernetes API server, run by
the controller on the local Mesos with real executor and job processes, state in a real
ZooKeeper. Runs are counted from what the job processes themselves recorded."""

from __future__ import annotations

from typing import Any

import pytest

from controller.operations import EventKind, RuntimeEvent
from tests.stack import NAMESPACE, Stack
from tests.waiting import holds, wait_for

pytestmark = pytest.mark.system

FAR_FUTURE = "0 0 0 1 1 ? 2099"
EVERY_SECOND = "* * * * * ?"
EVERY_TWO_SECONDS = "*/2 * * * * ?"


def ready_true(status: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or []
    )


def complete_fires(stack: Stack, job: str) -> list[str]:
    """Fire times whose every shard (of 3) recorded a run."""
    return sorted(fire for fire, shards in stack.runs.fires(job).items() if shards == 3)


def assert_each_fire_ran_each_shard_at_most_once(stack: Stack, job: str) -> None:
    seen: set[tuple[str, int]] = set()
    for run in stack.runs.of(job):
        key = (str(run["fire_time"]), int(run["sharding_item"]))
        assert key not in seen, f"shard {key[1]} of the fire at {key[0]} ran twice"
        seen.add(key)


def test_a_transient_job_runs_every_shard_on_each_fire_and_status_shows_it(
    stack: Stack,
) -> None:
    heard: list[RuntimeEvent] = []
    stack.start_controller(listeners=[heard.append])
    stack.script_app_object()
    stack.script_job(
        "report",
        EVERY_TWO_SECONDS,
        shardingItemParameters={"0": "a", "1": "b", "2": "c"},
        jobParameter="nightly",
    )

    wait_for(lambda: complete_fires(stack, "report"), lambda f: len(f) >= 2, what="two fires")
    runs = stack.runs.of("report")
    assert {(r["sharding_item"], r["sharding_parameter"]) for r in runs} == {
        (0, "a"),
        (1, "b"),
        (2, "c"),
    }
    assert {r["job_parameter"] for r in runs} == {"nightly"}
    assert_each_fire_ran_each_shard_at_most_once(stack, "report")
    status = stack.wait_status(
        "CloudJob",
        "report",
        lambda s: s.get("succeeded", 0) >= 6 and "lastSuccessfulTime" in s,
        what="six successful shard runs in status",
    )
    assert ready_true(status)
    assert status["lastScheduleTime"] <= status["nextScheduleTime"]
    assert status["failed"] == 0
    reasons = {event["reason"] for event in stack.events("CloudJob", "report")}
    assert {"Launched", "Succeeded"} <= reasons
    assert {EventKind.FIRED, EventKind.LAUNCHED, EventKind.SUCCEEDED} <= {e.kind for e in heard}
    assert {e.job_key for e in heard} == {f"{NAMESPACE}.report"}


def test_a_cron_update_reschedules_the_job(stack: Stack) -> None:
    stack.start_controller()
    stack.script_app_object()
    stack.script_job("report", FAR_FUTURE)
    stack.wait_status(
        "CloudJob",
        "report",
        lambda s: s.get("nextScheduleTime", "").startswith("2099"),
        what="the far-future fire",
    )
    assert stack.runs.of("report") == []

    stack.patch_spec("CloudJob", "report", cron=EVERY_SECOND)
    wait_for(lambda: complete_fires(stack, "report"), lambda f: len(f) >= 2, what="runs")
    stack.wait_status(
        "CloudJob",
        "report",
        lambda s: s.get("observedGeneration") == 2 and not s["nextScheduleTime"].startswith("2099"),
        what="the new cron's next fire",
    )

    stack.patch_spec("CloudJob", "report", cron=FAR_FUTURE)
    stack.wait_status(
        "CloudJob",
        "report",
        lambda s: s.get("observedGeneration") == 3 and s["nextScheduleTime"].startswith("2099"),
        what="the far-future fire again",
    )
    settled = wait_for(
        lambda: stack.runs.fires("report"),
        lambda fires: all(count == 3 for count in fires.values()),
        what="in-flight runs to finish",
    )
    holds(
        lambda: stack.runs.fires("report"),
        lambda fires: fires == settled,
        seconds=3,
        what="no run after the cron moved to 2099",
    )


def test_a_disabled_job_runs_no_more_and_resumes_without_a_burst_when_enabled(
    stack: Stack,
) -> None:
    stack.start_controller()
    stack.script_app_object()
    stack.script_job("report", EVERY_SECOND)
    wait_for(lambda: complete_fires(stack, "report"), lambda f: len(f) >= 1, what="a run")

    stack.patch_spec("CloudJob", "report", disabled=True)
    stack.wait_status("CloudJob", "report", lambda s: s.get("state") == "Disabled")
    settled = wait_for(
        lambda: stack.runs.fires("report"),
        lambda fires: all(count == 3 for count in fires.values()),
        what="in-flight runs to finish",
    )
    holds(
        lambda: stack.runs.fires("report"),
        lambda fires: fires == settled,
        seconds=4,
        what="no run while disabled",
    )

    stack.patch_spec("CloudJob", "report", disabled=False)
    wait_for(
        lambda: complete_fires(stack, "report"),
        lambda f: len(f) >= len(settled) + 2,
        what="runs after re-enabling",
    )
    assert_each_fire_ran_each_shard_at_most_once(stack, "report")


def test_a_trigger_runs_a_daemon_job_exactly_once_more(stack: Stack) -> None:
    stack.start_controller()
    stack.executor_app_object()
    stack.script_job(
        "resident", FAR_FUTURE, app="workers", executionType="DAEMON", shardingTotalCount=2
    )
    stack.wait_status(
        "CloudJob",
        "resident",
        lambda s: (
            len(s.get("activeShards") or []) == 2
            and all(shard["state"] == "TASK_RUNNING" for shard in s["activeShards"])
        ),
        what="two resident tasks running",
    )
    assert stack.runs.of("resident") == []

    stack.annotate("CloudJob", "resident", **{"cloudjob.io/trigger": "now"})
    wait_for(lambda: stack.runs.of("resident"), lambda r: len(r) == 2, what="one run per shard")
    stack.wait_status("CloudJob", "resident", lambda s: s.get("lastTrigger") == "now")
    holds(lambda: len(stack.runs.of("resident")), lambda n: n == 2, seconds=3, what="one run")
    assert sorted(run["sharding_item"] for run in stack.runs.of("resident")) == [0, 1]


def test_deleting_a_job_kills_its_tasks_clears_its_state_and_releases_it(stack: Stack) -> None:
    stack.start_controller()
    stack.script_app_object()
    sleepy = f'sh -c \'printf "%s\\n" "$0" >> {stack.runs.path}; exec sleep 120\''
    stack.script_job("report", FAR_FUTURE, script={"commandLine": sleepy})
    stack.wait_status("CloudJob", "report", ready_true)
    stack.annotate("CloudJob", "report", **{"cloudjob.io/trigger": "go"})
    status = stack.wait_status(
        "CloudJob",
        "report",
        lambda s: len(s.get("activeShards") or []) == 3,
        what="three shard tasks running",
    )
    task_ids = {shard["taskId"] for shard in status["activeShards"]}
    wait_for(lambda: stack.runs.of("report"), lambda r: len(r) == 3, what="the tasks started")
    assert len(stack.zk_children(f"state/running/{NAMESPACE}.report")) == 3

    stack.delete("CloudJob", "report")
    wait_for(lambda: stack.exists("CloudJob", "report"), lambda e: not e, what="the job gone")
    tasks = wait_for(
        stack.mesos_tasks,
        lambda known: all(known.get(t) == "TASK_KILLED" for t in task_ids),
        what="its tasks killed",
    )
    assert all(tasks[t] == "TASK_KILLED" for t in task_ids)
    assert stack.zk_children("config/job") == []
    assert stack.zk_children("state/running") == []
    assert stack.zk_children("state/ready") == []


def test_a_daemon_job_runs_on_its_cron_and_moves_when_its_agent_dies(stack: Stack) -> None:
    stack.start_controller()
    stack.executor_app_object()
    stack.script_job(
        "resident", EVERY_SECOND, app="workers", executionType="DAEMON", shardingTotalCount=1
    )
    first = wait_for(lambda: stack.runs.of("resident"), lambda r: len(r) >= 2, what="runs")
    task_id = first[0]["task_id"]
    status = stack.wait_status(
        "CloudJob", "resident", lambda s: len(s.get("activeShards") or []) == 1
    )
    agent = status["activeShards"][0]["agent"]
    assert agent in task_id

    stack.mesos.kill_agent(agent)
    moved = wait_for(
        lambda: [r for r in stack.runs.of("resident") if r["task_id"] != task_id],
        lambda r: len(r) >= 2,
        timeout=40,
        what="runs of a relaunched task",
    )
    assert agent not in moved[-1]["task_id"]
    status = stack.wait_status(
        "CloudJob",
        "resident",
        lambda s: [shard["agent"] for shard in s.get("activeShards") or []] not in ([], [agent]),
        what="the shard on another agent",
    )
    assert "Failover" in {event["reason"] for event in stack.events("CloudJob", "resident")}


def test_deleting_an_app_stops_its_executors_and_its_jobs_report_the_missing_app(
    stack: Stack,
) -> None:
    stack.start_controller()
    stack.executor_app_object()
    stack.script_job(
        "resident", EVERY_SECOND, app="workers", executionType="DAEMON", shardingTotalCount=2
    )
    wait_for(lambda: stack.runs.of("resident"), lambda r: len(r) >= 2, what="runs")
    executors = wait_for(stack.mesos_executors, bool, what="the app's executors")
    assert all(executor.startswith(f"{NAMESPACE}.workers@-@") for executor in executors)
    app = stack.wait_status(
        "CloudApp",
        "workers",
        lambda s: sorted(e["executorId"] for e in s.get("executors") or []) == executors,
        what="the app's executors in its status",
    )
    # `<app>@-@<agent id>@-@<app version>`
    assert all(f"@-@{e['agent']}@-@" in e["executorId"] for e in app["executors"])

    stack.delete("CloudApp", "workers")
    wait_for(stack.mesos_executors, lambda found: found == [], what="executors stopped")
    status = stack.wait_status(
        "CloudJob",
        "resident",
        lambda s: s.get("state") == "AppMissing" and not s.get("activeShards"),
        what="the job reporting its missing app",
    )
    assert not ready_true(status)
    assert stack.exists("CloudJob", "resident")
    settled = len(stack.runs.of("resident"))
    holds(lambda: len(stack.runs.of("resident")), lambda n: n == settled, seconds=3, what="stop")


def test_an_invalid_cron_is_reported_on_its_field_and_nothing_is_scheduled(stack: Stack) -> None:
    stack.start_controller()
    stack.script_app_object()
    stack.script_job("report", "*/2 * * 31 2 ?")
    status = stack.wait_status(
        "CloudJob", "report", lambda s: s.get("state") == "Invalid", what="state Invalid"
    )
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "InvalidSpec"
    assert "spec.cron" in ready["message"]
    holds(
        lambda: (stack.runs.of("report"), stack.zk_children("config/job"), stack.mesos_tasks()),
        lambda seen: seen == ([], [], {}),
        seconds=3,
        what="nothing scheduled",
    )
