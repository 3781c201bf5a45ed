"""The trigger annotation over the whole stack: a value the job cannot honour (job or app
disabled) is refused with a Warning Event naming what to change, counts as handled, and
never runs later; the next new value runs exactly once; a value a leader ran in the
scheduling core but never recorded in status is not run again by the next leader."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from controller.mesos.settings import FrameworkSettings
from controller.operations import TriggerResult
from controller.reconcilers.specs import parse_app, parse_job
from tests.framework.harness import running_framework, subscribed
from tests.stack import FAST_FRAMEWORK, NAMESPACE, Stack
from tests.waiting import async_wait_for, holds, wait_for

pytestmark = pytest.mark.system

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


async def run_in_the_core_only(stack: Stack, app: dict[str, Any], job: dict[str, Any]) -> None:
    """A leader that handles the job's trigger value in the scheduling core and stops
    before its Kubernetes side writes status: the core alone, on the stack's ZooKeeper
    namespace and Mesos master, with the definitions the controller derives from the
    objects."""
    settings = FrameworkSettings(master=stack.mesos.master_address, **FAST_FRAMEWORK)
    async with running_framework(stack.zk_hosts, stack.zk_namespace, settings) as leader:
        await subscribed(leader)
        await leader.service.put_app(parse_app(NAMESPACE, "scripts", app["spec"]))
        definition = parse_job(NAMESPACE, "report", job["spec"])
        await leader.service.schedule(definition)
        token = job["metadata"]["annotations"][TRIGGER]
        assert await leader.service.trigger(definition.key, token) is TriggerResult.RAN
        await async_wait_for(
            lambda: leader.service.job_runtime(definition.key).succeeded == 3,
            timeout=60,
            what="the triggered run",
        )


def test_a_value_the_core_ran_before_status_recorded_it_is_not_run_again(stack: Stack) -> None:
    stack.script_app_object()
    stack.script_job("report", FAR_FUTURE)
    stack.annotate("CloudJob", "report", **{TRIGGER: "once"})
    asyncio.run(
        run_in_the_core_only(
            stack, stack.get("CloudApp", "scripts"), stack.get("CloudJob", "report")
        )
    )
    assert len(stack.runs.of("report")) == 3
    assert "lastTrigger" not in stack.status("CloudJob", "report")

    stack.start_controller()
    stack.wait_status("CloudJob", "report", lambda s: s.get("lastTrigger") == "once")
    holds(lambda: len(stack.runs.of("report")), lambda n: n == 3, seconds=3, what="no rerun")
    assert "Triggered" not in {e["reason"] for e in stack.events("CloudJob", "report")}

    stack.annotate("CloudJob", "report", **{TRIGGER: "twice"})
    wait_for(lambda: stack.runs.of("report"), lambda r: len(r) == 6, what="the new value's run")
    stack.wait_status("CloudJob", "report", lambda s: s.get("lastTrigger") == "twice")
    holds(lambda: len(stack.runs.of("report")), lambda n: n == 6, seconds=2, what="only one")
