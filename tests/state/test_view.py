"""The view's index of jobs by app follows `put_job` and `forget_job`; its count of
running tasks per executor follows every index and unindex of a running task."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.definitions import JobDefinition
from controller.state.records import LaunchSource, RunningTask
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


def task(number: int, job_key: str, shard: int, executor: str | None, state: str) -> RunningTask:
    return RunningTask(
        task_id=f"task-{number}",
        job_key=job_key,
        shard=shard,
        source=LaunchSource.READY,
        agent_id="agent",
        hostname="host",
        launched_at=datetime(2026, 1, 1, tzinfo=UTC),
        executor_id=executor,
        state=state,
    )


STEPS = st.lists(
    st.tuples(
        st.sampled_from(["index", "update", "unindex"]),
        st.integers(0, 5),
        st.sampled_from(["ns.a", "ns.b"]),
        st.integers(0, 1),
        st.sampled_from([None, "exec-1", "exec-2"]),
    ),
    max_size=40,
)


@given(STEPS)
def test_executor_counts_follow_the_running_tasks(
    steps: list[tuple[str, int, str, int, str | None]],
) -> None:
    view = View()
    for action, number, job_key, shard, executor in steps:
        if action == "index":
            view.index_running(task(number, job_key, shard, executor, "TASK_STAGING"))
        elif action == "update":
            current = view.running.get(job_key, {}).get(shard)
            if current is not None:
                view.index_running(current.with_state("TASK_RUNNING"))
        else:
            current = view.running.get(job_key, {}).get(shard)
            if current is not None:
                view.unindex_running(current)
        expected = Counter(
            t.executor_id
            for shards in view.running.values()
            for t in shards.values()
            if t.executor_id
        )
        assert view.executors == dict(expected)
        assert view.copy().executors == view.executors
