"""The orphan sweep over the whole stack: jobs and apps the scheduler holds in ZooKeeper
whose objects went without passing through the controller's finalizer are removed —
their tasks killed — within the watched namespaces only."""

from __future__ import annotations

import urllib.parse

import pytest

from tests.stack import NAMESPACE, Stack, metric
from tests.waiting import holds, wait_for

pytestmark = pytest.mark.system

FAR_FUTURE = "0 0 0 1 1 ? 2099"
REMOVED = "cloudjob_orphans_removed_total"


def ready(stack: Stack, name: str, namespace: str = NAMESPACE) -> None:
    def is_ready() -> bool:
        found = stack.kube.get("cloudjob.io/v1alpha1", "CloudJob", name, namespace)
        conditions = (found.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    wait_for(is_ready, bool, what=f"{namespace}/{name} Ready")


def test_objects_whose_finalizer_was_stripped_while_no_controller_ran_are_unscheduled(
    stack: Stack,
) -> None:
    first = stack.start_controller()
    stack.script_app_object()
    sleepy = f'sh -c \'printf "%s\\n" "$0" >> {stack.runs.path}; exec sleep 120\''
    stack.script_job("report", FAR_FUTURE, script={"commandLine": sleepy})
    ready(stack, "report")
    stack.annotate("CloudJob", "report", **{"cloudjob.io/trigger": "go"})
    status = stack.wait_status(
        "CloudJob", "report", lambda s: len(s.get("activeShards") or []) == 3, what="3 tasks"
    )
    task_ids = {shard["taskId"] for shard in status["activeShards"]}
    first.stop()

    # Deleted while no controller runs, then unblocked by hand: no handler ever sees it.
    for kind, name in (("CloudJob", "report"), ("CloudApp", "scripts")):
        stack.delete(kind, name)
        stack.strip_finalizers(kind, name)
        wait_for(lambda k=kind, n=name: stack.exists(k, n), lambda e: not e, what=f"{name} gone")
    assert stack.zk_children("config/job") == [f"{NAMESPACE}.report"]

    second = stack.start_controller("replica-2")
    wait_for(
        lambda: (stack.zk_children("config/job"), stack.zk_children("config/app")),
        lambda held: held == ([], []),
        what="the orphaned job and app removed from ZooKeeper",
    )
    wait_for(
        stack.mesos_tasks,
        lambda known: all(known.get(t) == "TASK_KILLED" for t in task_ids),
        what="the orphan's tasks killed",
    )
    assert stack.zk_children("state/running") == []
    assert metric(second, REMOVED, kind="CloudJob") == 1
    assert metric(second, REMOVED, kind="CloudApp") == 1


def test_only_watched_namespaces_are_swept_and_a_deleted_namespace_leaves_no_jobs(
    stack: Stack,
) -> None:
    first = stack.start_controller()
    for namespace in ("orphans-a", "orphans-b"):
        stack.create_namespace(namespace)
        stack.script_app_object(namespace=namespace)
        stack.script_job("report", FAR_FUTURE, namespace=namespace)
    stack.script_app_object()
    stack.script_job("report", FAR_FUTURE)
    for namespace in ("orphans-a", "orphans-b", NAMESPACE):
        ready(stack, "report", namespace)
    first.stop()

    # orphans-a is deleted (its objects unblocked by hand); orphans-b's objects are deleted too,
    # but the next controller does not watch orphans-b: what is held there is not its own.
    stack.kube.delete("v1", "Namespace", "orphans-a")
    for namespace in ("orphans-a", "orphans-b"):
        for kind, name in (("CloudJob", "report"), ("CloudApp", "scripts")):
            if namespace == "orphans-b":
                stack.delete(kind, name, namespace)
            stack.strip_finalizers(kind, name, namespace)
    wait_for(
        lambda: [n["metadata"]["name"] for n in stack.kube.list("v1", "Namespace")],
        lambda names: "orphans-a" not in names,
        what="orphans-a gone",
    )

    second = stack.start_controller("replica-2", namespaces=[NAMESPACE, "orphans-a"])
    wait_for(
        lambda: stack.zk_children("config/job"),
        lambda held: held == [f"{NAMESPACE}.report", "orphans-b.report"],
        what="orphans-a's job removed",
    )
    holds(
        lambda: (stack.zk_children("config/job"), stack.zk_children("config/app")),
        lambda held: (
            held
            == (
                [f"{NAMESPACE}.report", "orphans-b.report"],
                [f"{NAMESPACE}.scripts", "orphans-b.scripts"],
            )
        ),
        seconds=3,
        what="the watched namespace's live job and the unwatched namespace's job kept",
    )
    assert metric(second, REMOVED, kind="CloudJob") == 1
    assert metric(second, REMOVED, kind="CloudApp") == 1
    # kopf's index knows the live objects: only the orphans were looked up on the server.
    looked_up = {
        event["objectRef"].get("namespace")
        for event in stack.requests()
        if event.get("objectRef", {}).get("apiGroup") == "cloudjob.io"
        and "metadata.name" in urllib.parse.unquote(event["requestURI"])
    }
    assert looked_up == {"orphans-a"}, looked_up
