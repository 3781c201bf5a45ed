"""The kopf handlers and reconcilers over real HTTP (the API emulator), against the real
scheduling core (ZooKeeper, local Mesos): what each object change does to the core's
state in ZooKeeper, and what the object's status and Events say."""

from __future__ import annotations

from typing import Any

import pytest
from kazoo.exceptions import NotEmptyError

from tests.stack import NAMESPACE, Stack
from tests.waiting import holds, wait_for

pytestmark = pytest.mark.system

FAR_FUTURE = "0 0 0 1 1 ? 2099"
JOB_KEY = f"{NAMESPACE}.report"


def condition_is(status: dict[str, Any], type_: str, value: str, reason: str | None = None) -> bool:
    found = next((c for c in status.get("conditions") or [] if c["type"] == type_), None)
    return (
        found is not None
        and found["status"] == value
        and (reason is None or found["reason"] == reason)
    )


def reasons(stack: Stack, kind: str, name: str) -> list[str]:
    return [event["reason"] for event in stack.events(kind, name)]


def test_an_invalid_cron_is_reported_on_the_field_and_nothing_reaches_zookeeper(
    stack: Stack,
) -> None:
    stack.start_controller()
    stack.script_app_object()
    stack.script_job("report", "0 0 25 * * ?")

    status = stack.wait_status(
        "CloudJob",
        "report",
        lambda s: condition_is(s, "Ready", "False", "InvalidSpec"),
        what="Ready=False/InvalidSpec",
    )
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["message"].startswith("spec.cron: ")
    assert status["state"] == "Invalid"
    assert condition_is(status, "Scheduled", "False", "InvalidSpec")
    warnings = wait_for(
        lambda: [e for e in stack.events("CloudJob", "report") if e["reason"] == "InvalidSpec"],
        bool,
        what="an InvalidSpec event",
    )
    assert warnings[0]["type"] == "Warning"
    assert "spec.cron" in warnings[0]["message"]
    assert JOB_KEY not in stack.zk_children("config/job")
    assert stack.runs.of("report") == []

    stack.patch_spec("CloudJob", "report", cron="*/2 * * * * ?")
    stack.wait_status(
        "CloudJob", "report", lambda s: condition_is(s, "Scheduled", "True"), what="Scheduled"
    )
    assert JOB_KEY in stack.zk_children("config/job")


def test_a_job_waits_for_its_app_and_is_scheduled_when_the_app_appears(stack: Stack) -> None:
    stack.start_controller()
    stack.script_job("report", FAR_FUTURE)

    status = stack.wait_status(
        "CloudJob",
        "report",
        lambda s: condition_is(s, "AppAvailable", "False", "AppMissing"),
        what="AppAvailable=False/AppMissing",
    )
    assert status["state"] == "AppMissing"
    assert "AppMissing" in reasons(stack, "CloudJob", "report")
    assert JOB_KEY not in stack.zk_children("config/job")

    stack.script_app_object()
    status = stack.wait_status(
        "CloudJob",
        "report",
        lambda s: condition_is(s, "Ready", "True") and "nextScheduleTime" in s,
        what="Ready=True with the next fire",
    )
    assert status["nextScheduleTime"].startswith("2099-01-01T00:00:00")
    assert JOB_KEY in stack.zk_children("config/job")


def test_disabling_and_enabling_an_app_unschedules_and_reschedules_its_jobs(stack: Stack) -> None:
    stack.start_controller()
    stack.script_app_object()
    stack.script_job("report", FAR_FUTURE)
    stack.wait_status("CloudJob", "report", lambda s: condition_is(s, "Ready", "True"))

    stack.patch_spec("CloudApp", "scripts", disabled=True)
    status = stack.wait_status(
        "CloudJob",
        "report",
        lambda s: condition_is(s, "Disabled", "True", "AppDisabled"),
        what="Disabled=True/AppDisabled",
    )
    assert status["state"] == "Disabled"
    assert "nextScheduleTime" not in status
    assert f"{NAMESPACE}.scripts" in stack.zk_children("state/disable/app")
    app = stack.wait_status("CloudApp", "scripts", lambda s: condition_is(s, "Ready", "False"))
    assert condition_is(app, "Disabled", "True")

    stack.patch_spec("CloudApp", "scripts", disabled=False)
    stack.wait_status(
        "CloudJob", "report", lambda s: condition_is(s, "Ready", "True"), what="Ready again"
    )
    assert stack.zk_children("state/disable/app") == []


