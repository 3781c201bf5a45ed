"""The jobs and apps the API lists (controller.api.catalog): the scheduler's state of a
job, its next fires, filters, paging by key, and the namespaces the API may show."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from controller.api.catalog import (
    AppQuery,
    JobQuery,
    JobState,
    Listing,
    Scope,
    app_page,
    job_page,
    job_state,
    jobs_by_state,
    next_fires,
    scoped_view,
)
from controller.definitions import AppDefinition, JobDefinition
from controller.state import LaunchSource, RunningTask
from controller.state.records import FailoverEntry, ReadyEntry
from controller.state.view import View

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)


def job(namespace: str, name: str, cron: str = "0 * * * * ?", zone: str = "UTC") -> JobDefinition:
    return JobDefinition(
        namespace=namespace,
        name=name,
        spec={
            "appName": "app",
            "cron": cron,
            "timeZone": zone,
            "shardingTotalCount": 2,
            "cpuCount": 0.5,
            "memoryMB": 64,
            "script": {"commandLine": "run"},
        },
    )


def world() -> View:
    """a/idle scheduled, a/busy running with a run pending, b/off disabled."""
    view = View()
    for namespace in ("a", "b"):
        app = AppDefinition(
            namespace=namespace, name="app", spec={"appURL": "u", "bootstrapScript": "s"}
        )
        view.apps[app.key] = app
    for definition in (job("a", "idle"), job("a", "busy"), job("b", "off")):
        view.jobs[definition.key] = definition
    view.disabled_jobs.add("b.off")
    view.ready["a.busy"] = (ReadyEntry(count=2, fires=(NOW,)), 0)
    view.index_running(
        RunningTask(
            task_id="a.busy@-@0@-@READY@-@s1@-@u",
            job_key="a.busy",
            shard=0,
            source=LaunchSource.READY,
            agent_id="s1",
            hostname="h1",
            launched_at=NOW,
        )
    )
    view.failover["a.busy"] = {1: FailoverEntry(job_key="a.busy", shard=1, task_id="t")}
    return view


def test_a_jobs_state_is_disabled_running_pending_or_scheduled() -> None:
    view = world()
    states = {key: job_state(view, j) for key, j in view.jobs.items()}
    assert states == {
        "a.idle": JobState.SCHEDULED,
        "a.busy": JobState.RUNNING,
        "b.off": JobState.DISABLED,
    }
    view.running.clear()
    assert job_state(view, view.jobs["a.busy"]) is JobState.PENDING
    view.disabled_apps.add("a.app")
    assert job_state(view, view.jobs["a.busy"]) is JobState.DISABLED
    assert jobs_by_state(world()) == {"Scheduled": 1, "Running": 1, "Disabled": 1}


def test_next_fires_follow_the_cron_in_its_time_zone() -> None:
    assert next_fires(job("a", "j"), NOW) == [
        datetime(2026, 3, 1, 12, m, tzinfo=UTC) for m in (1, 2, 3)
    ]
    daily = job("a", "j", "0 0 9 * * ?", "Europe/Berlin")
    assert [f.hour for f in next_fires(daily, NOW, 2)] == [8, 8]


def test_a_job_item_carries_its_queues() -> None:
    page = job_page(world(), Scope(), JobQuery(job="a.busy"), NOW)
    [item] = page["items"]
    assert (item["state"], item["runningShards"], item["pendingRuns"]) == ("Running", 1, 2)
    assert item["failoverShards"] == [1]
    assert item["nextFires"][0] == "2026-03-01T12:01:00+00:00"


@pytest.mark.parametrize(
    ("query", "names"),
    [
        (JobQuery(), ["a.busy", "a.idle", "b.off"]),
        (JobQuery(namespace="a"), ["a.busy", "a.idle"]),
        (JobQuery(app="app", state=JobState.DISABLED), ["b.off"]),
        (JobQuery(namespace="a", job="idle"), ["a.idle"]),
        (JobQuery(app="other"), []),
    ],
)
def test_jobs_are_filtered(query: JobQuery, names: list[str]) -> None:
    page = job_page(world(), Scope(), query, NOW)
    assert [f"{i['namespace']}.{i['name']}" for i in page["items"]] == names


def test_pages_follow_the_keys() -> None:
    view = world()
    first = job_page(view, Scope(), JobQuery(limit=2), NOW)
    assert (len(first["items"]), first["next"]) == (2, "a.idle")
    rest = job_page(view, Scope(), JobQuery(limit=2, after=first["next"]), NOW)
    assert ([i["name"] for i in rest["items"]], rest["next"]) == (["off"], None)
    apps = app_page(view, Scope(), AppQuery(limit=1))
    assert ([a["name"] for a in apps["items"]], apps["next"]) == (["app"], "a.app")


def test_a_listings_sorted_keys_page_a_namespace_and_a_named_job_alike() -> None:
    """Walking a listing's sorted keys from where a page starts gives the pages a
    scan of every job gives, also for a namespace that prefixes another and a job
    whose name has a dot."""
    view = View()
    for namespace, name in [("t", "x"), ("t", "y.z"), ("t2", "x"), ("t", "w"), ("u", "x")]:
        view.put_job(job(namespace, name))
    keys = Listing(view).job_keys
    queries = [
        JobQuery(namespace="t", limit=1),
        JobQuery(namespace="t", limit=1, after="t.w"),
        JobQuery(namespace="t", limit=5, after="t.x"),
        JobQuery(namespace="t2"),
        JobQuery(namespace="t", job="y.z"),
        JobQuery(namespace="t", job="t.x"),
        JobQuery(namespace="t", job="x", after="t.x"),
        JobQuery(job="x", limit=2),
        JobQuery(limit=2, after="t.y.z"),
    ]
    for query in queries:
        walked = job_page(view, Scope(), query, NOW, keys)
        scanned = view.jobs
        expected = [
            k
            for k in sorted(scanned)
            if (query.after is None or k > query.after)
            and query.namespace in (None, scanned[k].namespace)
            and query.job in (None, scanned[k].name, k)
        ]
        shown = [f"{i['namespace']}.{i['name']}" for i in walked["items"]]
        assert shown == expected[: query.limit], query
        assert walked["next"] == (shown[-1] if len(expected) > query.limit else None), query


def test_a_scope_hides_every_other_namespace() -> None:
    scope = Scope(frozenset({"a"}))
    view = world()
    assert [i["name"] for i in job_page(view, scope, JobQuery(), NOW)["items"]] == ["busy", "idle"]
    assert job_page(view, scope, JobQuery(namespace="b"), NOW)["items"] == []
    assert [a["namespace"] for a in app_page(view, scope, AppQuery())["items"]] == ["a"]
    inside = scoped_view(view, Scope(frozenset({"b"})))
    assert (list(inside.jobs), inside.running, inside.by_task) == (["b.off"], {}, {})
    assert inside.disabled_jobs == {"b.off"} and not inside.ready and not inside.failover
    assert scope.narrowed(None) == ("a",)
    assert scope.narrowed("b") == ()
    assert Scope().narrowed(None) is None
