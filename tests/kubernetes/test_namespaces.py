"""Watching a list of namespaces (`kubernetes.namespaces`) instead of the whole cluster:
objects elsewhere are left alone entirely, and a listed namespace created after the
controller started is served as soon as it exists."""

from __future__ import annotations

from typing import Any

import pytest

from tests.stack import NAMESPACE, Stack
from tests.waiting import holds, wait_for

pytestmark = pytest.mark.system

FAR_FUTURE = "0 0 0 1 1 ? 2099"
API_VERSION = "cloudjob.io/v1alpha1"


def job(stack: Stack, namespace: str) -> dict[str, Any]:
    return stack.kube.get(API_VERSION, "CloudJob", "report", namespace)


def scheduled(stack: Stack, namespace: str) -> bool:
    return (job(stack, namespace).get("status") or {}).get("state") == "Scheduled"


def test_only_the_listed_namespaces_are_served_even_one_created_later(stack: Stack) -> None:
    stack.create_namespace("listed-a")
    stack.start_controller(namespaces=["listed-a", "listed-b"])
    for namespace in (NAMESPACE, "listed-a"):
        stack.script_app_object(namespace=namespace)
        stack.script_job("report", FAR_FUTURE, namespace=namespace)
    wait_for(lambda: scheduled(stack, "listed-a"), bool, what="listed-a's job scheduled")

    stack.create_namespace("listed-b")
    # The chart's Role can only be granted in a namespace that exists (helm upgrade).
    stack.account_for(["listed-a", "listed-b"])
    stack.script_app_object(namespace="listed-b")
    stack.script_job("report", FAR_FUTURE, namespace="listed-b")
    wait_for(lambda: scheduled(stack, "listed-b"), bool, what="listed-b's job scheduled")

    untouched = job(stack, NAMESPACE)
    assert "status" not in untouched
    assert not untouched["metadata"].get("finalizers")
    assert stack.events("CloudJob", "report") == []
    holds(
        lambda: stack.zk_children("config/job"),
        lambda held: held == ["listed-a.report", "listed-b.report"],
        seconds=2,
        what="only the listed namespaces' jobs held",
    )
