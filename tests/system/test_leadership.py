"""End to end with two controller processes (`python -m controller run`): only the elected
one acts, the standby keeps its endpoints up, and when the leader is killed (SIGKILL)
the standby takes over the running work without losing or doubling a run."""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any

import pytest

from controller.app import Role
from controller.loop_metrics import ASYNCIO_TASKS
from devcluster.zookeeper import free_port
from tests.conftest import expire_session
from tests.stack import Stack
from tests.waiting import holds, wait_for

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


def scraped(port: int, name: str) -> float | None:
    """The value of the unlabelled metric `name` on a replica's /metrics (None: no answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as reply:
            text = reply.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    return None


def leading_metric(port: int) -> float | None:
    return scraped(port, "cloudjob_scheduler_leading")


def subscribed_metric(port: int) -> float | None:
    return scraped(port, "cloudjob_mesos_subscribed")


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
    # Both replicas run an event loop; the leader's also runs the term's tasks.
    leader_tasks = scraped(ports["replica-a"][1], ASYNCIO_TASKS)
    standby_tasks = scraped(ports["replica-b"][1], ASYNCIO_TASKS)
    assert leader_tasks is not None and standby_tasks is not None
    assert leader_tasks > standby_tasks > 0
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


def test_a_leader_frozen_past_its_session_and_resumed_sends_nothing_to_mesos(
    stack: Stack,
) -> None:
    """SIGSTOP the leader past its ZooKeeper session, let the standby lead, SIGCONT it:
    when it resumes it still believes it leads until kazoo notices, and pymesos, whose
    connection broke, subscribes again at once. Its SUBSCRIBE would fail the real
    leader's framework over to it. Three rounds, each replica the zombie in turn."""
    names = ("replica-a", "replica-b")
    ports = {name: (free_port(), free_port()) for name in names}
    processes = {
        name: stack.start_process(name, health_port=ports[name][0], metrics_port=ports[name][1])
        for name in names
    }
    for round_ in range(3):
        zombie = wait_for(stack.leader, lambda leader: leader in names, what="a leader")
        heir = next(name for name in names if name != zombie)
        wait_for(
            lambda z=zombie: subscribed_metric(ports[z][1]),
            lambda value: value == 1.0,
            what=f"{zombie} subscribed to Mesos",
        )
        processes[zombie].send_signal(signal.SIGSTOP)
        try:
            wait_for(stack.leader, lambda leader, h=heir: leader == h, what=f"{heir} elected")
            wait_for(
                lambda h=heir: subscribed_metric(ports[h][1]),
                lambda value: value == 1.0,
                what=f"{heir} subscribed to Mesos",
            )
            heir_log = stack.workdir / f"{heir}.log"
            # (The heir may have been thrown off as the zombie of an earlier round.)
            seen_before = len(heir_log.read_text())
        finally:
            processes[zombie].send_signal(signal.SIGCONT)
        wait_for(
            lambda z=zombie: readyz(ports[z][0]).get("role"),
            lambda role: role == "standby",
            what=f"{zombie} standing by after it resumed",
        )
        holds(
            lambda log=heir_log, n=seen_before: "Framework failed over" in log.read_text()[n:],
            lambda failed_over: not failed_over,
            seconds=3,
            what=f"round {round_}: {heir} keeps its subscription",
        )
        assert subscribed_metric(ports[heir][1]) == 1.0
        assert len(stack.active_frameworks()) == 1


def test_a_leader_stopped_with_sigterm_hands_over_before_it_winds_down(stack: Stack) -> None:
    """What a rolling upgrade does (Helm replacing the Deployment's pods): the leader
    withdraws from the election first, so the standby leads while the old replica is
    still stopping its operator, and exits 0."""
    names = ("replica-a", "replica-b")
    ports = {name: (free_port(), free_port()) for name in names}
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
    stack.script_job("report", EVERY_TWO_SECONDS)
    wait_for(lambda: stack.runs.of("report"), lambda runs: len(runs) >= 3, what="runs")

    first.send_signal(signal.SIGTERM)
    wait_for(stack.leader, lambda leader: leader == "replica-b", what="replica-b elected")
    assert first.wait(30) == 0
    log = (stack.workdir / "replica-a.log").read_text()
    withdrawn = log.index("withdrawn from the leader election")
    assert withdrawn < log.index("Operator is stopping"), log[withdrawn - 2000 :]
    wait_for(
        lambda: subscribed_metric(ports["replica-b"][1]),
        lambda value: value == 1.0,
        what="replica-b subscribed to Mesos",
    )
    before = len(stack.runs.of("report"))
    wait_for(
        lambda: stack.runs.of("report"),
        lambda runs: len(runs) >= before + 3,
        what="runs launched by replica-b",
    )
