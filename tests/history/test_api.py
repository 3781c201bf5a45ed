"""The history API over HTTP, against real SQLite and PostgreSQL and a real ZooKeeper:
every answer is checked against the OpenAPI document, which is itself validated."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from jsonschema import Draft202012Validator
from kazoo.client import KazooClient
from openapi_spec_validator import validate
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from controller.api.openapi import DOCUMENT
from controller.api.server import HistoryApi
from controller.definitions import AppDefinition, JobDefinition
from controller.endpoints import Endpoints, Health
from controller.history.records import Outcome
from controller.history.settings import HistorySettings
from controller.history.spool import SpoolUnit
from controller.history.writer import HistoryWriter
from controller.mesos.history_spool import ZkSpool
from controller.operations import ReconcileKind, SchedulingError
from controller.state import Layout, StateStore
from tests.history.conftest import Database
from tests.history.factories import T0, ended, launched, queue_every_way, transition

pytestmark = pytest.mark.integration


class NodeFence:
    """The write fence of a state store: a node that exists while we 'lead'."""

    def __init__(self, client: KazooClient) -> None:
        self.path = f"/fence-{uuid.uuid4().hex[:8]}"
        client.create(self.path)

    def token(self) -> str:
        return self.path


APP_SPEC: dict[str, Any] = {
    "appURL": "http://repo/app.tar.gz",
    "bootstrapScript": "bin/start.sh",
}
JOB_SPEC: dict[str, Any] = {
    "appName": "app",
    "cron": "0 * * * * ?",
    "shardingTotalCount": 3,
    "executionType": "TRANSIENT",
    "cpuCount": 0.1,
    "memoryMB": 32,
    "failover": True,
    "script": {"commandLine": "echo"},
}


def seeded_queues(client: KazooClient, layout: Layout) -> None:
    """One job with a pending run, a running shard and a failover shard."""
    store = StateStore.on_kazoo(client, NodeFence(client), layout=layout)
    store.load()
    store.put_app(AppDefinition(namespace="team", name="app", spec=APP_SPEC))
    job = JobDefinition(namespace="team", name="report", spec=JOB_SPEC)
    store.put_job(job)
    queue_every_way(store, job.key, T0, "u")
    store.fire([job.key], T0 + timedelta(minutes=1))


class Leader:
    """What the API asks the leader's core for: reconciliations (refused while standing by)."""

    def __init__(self) -> None:
        self.leading = True
        self.asked: list[tuple[ReconcileKind, str | None]] = []

    def reconcile(self, kind: ReconcileKind, app: str | None) -> int:
        if not self.leading:
            raise SchedulingError("this replica does not lead; ask the leader (see /readyz)")
        self.asked.append((kind, app))
        return 0 if kind is ReconcileKind.IMPLICIT else 2


@pytest.fixture
def leader() -> Leader:
    return Leader()


@pytest.fixture
def served(
    database: Database, zk_client: KazooClient, zk_namespace: str, leader: Leader
) -> Iterator[tuple[int, HistoryWriter]]:
    layout = Layout(zk_namespace)
    seeded_queues(zk_client, layout)
    api = HistoryApi(
        database_url=database.url,
        timeout=5.0,
        zookeeper=lambda: zk_client,
        layout=layout,
        reconcile=leader.reconcile,
    )
    # The records date from T0: keep them whatever today is.
    settings = HistorySettings(
        database_url=SecretStr(database.url), retry_seconds=0.05, retention_days=36500
    )
    writer = HistoryWriter(settings, registry=CollectorRegistry())
    endpoints = Endpoints(
        host="127.0.0.1",
        health_port=0,
        metrics_port=0,
        registry=CollectorRegistry(),
        snapshot=lambda: Health("leader", "connected", True, "test", 1),
        api=api.answer,
    )
    api.start()
    endpoints.start()
    yield endpoints.health_port, writer
    endpoints.stop()
    api.stop()


def get(port: int, path: str, method: str = "GET") -> tuple[int, Any]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def conforms(body: Any, schema: str) -> None:
    validator = Draft202012Validator(
        {"$ref": f"#/components/schemas/{schema}", "components": DOCUMENT["components"]},
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    validator.validate(body)


def test_the_openapi_document_is_valid() -> None:
    validate(DOCUMENT)


async def fill(writer: HistoryWriter, spool: ZkSpool) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop))
    writer.lead(spool)
    records: list[Any] = []
    for n in range(3):
        fire = T0 + timedelta(minutes=n)
        for shard in range(3):
            outcome = Outcome.FAILED if (n, shard) == (2, 1) else Outcome.SUCCEEDED
            records += [
                launched(shard=shard, fire=fire),
                ended(
                    shard=shard,
                    outcome=outcome,
                    fire=fire,
                    message="exit status 3" if outcome is Outcome.FAILED else None,
                ),
            ]
    writer.submit(SpoolUnit.of([*records, transition(), transition(state="TASK_FAILED")]))
    await writer.wait_until(lambda: writer.buffered == 0 and writer.summaries.loaded)
    stop.set()
    await task


