"""Invalid CloudJobs over the whole stack: every kind of problem the CRD schema cannot
catch is reported on the field (condition and Warning Event), nothing of the job reaches
ZooKeeper or Mesos, and fixing the spec schedules it. A running job whose spec becomes
invalid keeps its last valid definition running, reported as Degraded."""

from __future__ import annotations

from typing import Any

import pytest

from tests.stack import NAMESPACE, Stack
from tests.waiting import holds, wait_for

pytestmark = pytest.mark.system

FAR_FUTURE = "0 0 0 1 1 ? 2099"
EVERY_SECOND = "* * * * * ?"
TRIGGER = "cloudjob.io/trigger"

# name → (invalid spec fields, the field the report names, the reason, the fix)
INVALID: dict[str, tuple[dict[str, Any], str, str, dict[str, Any]]] = {
    "hour-out-of-range": (
        {"cron": "0 0 25 * * ?"},
        "spec.cron",
        "InvalidSpec",
        {"cron": FAR_FUTURE},
    ),
    "never-fires": ({"cron": "0 0 0 31 2 ?"}, "spec.cron", "InvalidSpec", {"cron": FAR_FUTURE}),
    "unknown-zone": (
        {"timeZone": "Mars/Olympus"},
        "spec.timeZone",
        "InvalidSpec",
        {"timeZone": "UTC"},
    ),
    "unbalanced-quote": (
        {"script": {"commandLine": "echo 'unbalanced"}},
        "spec.script.commandLine",
        "InvalidSpec",
        {"script": {"commandLine": "echo balanced"}},
    ),
    "missing-app": ({"appName": "ghost"}, "spec.appName", "AppMissing", {"appName": "scripts"}),
}


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c["type"] == type_), {})


def zookeeper_mentions(stack: Stack, key: str) -> list[str]:
    """Every node of the controller's state that names the job."""
    paths = ["config/job", "state/ready", "state/running", "state/failover", "state/disable/job"]
    return [path for path in paths if key in stack.zk_children(path)]


def test_each_kind_of_invalid_job_is_reported_writes_nothing_and_runs_once_fixed(
    stack: Stack,
) -> None:
    stack.start_controller()
    stack.script_app_object()
    for name, (spec, _, _, _) in INVALID.items():
        stack.script_job(name, **{"cron": FAR_FUTURE, **spec})

    for name, (_, field, reason, _) in INVALID.items():
        status = stack.wait_status(
            "CloudJob",
            name,
            lambda s, r=reason: r in (condition(s, "Ready").get("reason"), s.get("state")),
            what=f"{name} reported as {reason}",
        )
        assert condition(status, "Ready")["status"] == "False"
        assert condition(status, "Scheduled")["status"] == "False"
        message = (
            condition(status, "Ready")["message"] + condition(status, "AppAvailable")["message"]
        )
        assert field in message or "CloudApp 'ghost'" in message, (name, message)
        events = wait_for(
            lambda n=name, r=reason: [e for e in stack.events("CloudJob", n) if e["reason"] == r],
            bool,
            what=f"a {reason} event on {name}",
        )
        assert events[0]["type"] == "Warning"
        assert field in events[0]["message"], events[0]["message"]
    holds(
        lambda: (
            {n: zookeeper_mentions(stack, f"{NAMESPACE}.{n}") for n in INVALID},
            stack.mesos_tasks(),
        ),
        lambda seen: seen == ({n: [] for n in INVALID}, {}),
        seconds=2,
        what="nothing of an invalid job in ZooKeeper or on Mesos",
    )

    # A new generation that fixes the spec is scheduled: the permanent failure of the
    # earlier generation does not stick.
    for name, (_, _, _, fix) in INVALID.items():
        stack.patch_spec("CloudJob", name, **fix)
    for name in INVALID:
        status = stack.wait_status(
            "CloudJob",
            name,
            lambda s: condition(s, "Ready").get("status") == "True",
            what=f"{name} scheduled once fixed",
        )
        assert status["observedGeneration"] == 2
        assert condition(status, "Degraded")["status"] == "False"
        assert f"{NAMESPACE}.{name}" in stack.zk_children("config/job")


def test_a_running_job_made_invalid_keeps_its_last_valid_definition_until_fixed(
    stack: Stack,
) -> None:
    stack.start_controller()
    stack.script_app_object()
    stack.script_job("report", EVERY_SECOND)
    wait_for(lambda: stack.runs.of("report"), lambda r: len(r) >= 3, what="runs")
    stored = stack.zk.get(f"/{stack.zk_namespace}/config/job/{NAMESPACE}.report")[0]

    stack.patch_spec("CloudJob", "report", cron="0 0 25 * * ?")
    status = stack.wait_status(
        "CloudJob",
        "report",
        lambda s: condition(s, "Degraded").get("status") == "True",
        what="Degraded",
    )
    assert status["state"] == "Invalid"
    assert status["observedGeneration"] == 2
    assert condition(status, "Ready")["reason"] == "InvalidSpec"
    assert "spec.cron" in condition(status, "Degraded")["message"]
    assert condition(status, "Scheduled")["status"] == "True"
    assert "nextScheduleTime" in status
    assert "InvalidSpec" in {e["reason"] for e in stack.events("CloudJob", "report")}
    before = len(stack.runs.of("report"))
    wait_for(lambda: stack.runs.of("report"), lambda r: len(r) >= before + 6, what="runs on")
    assert stack.zk.get(f"/{stack.zk_namespace}/config/job/{NAMESPACE}.report")[0] == stored

    # A trigger is refused while the spec is invalid; disabling is honoured.
    stack.annotate("CloudJob", "report", **{TRIGGER: "now"})
    refused = wait_for(
        lambda: [e for e in stack.events("CloudJob", "report") if e["reason"] == "TriggerRefused"],
        bool,
        what="TriggerRefused",
    )
    assert "invalid" in refused[0]["message"]
    stack.patch_spec("CloudJob", "report", disabled=True)
    stack.wait_status(
        "CloudJob",
        "report",
        lambda s: condition(s, "Disabled").get("status") == "True",
        what="Disabled",
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
        what="no run while disabled",
    )

    stack.patch_spec("CloudJob", "report", cron=EVERY_SECOND, disabled=False)
    stack.wait_status(
        "CloudJob",
        "report",
        lambda s: (
            condition(s, "Ready").get("status") == "True"
            and condition(s, "Degraded").get("status") == "False"
        ),
        what="Ready and no longer Degraded",
    )
    wait_for(
        lambda: len(stack.runs.fires("report")),
        lambda fires: fires > len(settled),
        what="runs again",
    )
