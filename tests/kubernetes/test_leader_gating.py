"""Leader gating: a standby makes no request to the Kubernetes API at all, a term that lost
its leadership writes no status, and the endpoints report the role and the ZooKeeper
connection as docs/operations.md says."""

from __future__ import annotations

from typing import Any

import pytest

from controller.app import ControllerThread, Role
from controller.dirty import ObjectKind
from controller.reconcilers.handling import ObjectView, Reconciliation
from controller.reconcilers.status import AppAvailability
from controller.settings import ZooKeeperSettings
from tests.kubernetes.core import MemoryCore
from tests.stack import Stack
from tests.system.test_leadership import leading_metric, readyz
from tests.tcp_proxy import TcpProxy
from tests.waiting import holds, wait_for

pytestmark = pytest.mark.system

FAR_FUTURE = "0 0 0 1 1 ? 2099"
SPEC: dict[str, Any] = {
    "appName": "demo",
    "cron": FAR_FUTURE,
    "shardingTotalCount": 1,
    "cpuCount": 0.1,
    "memoryMB": 16.0,
    "script": {"commandLine": "echo hi"},
}


def controller_requests(stack: Stack) -> list[str]:
    """The controller's requests to the API server, from its audit log."""
    return [f"{event['verb']} {event['requestURI']}" for event in stack.requests()]


def test_a_standby_makes_no_api_request_and_acts_once_it_leads(stack: Stack) -> None:
    election = f"/{stack.zk_namespace}/ha/election"
    stack.zk.ensure_path(election)
    other = stack.zk.create(f"{election}/n_{'0' * 32}_", b"another", ephemeral=True, sequence=True)
    replica = stack.start_controller()
    wait_for(lambda: replica.controller.role, lambda r: r is Role.STANDBY, what="standing by")
    stack.script_app_object()
    stack.script_job("report", FAR_FUTURE)

    health, metrics = (
        replica.controller.endpoints.health_port,
        replica.controller.endpoints.metrics_port,
    )
    holds(
        lambda: (controller_requests(stack), stack.zk_children("config/job")),
        lambda seen: seen == ([], []),
        seconds=3,
        what="a standby that touches nothing",
    )
    assert readyz(health) == {
        "role": "standby",
        "zookeeper": "connected",
        "ready": True,
        "identity": "replica-1",
        "terms": 0,
        "history": "idle",  # a standby has nothing to write
    }
    assert leading_metric(metrics) == 0.0
    assert "status" not in stack.get("CloudJob", "report")
    assert stack.events("CloudJob", "report") == []

    stack.zk.delete(other)
    stack.wait_status(
        "CloudJob", "report", lambda s: s.get("state") == "Scheduled", what="the new leader acts"
    )
    assert stack.get("CloudJob", "report")["metadata"]["finalizers"] == ["cloudjob.io/finalizer"]
    assert readyz(health)["role"] == "leader"
    wait_for(lambda: leading_metric(metrics), lambda v: v == 1.0, what="leading metric")


def test_readyz_follows_the_zookeeper_connection_and_the_role_comes_back(stack: Stack) -> None:
    zk_host, zk_port = stack.zk_hosts.split(":")
    proxy = TcpProxy(zk_host, int(zk_port))
    try:
        settings = stack.settings("replica-1")
        settings = settings.model_copy(
            update={
                "zookeeper": ZooKeeperSettings(
                    hosts=proxy.hosts, namespace=stack.zk_namespace, session_timeout=2.0
                )
            }
        )
        replica = ControllerThread(settings)
        replica.start()
        stack.replicas.append(replica)
        health = replica.controller.endpoints.health_port
        metrics = replica.controller.endpoints.metrics_port
        wait_for(lambda: readyz(health).get("role"), lambda r: r == "leader", what="leading")
        wait_for(lambda: leading_metric(metrics), lambda v: v == 1.0, what="the core started")

        proxy.cut()
        down = wait_for(
            lambda: readyz(health),
            lambda answer: answer.get("ready") is False,
            what="/readyz 503 without ZooKeeper",
        )
        assert down["zookeeper"] in ("suspended", "lost")
        wait_for(lambda: leading_metric(metrics), lambda v: v == 0.0, what="no longer leading")

        proxy.restore()
        back = wait_for(
            lambda: readyz(health),
            lambda answer: answer.get("role") == "leader" and answer.get("ready") is True,
            what="leading again once ZooKeeper answers",
        )
        assert back["terms"] == 2
        wait_for(lambda: leading_metric(metrics), lambda v: v == 1.0, what="the core again")
    finally:
        for replica in stack.replicas:
            replica.stop()
        proxy.close()


def job_view(status: dict[str, Any] | None = None) -> ObjectView:
    return ObjectView(
        namespace="team-a",
        name="report",
        generation=1,
        spec=SPEC,
        status=status or {},
        annotations={},
    )


async def test_a_term_that_lost_its_leadership_writes_no_status() -> None:
    core, leads = MemoryCore(), [True]
    reconciliation = Reconciliation(ops=core, leading=lambda: leads[0])
    posted: list[str] = []

    def post(*, warning: bool, reason: str, message: str) -> None:
        posted.append(reason)

    def available(namespace: str, name: str) -> AppAvailability:
        return AppAvailability.AVAILABLE

    await reconciliation.job_changed(job_view(), available, post)
    assert reconciliation.dirty.pop() == (ObjectKind.JOB, "team-a.report")
    status = await reconciliation.job_refresh(job_view(), available, post)
    assert status is not None and status["state"] == "Scheduled"

    # The election moved on: the core stopped and would describe the job as unscheduled.
    leads[0], core.leading = False, False
    assert await reconciliation.job_refresh(job_view(status), available, post) is None