async def test_runs_transitions_statistics_and_queues_conform_to_the_document(
    served: tuple[int, HistoryWriter],
    zk_client: KazooClient,
    zk_namespace: str,
) -> None:
    port, writer = served
    await fill(writer, ZkSpool(zk_client, Layout(zk_namespace)))

    status, failed = get(port, "/api/v1/runs?namespace=team&job=report&outcome=failed")
    assert status == 200
    conforms(failed, "RunPage")
    assert [
        (r["shard"], r["hostname"], r["message"], r["exitStatus"]) for r in failed["items"]
    ] == [(1, "host-1", "exit status 3", 3)]

    status, first = get(port, "/api/v1/runs?job=team.report&limit=4")
    conforms(first, "RunPage")
    status, rest = get(port, f"/api/v1/runs?job=team.report&limit=10&before={first['next']}")
    conforms(rest, "RunPage")
    ids = [r["id"] for r in first["items"] + rest["items"]]
    assert len(ids) == 9 == len(set(ids)) and ids == sorted(ids, reverse=True)
    assert rest["next"] is None

    status, moves = get(port, "/api/v1/transitions?namespace=team&state=TASK_FAILED")
    assert status == 200
    conforms(moves, "TransitionPage")
    assert [m["state"] for m in moves["items"]] == ["TASK_FAILED"]

    status, statistics = get(port, "/api/v1/statistics")
    assert status == 200
    conforms(statistics, "Statistics")
    assert statistics["runningTasks"] == 1
    assert statistics["jobs"] == {
        "total": 1,
        "byExecutionType": {"TRANSIENT": 1},
        "byKind": {"script": 1},
        "byState": {"Running": 1},
    }

    window = urlencode({"since": T0.isoformat(), "until": (T0 + timedelta(hours=1)).isoformat()})
    status, series = get(port, f"/api/v1/statistics/results?interval=minute&{window}")
    assert status == 200
    conforms(series, "ResultSeries")
    assert [(i["start"], i["succeeded"], i["failed"]) for i in series["items"]] == [
        ((T0 + timedelta(minutes=n)).isoformat(), 3 - (n == 2), int(n == 2)) for n in range(3)
    ]
    status, hourly = get(port, f"/api/v1/statistics/results?interval=hour&{window}")
    conforms(hourly, "ResultSeries")
    assert [(i["succeeded"], i["failed"]) for i in hourly["items"]] == [(8, 1)]
    status, refused = get(port, f"/api/v1/statistics/results?interval=week&{window}")
    assert status == 400
    conforms(refused, "Error")

    status, queues = get(port, "/api/v1/queues")
    assert status == 200
    conforms(queues, "Queues")
    assert [(q["job"], q["runs"]) for q in queues["ready"]] == [("report", 1)]
    assert [(q["shard"], q["hostname"]) for q in queues["running"]] == [(0, "host-1")]
    assert [q["shard"] for q in queues["failover"]] == [1]

    status, jobs = get(port, "/api/v1/jobs?namespace=team&app=app")
    assert status == 200
    conforms(jobs, "JobPage")
    [job] = jobs["items"]
    assert (job["name"], job["state"], job["runningShards"], job["pendingRuns"]) == (
        "report",
        "Running",
        1,
        1,
    )
    assert job["failoverShards"] == [1] and len(job["nextFires"]) == 3
    status, none = get(port, "/api/v1/jobs?state=Disabled")
    assert (status, none) == (200, {"items": [], "next": None})

    status, apps = get(port, "/api/v1/apps")
    assert status == 200
    conforms(apps, "AppPage")
    assert [(a["name"], a["jobs"], a["disabled"]) for a in apps["items"]] == [("app", 1, False)]

    status, document = get(port, "/api/v1/openapi.json")
    assert status == 200 and document["openapi"] == "3.1.0"


