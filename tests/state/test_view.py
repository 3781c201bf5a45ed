"""The view's index of jobs by app follows `put_job` and `forget_job`."""

from __future__ import annotations

import pytest

from controller.definitions import JobDefinition
from controller.state.view import View

pytestmark = pytest.mark.unit


def job(name: str, app: str) -> JobDefinition:
    return JobDefinition(
        namespace="ns",
        name=name,
        spec={
            "appName": app,
            "cron": "0 * * * * ?",
            "shardingTotalCount": 1,
            "cpuCount": 0.1,
            "memoryMB": 32,
            "script": {"commandLine": "echo"},
        },
    )


def test_jobs_of_an_app_follow_puts_moves_and_forgets() -> None:
    view = View()
    view.put_job(job("a", "one"))
    view.put_job(job("b", "one"))
    view.put_job(job("c", "two"))
    assert [j.name for j in view.jobs_of_app("ns.one")] == ["a", "b"]

    view.put_job(job("b", "two"))  # appName changed
    view.put_job(job("a", "one"))  # same app again: no duplicate
    assert [j.name for j in view.jobs_of_app("ns.one")] == ["a"]
    assert [j.name for j in view.jobs_of_app("ns.two")] == ["c", "b"]

    view.forget_job("a")  # not a key: nothing happens
    view.forget_job("ns.a")
    view.forget_job("ns.a")
    assert view.jobs_of_app("ns.one") == []
    assert "ns.one" not in view.jobs_by_app
    assert sorted(view.jobs) == ["ns.b", "ns.c"]
