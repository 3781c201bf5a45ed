"""End to end, the run history on the local stack, against SQLite and PostgreSQL.

A job with 3 shards runs once and one shard fails; the leader process is killed and
the standby takes over. Afterwards the history API, the CloudJob status and the
metrics — all read from the new leader — agree exactly on how many runs succeeded
and failed, which host ran each shard, and why the failure happened. And with
PostgreSQL stopped while jobs run, scheduling goes on and the controller says what
it dropped.

Nothing is lost when the leader is killed before its records reach the database:
with the database down, runs end and their records pile up (in the leader's buffer
and in ZooKeeper's spool); the leader is killed with SIGKILL, the database comes back,
and the new leader's history, CloudJob status and metrics count exactly the runs the
job itself recorded. With SQLite the stack's replicas share one file (as the restarts
of one pod share its volume; replicas in separate pods each keep their own history),
and "down" is another process holding the file's write lock.

A job deleted and created again under the same name counts from zero, while the old
job's runs stay in the history.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from devcluster.postgres import PostgresServer
from devcluster.zookeeper import free_port
from tests.stack import NAMESPACE, Stack, leading, metric
from tests.system.test_leadership import readyz
from tests.waiting import wait_for

pytestmark = pytest.mark.system

# Fires on 29 February only: the test's one run is the trigger's.
LEAP_DAY = "0 0 0 29 2 ?"
FAILING_SHARD_1 = "sh -c 'test \"$CLOUDJOB_SHARDING_ITEM\" != 1 || exit 3'"
RUNS = f"/api/v1/runs?namespace={NAMESPACE}&job=report"


@pytest.fixture(params=["sqlite", "postgresql"])
def history_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None  # the stack's default: SQLite in its workdir, shared by its replicas
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"e{uuid.uuid4().hex[:12]}")


def api(port: int, path: str) -> Any:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as reply:
            return json.load(reply)
    except (urllib.error.URLError, OSError):
        return None


def job_samples(port: int) -> dict[tuple[str, str], float]:
    """(sample name, outcome) → value of the per-job samples of `report`."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
            text = reply.read().decode()
    except OSError:
        return {}
    return {
        (sample.name, sample.labels.get("outcome", "")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.labels.get("job_name") == "report"
    }


def mesos_hosts(stack: Stack) -> dict[str, str]:
    """Task id → host name of the agent the local Mesos ran it on."""
    state = stack.mesos.state()
    agents = {agent["id"]: agent["hostname"] for agent in state.get("slaves", [])}
    return {
        task["id"]: agents[task["slave_id"]]
        for framework in state.get("frameworks", [])
        for task in [*framework.get("tasks", []), *framework.get("completed_tasks", [])]
    }


def test_after_the_leader_is_killed_api_status_and_metrics_agree_on_every_run(
    stack: Stack, history_url: str | None
) -> None:
    stack.history_url = history_url
    ports = {name: (free_port(), free_port()) for name in ("replica-a", "replica-b")}
    first = stack.start_process(
        "replica-a", health_port=ports["replica-a"][0], metrics_port=ports["replica-a"][1]
    )
    wait_for(stack.leader, lambda leader: leader == "replica-a", what="replica-a to lead")
    stack.start_process(
        "replica-b", health_port=ports["replica-b"][0], metrics_port=ports["replica-b"][1]
    )
    wait_for(
        lambda: readyz(ports["replica-b"][0]).get("role"),
        lambda role: role == "standby",
        what="replica-b standing by",
    )
    stack.script_app_object()
    stack.script_job("report", LEAP_DAY, script={"commandLine": FAILING_SHARD_1})
    stack.wait_status("CloudJob", "report", lambda s: s.get("state") == "Scheduled")
    stack.annotate("CloudJob", "report", **{"cloudjob.io/trigger": "run-1"})
    ended = wait_for(
        lambda: (api(ports["replica-a"][0], RUNS) or {}).get("items", []),
        lambda items: len(items) == 3 and all(item["outcome"] for item in items),
        timeout=60,
        what="three shard runs ended in the history",
    )

    first.kill()
    first.wait()
    wait_for(stack.leader, lambda leader: leader == "replica-b", what="replica-b elected")
    b_health, b_metrics = ports["replica-b"]
    wait_for(lambda: readyz(b_health).get("role"), lambda r: r == "leader", what="b leading")

    # The history API, from the new leader.
    runs = {run["shard"]: run for run in api(b_health, RUNS)["items"]}
    assert sorted(runs.values(), key=lambda r: r["id"]) == sorted(ended, key=lambda r: r["id"])
    assert {s: r["outcome"] for s, r in runs.items()} == {
        0: "succeeded",
        1: "failed",
        2: "succeeded",
    }
    failed = runs[1]
    assert failed["exitStatus"] == 3
    assert failed["message"] == "Command exited with status 3"
    assert failed["state"] == "TASK_FAILED"
    hosts = {shard: run["hostname"] for shard, run in runs.items()}
    ran_on = mesos_hosts(stack)
    assert hosts == {shard: ran_on[run["taskId"]] for shard, run in runs.items()}
    moves = api(b_health, f"/api/v1/transitions?namespace={NAMESPACE}&state=TASK_FAILED")
    assert [(m["taskId"], m["hostname"]) for m in moves["items"]] == [(failed["taskId"], hosts[1])]

    # The CloudJob's status, written by the new leader.
    status = stack.wait_status(
        "CloudJob",
        "report",
        lambda s: (s.get("succeeded"), s.get("failed")) == (2, 1) and bool(s.get("recentRuns")),
        what="exact counters and the run in status",
    )
    (run,) = status["recentRuns"]
    assert run["outcome"] == "Failed"
    assert {s["shard"]: (s["host"], s["outcome"], s.get("message")) for s in run["shards"]} == {
        shard: (hosts[shard], r["outcome"], r["message"]) for shard, r in runs.items()
    }

    # The new leader's metrics.
    samples = wait_for(
        lambda: job_samples(b_metrics),
        lambda found: ("cloudjob_job_runs_total", "succeeded") in found,
        what="per-job metrics on the new leader",
    )
    assert samples[("cloudjob_job_runs_total", "succeeded")] == 2
    assert samples[("cloudjob_job_runs_total", "failed")] == 1
    assert samples[("cloudjob_job_running_shards", "")] == 0
    assert samples[("cloudjob_job_pending_runs", "")] == 0


def test_postgresql_stopped_while_jobs_run_loses_no_scheduling_and_drops_are_told(
    stack: Stack, postgres: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="controller.history.writer")
    stack.history_url = postgres.create_database(f"d{uuid.uuid4().hex[:12]}")
    stack.history_buffer = 10
    replica = stack.start_controller()
    wait_for(lambda: leading(replica), bool, what="leading")
    health = replica.controller.endpoints.health_port
    wait_for(lambda: readyz(health).get("history"), lambda h: h == "ok", what="history ok")
    stack.script_app_object()
    stack.script_job("ticker", "*/2 * * * * ?")
    wait_for(lambda: stack.runs.of("ticker"), lambda runs: len(runs) >= 3, what="first runs")

    postgres.stop_server()
    try:
        down = wait_for(
            lambda: readyz(health).get("history", ""),
            lambda h: h.startswith("unavailable"),
            what="/readyz telling the history is unavailable",
        )
        assert readyz(health)["ready"] is True, "the history never makes a replica unready"
        assert down
        before = len(stack.runs.of("ticker"))
        wait_for(
            lambda: stack.runs.of("ticker"),
            lambda runs: len(runs) >= before + 9,
            timeout=40,
            what="three more fires run while PostgreSQL is down",
        )
        dropped = wait_for(
            lambda: metric(replica, "cloudjob_history_records_dropped_total"),
            lambda n: n > 0,
            what="dropped records counted",
        )
        assert metric(replica, "cloudjob_history_database_up") == 0
    finally:
        postgres.start_server()
    wait_for(lambda: readyz(health).get("history"), lambda h: h == "ok", what="history back")
    assert metric(replica, "cloudjob_history_records_dropped_total") >= dropped
    assert metric(replica, "cloudjob_history_database_up") == 1
    told = caplog.text
    assert "run history database unavailable" in told
    assert "run history buffer full" in told
    assert "record(s) were dropped meanwhile" in told
    written = wait_for(
        lambda: (api(health, f"/api/v1/runs?namespace={NAMESPACE}&job=ticker") or {}).get(
            "items", []
        ),
        lambda items: len(items) >= 3,
        what="runs in the history after the outage",
    )
    assert all(item["hostname"] for item in written)


@contextmanager
def database_down(stack: Stack, request: pytest.FixtureRequest) -> Iterator[None]:
    """The stack's history database unavailable until the block ends: PostgreSQL
    stopped, or SQLite's file write-locked by this process."""
    if stack.history_url is not None:
        server: PostgresServer = request.getfixturevalue("postgres")
        server.stop_server()
        try:
            yield
        finally:
            server.start_server()
        return
    blocker = sqlite3.connect(stack.history_settings().data_dir / "history.db")
    blocker.isolation_level = None
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def metric_of(port: int, name: str) -> float:
    """A controller-wide sample, read over HTTP from a replica's metrics port."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


def test_records_piled_up_when_the_leader_is_killed_are_all_counted_by_the_next(
    stack: Stack, history_url: str | None, request: pytest.FixtureRequest
) -> None:
    stack.history_url = history_url
    ports = {name: (free_port(), free_port()) for name in ("replica-a", "replica-b")}
    first = stack.start_process(
        "replica-a", health_port=ports["replica-a"][0], metrics_port=ports["replica-a"][1]
    )
    wait_for(stack.leader, lambda leader: leader == "replica-a", what="replica-a to lead")
    a_health, a_metrics = ports["replica-a"]
    wait_for(lambda: readyz(a_health).get("history"), lambda h: h == "ok", what="history ok")
    stack.start_process(
        "replica-b", health_port=ports["replica-b"][0], metrics_port=ports["replica-b"][1]
    )
    wait_for(
        lambda: readyz(ports["replica-b"][0]).get("role"),
        lambda role: role == "standby",
        what="replica-b standing by",
    )
    stack.script_app_object()
    record_then_fail_shard_1 = (
        f'sh -c \'printf "%s\\n" "$0" >> {stack.runs.path}; '
        'test "$CLOUDJOB_SHARDING_ITEM" != 1 || exit 3\''
    )
    stack.script_job("report", LEAP_DAY, script={"commandLine": record_then_fail_shard_1})
    stack.wait_status("CloudJob", "report", lambda s: s.get("state") == "Scheduled")

    with database_down(stack, request):
        for run in (1, 2):
            stack.annotate("CloudJob", "report", **{"cloudjob.io/trigger": f"run-{run}"})
            wait_for(
                lambda run=run: (
                    len(stack.runs.of("report")) == 3 * run
                    and not stack.zk_children("state/running")
                ),
                bool,
                timeout=60,
                what=f"run {run}'s three shards ended and their tasks left the running queue",
            )
        wait_for(
            lambda: readyz(a_health).get("history", ""),
            lambda h: h.startswith("unavailable"),
            what="the leader seeing the database down",
        )
        assert metric_of(a_metrics, "cloudjob_history_records_buffered") > 0, "piled up"
        assert stack.zk_children("history/spool"), "and spooled"
        first.kill()  # SIGKILL: nothing is written on the way out
        first.wait()

    wait_for(stack.leader, lambda leader: leader == "replica-b", what="replica-b elected")
    b_health, b_metrics = ports["replica-b"]
    recorded = stack.runs.of("report")
    counted = {
        "succeeded": sum(1 for r in recorded if int(r["sharding_item"]) != 1),
        "failed": sum(1 for r in recorded if int(r["sharding_item"]) == 1),
    }
    assert counted == {"succeeded": 4, "failed": 2}

    # The history API, from the new leader: every run, each once.
    items = wait_for(
        lambda: (api(b_health, RUNS) or {}).get("items", []),
        lambda found: len(found) == 6 and all(item["outcome"] for item in found),
        timeout=60,
        what="the six shard runs in the new leader's history",
    )
    outcomes = [item["outcome"] for item in items]
    assert {o: outcomes.count(o) for o in ("succeeded", "failed")} == counted
    assert sorted(item["shard"] for item in items) == sorted(
        int(r["sharding_item"]) for r in recorded
    )
    assert len({item["taskId"] for item in items}) == 6
    moves = api(b_health, f"/api/v1/transitions?namespace={NAMESPACE}&limit=1000")["items"]
    assert len({(m["taskId"], m["state"]) for m in moves}) == len(moves), "a doubled transition"
    ended = {m["taskId"] for m in moves if m["state"] in ("TASK_FINISHED", "TASK_FAILED")}
    assert ended == {item["taskId"] for item in items}

    # The CloudJob's status and the metrics, from the new leader.
    stack.wait_status(
        "CloudJob",
        "report",
        lambda s: (s.get("succeeded"), s.get("failed")) == (4, 2),
        what="the status counting every run",
    )
    samples = wait_for(
        lambda: job_samples(b_metrics),
        lambda found: ("cloudjob_job_runs_total", "succeeded") in found,
        what="per-job metrics on the new leader",
    )
    assert samples[("cloudjob_job_runs_total", "succeeded")] == 4
    assert samples[("cloudjob_job_runs_total", "failed")] == 2
    wait_for(
        lambda: stack.zk_children("history/spool"), lambda left: left == [], what="spool drained"
    )
    assert metric_of(b_metrics, "cloudjob_history_records_dropped_total") == 0


def test_a_job_deleted_and_created_again_counts_from_zero_and_its_old_runs_stay(
    stack: Stack, history_url: str | None
) -> None:
    stack.history_url = history_url
    replica = stack.start_controller()
    wait_for(lambda: leading(replica), bool, what="leading")
    health = replica.controller.endpoints.health_port
    stack.script_app_object()

    def run_once(runs: int) -> list[dict[str, Any]]:
        """Create the job, trigger one run of its 3 shards; the history's runs once
        `runs` have ended there (newest first)."""
        stack.script_job("report", LEAP_DAY)
        stack.wait_status("CloudJob", "report", lambda s: s.get("state") == "Scheduled")
        stack.annotate("CloudJob", "report", **{"cloudjob.io/trigger": "run-1"})
        items: list[dict[str, Any]] = wait_for(
            lambda: (api(health, RUNS) or {}).get("items", []),
            lambda found: len(found) == runs and all(item["outcome"] for item in found),
            timeout=60,
            what=f"{runs} shard runs ended in the history",
        )
        return items

    run_once(3)
    stack.delete("CloudJob", "report")
    wait_for(lambda: stack.exists("CloudJob", "report"), lambda there: not there, what="deleted")
    items = run_once(6)
    assert [item["outcome"] for item in items] == ["succeeded"] * 6, "the old runs stay"
    assert len(stack.runs.of("report")) == 6
    new_tasks = {item["taskId"] for item in items[:3]}

    # The status shows what the summaries hold once they have followed the commit of
    # the new runs; from then on the counters are the new job's alone.
    status = stack.wait_status(
        "CloudJob",
        "report",
        lambda s: (
            [r["outcome"] for r in s.get("recentRuns", [])] == ["Succeeded"]
            and {sh["taskId"] for sh in s["recentRuns"][0]["shards"]} == new_tasks
        ),
        what="the status showing the new job's run alone, ended",
    )
    assert (status["succeeded"], status["failed"]) == (3, 0)
    samples = job_samples(replica.controller.endpoints.metrics_port)
    assert samples[("cloudjob_job_runs_total", "succeeded")] == 3
    assert samples[("cloudjob_job_runs_total", "failed")] == 0
