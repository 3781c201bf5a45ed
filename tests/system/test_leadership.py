"""End to end with two controller processes (`python -m controller run`): only the elected
one acts, the standby keeps its endpoints up, and when the leader is killed (SIGKILL)
the standby takes over the running work without losing or doubling a run."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any

import pytest

from controller.app import Role
from devcluster.zookeeper import free_port
from tests.conftest import expire_session
from tests.stack import Stack
from tests.waiting import wait_for

pytestmark = pytest.mark.system

EVERY_TWO_SECONDS = "*/2 * * * * ?"


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def readyz(port: int) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as reply:
            answer: dict[str, Any] = json.load(reply)
            return answer
    except urllib.error.HTTPError as error:
        answer = json.load(error)
        return answer
    except OSError:
        return {}


def leading_metric(port: int) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as reply:
            text = reply.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("cloudjob_scheduler_leading "):
            return float(line.split()[1])
    return None


def test_only_the_leader_acts_and_its_successor_neither_loses_nor_doubles_a_run(
    stack: Stack,
) -> None:
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
    assert readyz(ports["replica-a"][0])["role"] == "leader"

    # Each run records itself, then works for 3 s: a kill always finds runs in flight.
    working = f'sh -c \'printf "%s\\n" "$0" >> {stack.runs.path}; sleep 3\''
    stack.script_app_object()
    stack.script_job("report", EVERY_TWO_SECONDS, script={"commandLine": working})
    wait_for(
        lambda: [n for n in stack.runs.fires("report").values() if n == 3],
        lambda complete: len(complete) >= 2,
        what="two complete fires under replica-a",
    )
    assert leading_metric(ports["replica-a"][1]) == 1.0
    assert leading_metric(ports["replica-b"][1]) == 0.0
    assert len(stack.active_frameworks()) == 1

    first.kill()
    first.wait()
    killed_at = time.time()
    wait_for(stack.leader, lambda leader: leader == "replica-b", what="replica-b elected")
    wait_for(
        lambda: readyz(ports["replica-b"][0]).get("role"),
        lambda role: role == "leader",
        what="replica-b leading",
    )
    wait_for(
        lambda: [
            run
            for run in stack.runs.of("report")
            if run["fire_time"] and _epoch(run["fire_time"]) > killed_at + 1
        ],
        lambda later: len(later) >= 6,
        timeout=40,
        what="two fires run by replica-b",
    )

    shards_per_fire = wait_for(
        lambda: stack.runs.fires("report"),
        lambda fires: all(count == 3 for count in fires.values()),
        what="every fire with all its shards",
    )
    runs = stack.runs.of("report")
    assert len({(r["fire_time"], r["sharding_item"]) for r in runs}) == len(runs), "a doubled run"
    assert all(count == 3 for count in shards_per_fire.values())
    assert len(stack.active_frameworks()) == 1
    stack.wait_status(
        "CloudJob",
        "report",
        lambda s: s.get("state") in ("Scheduled", "Running", "Pending"),
        what="the successor reporting the job",
    )

    second = stack.processes[1]
    second.terminate()
    assert second.wait(30) == 0


def test_a_replica_that_loses_its_session_stands_by_and_leads_again_without_exiting(
    stack: Stack,
) -> None:
    replica = stack.start_controller()
    wait_for(lambda: replica.controller.role, lambda role: role is Role.LEADER, what="leading")
    stack.script_app_object()
    stack.script_job("report", EVERY_TWO_SECONDS)
    wait_for(lambda: stack.runs.of("report"), lambda runs: len(runs) >= 3, what="runs")

    client = replica.controller.zookeeper_client
    assert client is not None
    expire_session(client, stack.zk_hosts)
    wait_for(
        lambda: replica.controller.health().terms,
        lambda terms: terms == 2,
        what="a second term after the session expired",
    )
    assert replica.alive
    assert replica.controller.role is Role.LEADER
    before = len(stack.runs.of("report"))
    wait_for(lambda: stack.runs.of("report"), lambda r: len(r) >= before + 6, what="runs again")
    runs = stack.runs.of("report")
    assert len({(r["fire_time"], r["sharding_item"]) for r in runs}) == len(runs), "a doubled run"