def test_deleting_an_app_keeps_its_jobs_which_report_the_missing_app(stack: Stack) -> None:
    stack.start_controller()
    stack.script_app_object()
    stack.script_job("report", FAR_FUTURE)
    stack.wait_status("CloudJob", "report", lambda s: condition_is(s, "Ready", "True"))
    assert f"{NAMESPACE}.scripts" in stack.zk_children("config/app")

    stack.delete("CloudApp", "scripts")
    wait_for(lambda: stack.exists("CloudApp", "scripts"), lambda e: not e, what="app gone")
    stack.wait_status(
        "CloudJob",
        "report",
        lambda s: condition_is(s, "AppAvailable", "False", "AppMissing"),
        what="AppMissing",
    )
    assert stack.exists("CloudJob", "report")
    assert stack.zk_children("config/app") == []
    assert stack.zk_children("config/job") == []

    stack.script_app_object()
    stack.wait_status("CloudJob", "report", lambda s: condition_is(s, "Ready", "True"))
    assert JOB_KEY in stack.zk_children("config/job")


def test_deleting_a_job_unschedules_it_and_releases_the_finalizer(stack: Stack) -> None:
    stack.start_controller()
    stack.script_app_object()
    stack.script_job("report", FAR_FUTURE)
    stack.wait_status("CloudJob", "report", lambda s: condition_is(s, "Ready", "True"))
    assert stack.get("CloudJob", "report")["metadata"]["finalizers"] == ["cloudjob.io/finalizer"]

    stack.delete("CloudJob", "report")
    wait_for(lambda: stack.exists("CloudJob", "report"), lambda e: not e, what="job gone")
    assert stack.zk_children("config/job") == []


def test_each_new_trigger_value_runs_the_job_once_even_across_restarts(stack: Stack) -> None:
    replica = stack.start_controller()
    stack.script_app_object()
    stack.script_job("report", FAR_FUTURE)
    stack.wait_status("CloudJob", "report", lambda s: condition_is(s, "Ready", "True"))

    stack.annotate("CloudJob", "report", **{"cloudjob.io/trigger": "first"})
    wait_for(lambda: stack.runs.of("report"), lambda r: len(r) == 3, what="one triggered run")
    stack.wait_status("CloudJob", "report", lambda s: s.get("lastTrigger") == "first")
    assert "Triggered" in reasons(stack, "CloudJob", "report")

    # An unrelated change re-runs the update handler, a new replica resumes the job:
    # neither runs the same value again.
    stack.annotate("CloudJob", "report", **{"note": "unrelated"})
    replica.stop()
    stack.start_controller("replica-2")
    wait_for(stack.leader, lambda leader: leader == "replica-2", what="the new replica to lead")
    holds(lambda: len(stack.runs.of("report")), lambda n: n == 3, seconds=4, what="one run")
    stack.annotate("CloudJob", "report", **{"cloudjob.io/trigger": "second"})
    wait_for(lambda: stack.runs.of("report"), lambda r: len(r) >= 6, what="a second run")
    stack.wait_status("CloudJob", "report", lambda s: s.get("lastTrigger") == "second")
    holds(lambda: len(stack.runs.of("report")), lambda n: n == 6, seconds=2, what="two runs")
    assert sorted(stack.runs.fires("report").values()) == [3, 3]


