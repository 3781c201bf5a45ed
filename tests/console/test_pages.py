"""The console in Debian's Chromium: each page renders the data the API returns for
it, its filters and paging narrow what it shows as the API does, and nothing logs an
error. A screenshot of each page is kept in artifacts/console/."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.console.conftest import REPORT_RUNS, Site, Tab

pytestmark = pytest.mark.integration


def shown(time: str | None) -> str:
    """A time as the console shows it (UTC, to the second)."""
    if time is None:
        return "\N{EN DASH}"
    return datetime.fromisoformat(time).strftime("%Y-%m-%d %H:%M:%S")


def rows(page: Page, table: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in row.locator("td").all_inner_texts()]
        for row in page.locator(f"[data-table={table}] tbody tr").all()
    ]


def column(page: Page, table: str, title: str) -> list[str]:
    titles = page.locator(f"[data-table={table}] thead th").all_inner_texts()
    index = titles.index(title)
    return [row[index] for row in rows(page, table)]


def tile(page: Page, name: str) -> int:
    return int(page.locator(f"[data-tile={name}] b").inner_text())


def apply(tab: Tab, **fields: str) -> Page:
    """Fills the filter bar and applies it."""
    page = tab.page
    for name, value in fields.items():
        field = page.locator(f"form.filters [name={name}]")
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    page.locator("form.filters button[type=submit]").click()
    return tab.loaded()


def job_names(items: list[dict[str, Any]]) -> list[str]:
    return [f"{j['namespace']}/{j['name']}" for j in items]


def as_of_now(tab: Tab, api: Callable[[], Any], shows: Callable[[], Any]) -> None:
    """The page, reloaded, shows what the API answers just before or just after: for
    what changes with the clock (next fires), which may change in between."""
    before = api()
    tab.page.reload()
    tab.loaded()
    assert shows() in (before, api())


def test_the_overview_shows_jobs_apps_queues_and_failures(site: Site, tab: Tab) -> None:
    page = tab.open(site)
    statistics = site.get("statistics")
    assert tile(page, "jobs") == statistics["jobs"]["total"] == 3
    assert {s: tile(page, s.lower()) for s in ("Running", "Scheduled", "Disabled")} == {
        s: statistics["jobs"]["byState"][s] for s in ("Running", "Scheduled", "Disabled")
    }
    assert tile(page, "running-tasks") == statistics["runningTasks"] == 1
    assert tile(page, "failed-hour") == statistics["results"]["lastHour"]["failed"] == 1

    jobs = site.get("jobs")["items"]
    assert column(page, "jobs", "job") == job_names(jobs)
    assert column(page, "jobs", "state") == [j["state"] for j in jobs]
    as_of_now(
        tab,
        lambda: [shown(j["nextFires"][0]) for j in site.get("jobs")["items"]],
        lambda: column(page, "jobs", "next fire"),
    )
    assert column(page, "apps", "app") == ["ops/app", "team/app"]

    queues = site.get("queues")
    assert rows(page, "running") == [
        ["team/report", "0", "host-1", "TASK_STAGING", shown(t["launchedAt"]), shown(t["fireTime"])]
        for t in queues["running"]
    ]
    assert column(page, "ready", "runs") == [str(r["runs"]) for r in queues["ready"]]
    assert column(page, "failover", "shard") == ["1"]
    failures = site.get("runs", outcome="failed", limit="10")["items"]
    assert column(page, "failures", "why") == [r["message"] for r in failures]
    assert column(page, "failures", "host") == ["host-1"]
    tab.screenshot("overview")

    apply(tab, namespace="ops")
    assert column(page, "jobs", "job") == ["ops/archive", "ops/cleanup"]
    assert column(page, "apps", "app") == ["ops/app"]
    assert page.locator("[data-table=running]").inner_text() == "No shard is running."
    assert tile(page, "jobs") == 2
    apply(tab, namespace="", state="Disabled")
    assert column(page, "jobs", "job") == ["ops/archive"]
    apply(tab, state="", app="app", namespace="team")
    assert column(page, "jobs", "job") == ["team/report"]
    assert tab.errors == []


def test_a_job_page_shows_spec_next_fires_runs_and_transitions(site: Site, tab: Tab) -> None:
    tab.open(site)
    page = tab.page
    page.locator("[data-table=jobs] a", has_text="team/report").click()
    tab.loaded()
    assert page.locator("h1").inner_text() == "Job team/report"
    summary = page.locator("[data-summary]").inner_text()
    assert "0 * * * * ? (UTC)" in summary and "app" in summary
    as_of_now(
        tab,
        lambda: [shown(f) for f in site.get("jobs", job="team.report")["items"][0]["nextFires"]],
        lambda: page.locator("[data-list=next-fires] li").all_inner_texts(),
    )

    first = site.get("runs", namespace="team", job="report", limit="25")
    assert column(page, "runs", "started") == [shown(r["startedAt"]) for r in first["items"]]
    assert column(page, "runs", "host") == [r["hostname"] for r in first["items"]]
    assert column(page, "runs", "sandbox") == [r["sandbox"] for r in first["items"]]
    failed = page.locator("[data-table=runs] tbody tr", has_text="failed")
    assert failed.locator("td").nth(5).inner_text() == "5.0 s"
    failed.locator("summary").click()
    assert failed.locator("pre.stderr").inner_text() == "Traceback: disk full\nboom"
    transitions = site.get("transitions", namespace="team", job="report", limit="25")["items"]
    assert column(page, "transitions", "state") == [t["state"] for t in transitions]
    tab.screenshot("job")

    page.locator("[data-pager=next]", has_text="older runs").click()
    tab.loaded()
    rest = site.get("runs", namespace="team", job="report", before=str(first["next"]))
    assert len(first["items"]) + len(rest["items"]) == 3 * REPORT_RUNS
    assert column(page, "runs", "started") == [shown(r["startedAt"]) for r in rest["items"]]

    apply(tab, outcome="failed")
    assert column(page, "runs", "outcome") == ["failed"]
    assert tab.errors == []


def test_the_runs_page_filters_by_namespace_job_outcome_and_time(site: Site, tab: Tab) -> None:
    page = tab.open(site, "#/runs")
    everything = site.get("runs", limit="50")["items"]
    assert column(page, "runs", "job") == [f"{r['namespace']}/{r['job']}" for r in everything]
    tab.screenshot("runs")

    apply(tab, namespace="ops")
    assert rows(page, "runs")[0][4] == "killed"
    assert column(page, "runs", "job") == ["ops/cleanup"]
    apply(tab, namespace="team", job="report", outcome="succeeded")
    assert len(rows(page, "runs")) == 3 * REPORT_RUNS - 1

    # Since the start of the newest three runs, to the minute.
    since = site.get("runs", namespace="team", limit="9")["items"][-1]["startedAt"][:16]
    apply(tab, outcome="", since=since.replace(" ", "T"))
    expected = site.get("runs", namespace="team", job="report", since=f"{since}:00+00:00")
    assert column(page, "runs", "started") == [shown(r["startedAt"]) for r in expected["items"]]
    assert 0 < len(expected["items"]) < 3 * REPORT_RUNS
    assert tab.errors == []


def test_statistics_chart_the_results_and_count_running_tasks(site: Site, tab: Tab) -> None:
    page = tab.open(site, "#/statistics")
    assert page.locator("[data-chart=results] canvas").count() == 1
    assert page.locator("[data-chart=running] canvas").count() == 1
    total = int(page.locator("[data-total]").get_attribute("data-total") or "-1")
    assert total == 3 * REPORT_RUNS + 1
    statistics = site.get("statistics")
    assert rows(page, "results") == [
        [label, *(str(statistics["results"][window][o]) for o in ("succeeded", "failed", "killed"))]
        for label, window in [
            ("last minute", "lastMinute"),
            ("last hour", "lastHour"),
            ("last day", "lastDay"),
        ]
    ]
    assert page.locator("[data-running]").inner_text() == "1 now"
    tab.screenshot("statistics")

    apply(tab, job="ops.cleanup", interval="day")
    assert page.locator("[data-total]").get_attribute("data-total") == "1"
    assert page.locator("h2").first.inner_text() == "Runs that ended per day"
    assert tab.errors == []
