"""The trigger annotation over the whole stack: a value the job cannot honour (job or app
disabled) is refused with a Warning Event naming what to change, counts as handled, and
never runs later; the next new value runs exactly once."""

from __future__ import annotations

from typing import Any

from tests.e2e.stack import Stack, holds, wait_for

FAR_FUTURE = "0 0 0 1 1 ? 2099"
TRIGGER = "cloudjob.io/trigger"


def refusals(stack: Stack, name: str) -> list[dict[str, Any]]:
    return [e for e in stack.events("CloudJob", name) if e["reason"] == "TriggerRefused"]


def ready(status: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or []
    )


def test_a_trigger_on_a_disabled_job_or_app_is_refused_and_never_runs_later(
    stack: Stack,
) -> None:
    stack.start_controller()
    stack.script_app_object()
    stack.script_job("report", FAR_FUTURE, disabled=True)
    stack.wait_status("CloudJob", "report", lambda s: s.get("state") == "Disabled")

    stack.annotate("CloudJob", "report", **{TRIGGER: "while-disabled"})
    refused = wait_for(lambda: refusals(stack, "report"), bool, what="TriggerRefused")
    assert refused[0]["type"] == "Warning"
    assert "spec.disabled" in refused[0]["message"]
    stack.wait_status("CloudJob", "report", lambda s: s.get("lastTrigger") == "while-disabled")

    stack.patch_spec("CloudJob", "report", disabled=False)
    stack.wait_status("CloudJob", "report", ready, what="enabled")
    holds(lambda: stack.runs.of("report"), lambda runs: runs == [], seconds=2, what="no run")

    stack.patch_spec("CloudApp", "scripts", disabled=True)
    stack.wait_status("CloudJob", "report", lambda s: s.get("state") == "Disabled")
    stack.annotate("CloudJob", "report", **{TRIGGER: "while-app-disabled"})
    wait_for(
        lambda: [e["message"] for e in refusals(stack, "report")],
        lambda messages: any("app is disabled" in m for m in messages),
        what="a refusal naming the disabled app",
    )
    stack.patch_spec("CloudApp", "scripts", disabled=False)
    stack.wait_status("CloudJob", "report", ready, what="the app enabled again")
    holds(lambda: stack.runs.of("report"), lambda runs: runs == [], seconds=2, what="no run")

    stack.annotate("CloudJob", "report", **{TRIGGER: "now"})
    wait_for(lambda: stack.runs.of("report"), lambda r: len(r) == 3, what="one run")
    holds(lambda: len(stack.runs.of("report")), lambda n: n == 3, seconds=2, what="only one")
    assert "Triggered" in {e["reason"] for e in stack.events("CloudJob", "report")}
