"""GitOps on the real API server: the manifests are server-side-applied by a field manager
of their own, as Argo CD and Flux do, while the controller runs. The controller's writes
(finalizer, its annotations, status) never conflict with that apply and are never
reverted by it; re-applying unchanged manifests changes nothing and reschedules
nothing; a changed manifest reschedules the job once."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.stack import NAMESPACE, Stack, app_manifest, job_manifest
from tests.waiting import holds, wait_for

pytestmark = pytest.mark.system

GITOPS = "argocd-controller"
FAR_FUTURE = "0 0 0 1 1 ? 2099"


def manifests(stack: Stack, cron: str) -> list[dict[str, Any]]:
    app = app_manifest("scripts", str(stack.script_app), appCacheEnable=False)
    job = job_manifest("report", "scripts", cron, script={"commandLine": stack.record_command()})
    return [app, job]


def apply_all(stack: Stack, cron: str) -> list[dict[str, Any]]:
    """Apply like a GitOps tool: server-side, its own field manager, no force."""
    return [
        stack.kube.server_side_apply(manifest, field_manager=GITOPS)
        for manifest in manifests(stack, cron)
    ]


def config_version(stack: Stack) -> int:
    """How many times the job's definition was written to ZooKeeper (+1 per reschedule)."""
    _, stat = stack.zk.get(f"/{stack.zk_namespace}/config/job/{NAMESPACE}.report")
    return int(stat.version)


def scheduled(status: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Scheduled" and c["status"] == "True" for c in status.get("conditions", [])
    )


def test_server_side_apply_by_a_gitops_tool_and_the_controller_never_fight(
    stack: Stack,
) -> None:
    stack.start_controller()
    apply_all(stack, FAR_FUTURE)
    stack.wait_status("CloudJob", "report", scheduled, what="the job scheduled")
    before = stack.get("CloudJob", "report")
    assert before["metadata"]["finalizers"], before["metadata"]
    version = config_version(stack)

    # An unchanged re-apply (a GitOps sync loop) is a no-op on the server.
    again = apply_all(stack, FAR_FUTURE)
    assert again[1]["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert again[1]["metadata"]["generation"] == before["metadata"]["generation"]
    holds(
        lambda: config_version(stack),
        lambda seen: seen == version,
        seconds=3,
        what="no reschedule after an unchanged apply",
    )

    # The controller's fields survive the apply: owned by its own managers.
    after = stack.get("CloudJob", "report")
    assert after["metadata"]["finalizers"] == before["metadata"]["finalizers"]
    assert scheduled(after["status"])
    managers = {entry["manager"] for entry in after["metadata"]["managedFields"]}
    assert GITOPS in managers and len(managers) > 1, managers
    applied_by_gitops = next(
        e for e in after["metadata"]["managedFields"] if e["manager"] == GITOPS
    )
    assert "f:status" not in yaml.safe_dump(applied_by_gitops["fieldsV1"])

    # A changed manifest: one reschedule, then quiet again.
    apply_all(stack, "0 0 0 1 1 ? 2098")
    wait_for(
        lambda: config_version(stack),
        lambda seen: seen == version + 1,
        what="one reschedule for a changed cron",
    )
    holds(
        lambda: config_version(stack),
        lambda seen: seen == version + 1,
        seconds=3,
        what="exactly one reschedule",
    )
    stack.wait_status(
        "CloudJob",
        "report",
        lambda s: (
            scheduled(s) and s.get("observedGeneration") == before["metadata"]["generation"] + 1
        ),
        what="the new generation observed",
    )
