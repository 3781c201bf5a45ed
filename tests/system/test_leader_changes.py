"""Leader changes lose no fire and double none, counted by the job itself: a leader
killed with SIGKILL (its successor catches up the fires missed until it was elected),
a rolling restart (SIGTERM the leader, start a new replica, again and again), and a
replica that steps down logs no traceback."""

from __future__ import annotations

import re
import signal
import subprocess
from collections import Counter
from datetime import datetime, timedelta

import pytest

from controller.cron import parse_cron
from devcluster.zookeeper import free_port
from tests.stack import Stack
from tests.system.test_leadership import readyz, subscribed_metric
from tests.waiting import wait_for

pytestmark = pytest.mark.system

EVERY_TWO_SECONDS = "*/2 * * * * ?"
SHARDS = 2
SETTLED = timedelta(seconds=20)


class Replicas:
    """Replica processes of the stack by name, each with its health and metrics port."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.ports: dict[str, tuple[int, int]] = {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> subprocess.Popen[bytes]:
        self.ports[name] = (free_port(), free_port())
        health, metrics = self.ports[name]
        process = self.stack.start_process(name, health_port=health, metrics_port=metrics)
        self.processes[name] = process
        return process

    def role(self, name: str) -> str | None:
        role: str | None = readyz(self.ports[name][0]).get("role")
        return role

    def wait_role(self, name: str, role: str) -> None:
        wait_for(lambda: self.role(name), lambda now: now == role, what=f"{name} {role}")

    def wait_subscribed(self, name: str) -> None:
        wait_for(
            lambda: subscribed_metric(self.ports[name][1]),
            lambda value: value == 1.0,
            what=f"{name} subscribed to Mesos",
        )

    def log(self, name: str) -> str:
        return (self.stack.workdir / f"{name}.log").read_text()


def fires(stack: Stack, job: str) -> Counter[datetime]:
    """Fire time → shard runs the job recorded for it."""
    return Counter(
        datetime.fromisoformat(run["fire_time"]) for run in stack.runs.of(job) if run["fire_time"]
    )


def every_fire_once(stack: Stack, job: str, until: datetime) -> Counter[datetime]:
    """Wait until the job ran all its shards for every fire from its first recorded one
    up to `until`; fail naming the fires lost or doubled."""
    schedule = parse_cron(EVERY_TWO_SECONDS)

    def settled(seen: Counter[datetime]) -> bool:
        if not seen:
            return False
        expected = schedule.fires_between(min(seen) - timedelta(seconds=1), until)
        return (
            all(seen[f] >= SHARDS for f in expected)
            or any(n > SHARDS for n in seen.values())
            # runs of fires this much later: an earlier one missing now was lost
            or max(seen) > until + SETTLED
        )

    seen = wait_for(lambda: fires(stack, job), settled, timeout=90, what=f"{job}'s fires")
    first = min(seen)
    expected = schedule.fires_between(first - timedelta(seconds=1), until)
    lost = [f.isoformat() for f in expected if seen[f] < SHARDS]
    doubled = {f.isoformat(): n for f, n in seen.items() if n > SHARDS}
    assert not lost and not doubled, f"lost {lost}, doubled {doubled}"
    return seen


# The scheduling core's loggers, which a graceful handover leaves at INFO and below.
CORE = re.compile(r" WARNING \[[^]]*\] controller\.(mesos|state|producer)\.")


def assert_quiet(log: str, name: str, *, graceful: bool = False) -> None:
    """No traceback nor ERROR in what a replica logged from the moment it stepped down,
    and after a graceful handover no warning from the scheduling core either."""
    noisy = [
        line
        for line in log.splitlines()
        if "Traceback" in line or " ERROR " in line or (graceful and CORE.search(line))
    ]
    assert not noisy, f"{name} logged while stepping down:\n" + "\n".join(noisy[:20])


def test_a_leader_killed_with_sigkill_loses_no_fire_its_successor_could_still_run(
    stack: Stack,
) -> None:
    replicas = Replicas(stack)
    first = replicas.start("replica-a")
    wait_for(stack.leader, lambda leader: leader == "replica-a", what="replica-a to lead")
    replicas.start("replica-b")
    replicas.wait_role("replica-b", "standby")
    stack.script_app_object()
    stack.script_job(
        "counted",
        EVERY_TWO_SECONDS,
        shardingTotalCount=SHARDS,
        misfire=True,
        startingDeadlineSeconds=60,
    )
    wait_for(
        lambda: [f for f, n in fires(stack, "counted").items() if n == SHARDS],
        lambda complete: len(complete) >= 2,
        what="two complete fires under replica-a",
    )

    killed_at = datetime.now().astimezone()
    first.kill()
    first.wait()
    wait_for(stack.leader, lambda leader: leader == "replica-b", what="replica-b elected")
    replicas.wait_subscribed("replica-b")

    # Every fire while no one led was caught up by replica-b, and it went on from there.
    seen = every_fire_once(stack, "counted", until=killed_at + timedelta(seconds=8))
    assert len(stack.active_frameworks()) == 1
    log = replicas.log("replica-b")
    took_over = logged_at(log, "state loaded")
    if any(killed_at < fire <= took_over for fire in seen):
        assert "caught up" in log, log[-3000:]


def logged_at(log: str, text: str) -> datetime:
    """When the first line containing `text` was logged (the replicas log local time)."""
    line = next(line for line in log.splitlines() if text in line)
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").astimezone()


def test_a_rolling_restart_loses_no_fire_and_each_old_leader_steps_down_quietly(
    stack: Stack,
) -> None:
    """What `helm upgrade` does to a two-replica Deployment, three times over: the leader
    gets SIGTERM and hands over, a new replica starts and stands by."""
    replicas = Replicas(stack)
    replicas.start("replica-0")
    wait_for(stack.leader, lambda leader: leader == "replica-0", what="replica-0 to lead")
    replicas.start("replica-1")
    replicas.wait_role("replica-1", "standby")
    stack.script_app_object()
    stack.script_job("counted", EVERY_TWO_SECONDS, shardingTotalCount=SHARDS)
    wait_for(
        lambda: [f for f, n in fires(stack, "counted").items() if n == SHARDS],
        lambda complete: len(complete) >= 2,
        what="two complete fires under replica-0",
    )

    for round_ in range(3):
        leader = f"replica-{round_}"
        heir, newcomer = f"replica-{round_ + 1}", f"replica-{round_ + 2}"
        offset = len(replicas.log(leader))
        replicas.processes[leader].send_signal(signal.SIGTERM)
        wait_for(stack.leader, lambda now, h=heir: now == h, what=f"{heir} elected")
        assert replicas.processes[leader].wait(30) == 0
        assert_quiet(replicas.log(leader)[offset:], leader, graceful=True)
        replicas.wait_subscribed(heir)
        replicas.start(newcomer)
        replicas.wait_role(newcomer, "standby")

    every_fire_once(stack, "counted", until=datetime.now().astimezone() + timedelta(seconds=4))
    assert len(stack.active_frameworks()) == 1


def test_a_leader_that_loses_its_session_steps_down_quietly(stack: Stack) -> None:
    """Frozen past its ZooKeeper session and resumed, the old leader finds its session
    gone and stands by: a line or two saying so, no traceback."""
    replicas = Replicas(stack)
    frozen = replicas.start("replica-a")
    wait_for(stack.leader, lambda leader: leader == "replica-a", what="replica-a to lead")
    replicas.start("replica-b")
    replicas.wait_role("replica-b", "standby")
    stack.script_app_object()
    stack.script_job("counted", EVERY_TWO_SECONDS, shardingTotalCount=SHARDS)
    wait_for(lambda: fires(stack, "counted"), lambda seen: len(seen) >= 2, what="fires")
    replicas.wait_subscribed("replica-a")

    offset = len(replicas.log("replica-a"))
    frozen.send_signal(signal.SIGSTOP)
    try:
        wait_for(stack.leader, lambda leader: leader == "replica-b", what="replica-b elected")
        replicas.wait_subscribed("replica-b")
    finally:
        frozen.send_signal(signal.SIGCONT)
    replicas.wait_role("replica-a", "standby")
    before = datetime.now().astimezone()
    wait_for(
        lambda: fires(stack, "counted"),
        lambda seen: max(seen) > before + timedelta(seconds=2),
        what="replica-b running fires",
    )
    assert_quiet(replicas.log("replica-a")[offset:], "replica-a")