def test_runs_show_in_status_and_as_events(stack: Stack) -> None:
    stack.start_controller()
    stack.script_app_object()
    stack.script_job("report", "*/2 * * * * ?")

    status = stack.wait_status(
        "CloudJob",
        "report",
        lambda s: s.get("succeeded", 0) >= 3 and "lastSuccessfulTime" in s,
        what="successes in status",
    )
    assert status["observedGeneration"] == 1
    assert "lastScheduleTime" in status
    assert status["state"] in ("Scheduled", "Running", "Pending")
    seen = wait_for(
        lambda: set(reasons(stack, "CloudJob", "report")),
        lambda r: {"Launched", "Succeeded"} <= r,
        what="Launched and Succeeded events",
    )
    assert "InvalidSpec" not in seen


def wipe(stack: Stack, node: str) -> None:
    """Delete a subtree the controller keeps writing to (a write may land mid-way)."""
    for _ in range(20):
        try:
            stack.zk.delete(f"/{stack.zk_namespace}/{node}", recursive=True)
            return
        except NotEmptyError:
            continue
    raise AssertionError(f"could not wipe /{node}")


def test_state_wiped_from_zookeeper_is_restored_from_the_resources(stack: Stack) -> None:
    stack.start_controller()
    stack.script_app_object()
    stack.script_job("report", "*/1 * * * * ?")
    wait_for(lambda: stack.runs.of("report"), lambda r: len(r) >= 3, what="first runs")

    for node in ("config", "state"):
        wipe(stack, node)
    wait_for(
        lambda: (stack.zk_children("config/app"), stack.zk_children("config/job")),
        lambda found: found == ([f"{NAMESPACE}.scripts"], [JOB_KEY]),
        what="definitions written back",
    )
    before = len(stack.runs.of("report"))
    wait_for(lambda: stack.runs.of("report"), lambda r: len(r) >= before + 3, what="more runs")


def test_status_is_written_only_when_it_changes(stack: Stack) -> None:
    stack.start_controller()
    stack.script_app_object()
    stack.script_job("report", FAR_FUTURE)
    stack.wait_status(
        "CloudJob", "report", lambda s: condition_is(s, "Ready", "True") and "nextScheduleTime" in s
    )
    assert stack.status_writes("cloudjobs", "report") >= 1
    version = stack.get("CloudJob", "report")["metadata"]["resourceVersion"]
    # Several refresh intervals (2 s each) re-apply and re-read the job; nothing changed,
    # so nothing is written: not the status, not anything else of the object.
    holds(
        lambda: stack.get("CloudJob", "report")["metadata"]["resourceVersion"],
        lambda now: now == version,
        seconds=5,
        what="no write without a change",
    )


def test_work_no_agent_can_take_is_reported_and_placed_once_it_fits(stack: Stack) -> None:
    stack.start_controller()
    stack.script_app_object()
    stack.script_job("report", FAR_FUTURE, cpuCount=2.0)  # every agent has 1 cpu
    stack.wait_status("CloudJob", "report", lambda s: condition_is(s, "Ready", "True"))
    stack.annotate("CloudJob", "report", **{"cloudjob.io/trigger": "1"})

    status = stack.wait_status(
        "CloudJob",
        "report",
        lambda s: condition_is(s, "CannotPlace", "True", "InsufficientResources"),
        what="CannotPlace=True",
    )
    assert status["state"] == "CannotPlace"
    assert not condition_is(status, "Ready", "True")
    unplaceable = wait_for(
        lambda: [e for e in stack.events("CloudJob", "report") if e["reason"] == "Unplaceable"],
        bool,
        what="an Unplaceable event",
    )
    assert unplaceable[0]["type"] == "Warning"
    assert stack.runs.of("report") == []

    stack.patch_spec("CloudJob", "report", cpuCount=0.1)
    wait_for(lambda: stack.runs.of("report"), lambda r: len(r) == 3, what="the run placed")
    stack.wait_status(
        "CloudJob", "report", lambda s: condition_is(s, "CannotPlace", "False"), what="placeable"
    )