def test_jobs_and_apps_page_by_key(zk_client: KazooClient, zk_namespace: str) -> None:
    layout = Layout(zk_namespace)
    store = StateStore.on_kazoo(zk_client, NodeFence(zk_client), layout=layout)
    store.load()
    for namespace in ("a", "b"):
        store.put_app(AppDefinition(namespace=namespace, name="app", spec=APP_SPEC))
        for name in ("j1", "j2", "j3"):
            store.put_job(JobDefinition(namespace=namespace, name=name, spec=JOB_SPEC))
    api = HistoryApi(
        database_url="sqlite+aiosqlite:///unused",
        timeout=5.0,
        zookeeper=lambda: zk_client,
        layout=layout,
        reconcile=Leader().reconcile,
    )
    api.start()
    try:
        keys: list[str] = []
        after = ""
        while after is not None:
            status, page = api.answer("GET", "/api/v1/jobs", {"limit": "4", "after": after})
            assert status == 200
            conforms(page, "JobPage")
            keys += [f"{j['namespace']}.{j['name']}" for j in page["items"]]
            after = page["next"]
        assert keys == ["a.j1", "a.j2", "a.j3", "b.j1", "b.j2", "b.j3"]
        status, page = api.answer("GET", "/api/v1/jobs", {"job": "b.j2"})
        assert [j["name"] for j in page["items"]] == ["j2"]
        status, page = api.answer("GET", "/api/v1/apps", {"limit": "1"})
        assert (status, page["next"], page["items"][0]["jobs"]) == (200, "a.app", 3)
        assert api.answer("GET", "/api/v1/jobs", {"state": "Sleeping"})[0] == 400
        assert api.answer("GET", "/api/v1/apps", {"limit": "0"})[0] == 400
    finally:
        api.stop()


def test_an_api_limited_to_namespaces_shows_nothing_outside_them(
    served: tuple[int, HistoryWriter],
    database: Database,
    zk_client: KazooClient,
    zk_namespace: str,
) -> None:
    """The served API holds runs and queues of namespace 'team' only."""
    _, writer = served
    asyncio.run(fill(writer, ZkSpool(zk_client, Layout(zk_namespace))))

    def answers(namespaces: tuple[str, ...]) -> HistoryApi:
        return HistoryApi(
            database_url=database.url,
            timeout=5.0,
            zookeeper=lambda: zk_client,
            layout=Layout(zk_namespace),
            reconcile=Leader().reconcile,
            namespaces=namespaces,
        )

    inside, outside = answers(("team", "other")), answers(("other",))
    inside.start()
    outside.start()
    try:
        window = {"since": T0.isoformat(), "until": (T0 + timedelta(hours=1)).isoformat()}
        for path, query, count in [
            ("/api/v1/runs", {}, 9),
            ("/api/v1/runs", {"namespace": "team"}, 9),
            ("/api/v1/runs", {"job": "team.report"}, 9),
            ("/api/v1/transitions", {"namespace": "team", "job": "report"}, 2),
            ("/api/v1/transitions", {}, 2),
            ("/api/v1/jobs", {}, 1),
            ("/api/v1/apps", {}, 1),
            ("/api/v1/statistics/results", {"interval": "hour", **window}, 1),
        ]:
            assert len(inside.answer("GET", path, query)[1]["items"]) == count, path
            assert outside.answer("GET", path, query)[1]["items"] == [], path
        elsewhere = {"namespace": "other", "job": "team.report"}
        assert inside.answer("GET", "/api/v1/runs", elsewhere)[1]["items"] == []
        queues = outside.answer("GET", "/api/v1/queues", {})[1]
        assert queues == {"ready": [], "running": [], "failover": []}
        assert inside.answer("GET", "/api/v1/queues", {"namespace": "other"})[1] == queues
        statistics = outside.answer("GET", "/api/v1/statistics", {})[1]
        assert (statistics["runningTasks"], statistics["jobs"]["total"]) == (0, 0)
        status, body = outside.answer("POST", "/api/v1/reconcile", {"app": "team.app"})
        assert status == 403
        conforms(body, "Error")
    finally:
        inside.stop()
        outside.stop()


def test_a_malformed_parameter_is_a_400_in_the_documented_shape(
    served: tuple[int, HistoryWriter],
) -> None:
    port, _ = served
    status, body = get(port, "/api/v1/runs?since=yesterday")
    assert status == 400
    conforms(body, "Error")


def test_reconciliation_is_asked_of_the_leader_and_refused_by_a_standby(
    served: tuple[int, HistoryWriter], leader: Leader
) -> None:
    port, _ = served
    status, body = get(port, "/api/v1/reconcile?kind=explicit&app=team.app", "POST")
    assert status == 200
    conforms(body, "Reconciled")
    assert body == {"kind": "explicit", "app": "team.app", "tasks": 2}
    status, body = get(port, "/api/v1/reconcile?kind=implicit", "POST")
    assert (status, body["tasks"]) == (200, 0)
    assert leader.asked == [(ReconcileKind.EXPLICIT, "team.app"), (ReconcileKind.IMPLICIT, None)]
    status, body = get(port, "/api/v1/reconcile?kind=sideways", "POST")
    assert status == 400
    conforms(body, "Error")
    leader.leading = False
    status, body = get(port, "/api/v1/reconcile", "POST")
    assert status == 503 and "does not lead" in body["error"]
    conforms(body, "Error")
