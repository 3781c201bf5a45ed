"""The framework's bookkeeping, each part alone: the unplaceable grace (pure), the kill
book, the executor registry, the job statistics, and unreachable-task expiry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from controller.mesos.background import Background
from controller.mesos.executors import ExecutorRegistry
from controller.mesos.kills import KillBook, KillReason
from controller.mesos.offers import HeldOffer
from controller.mesos.states import StatusUpdate, TaskState
from controller.mesos.statistics import JobStatistics
from controller.mesos.unplaceable import UnplaceableGrace
from controller.mesos.unreachable import UnreachableExpiry
from controller.metrics import FrameworkMetrics
from controller.operations import ExecutorRuntime
from controller.state import LaunchSource, RunningTask
from tests.framework.fakes import FakeMesos
from tests.framework.world import World, offer, settings, update

pytestmark = pytest.mark.unit

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def test_unplaceable_work_is_due_only_after_its_grace_and_invalid_work_at_once() -> None:
    grace = UnplaceableGrace(10.0)
    first = grace.update({"a": "too big"}, {"b": "bad spec"}, now=100.0)
    assert first.due == {"b": "bad spec"}
    assert first.recheck_in == 10.0
    later = grace.update({"a": "too big"}, {}, now=107.5)
    assert later.due == {} and later.recheck_in == 2.5 and later.cleared == ["b"]
    assert grace.update({"a": "too big"}, {}, now=110.0).due == {"a": "too big"}
    assert grace.update({}, {}, now=111.0).cleared == ["a"]
    assert grace.update({"a": "too big"}, {}, now=112.0).due == {}, "the grace starts again"


async def test_the_kill_book_remembers_kills_on_purpose_within_its_limit() -> None:
    mesos = FakeMesos()
    registry = CollectorRegistry()
    ticks = iter(range(100))
    book = KillBook(mesos, FrameworkMetrics(registry), limit=4, clock=lambda: float(next(ticks)))
    for n in range(5):
        await book.kill(f"t{n}", "a1", KillReason.UNSCHEDULED)
    assert mesos.killed == [f"t{n}" for n in range(5)]
    assert [book.on_purpose(f"t{n}") for n in range(5)] == [False, False, True, True, True]
    book.forget("t4")
    assert not book.on_purpose("t4")
    assert registry.get_sample_value("cloudjob_task_kills_total", {"why": "unscheduled"}) == 5


async def test_a_kill_that_fails_is_still_on_purpose() -> None:
    mesos = FakeMesos()
    mesos.refused.add("kill")
    book = KillBook(mesos, FrameworkMetrics(CollectorRegistry()))
    await book.kill("t1", None, KillReason.DISABLED)
    assert book.on_purpose("t1") and mesos.killed == []


def test_the_executor_registry_learns_from_tasks_offers_and_updates() -> None:
    registry = ExecutorRegistry()
    registry.task_recorded(
        RunningTask(
            task_id="ns.job@-@0@-@READY@-@a1@-@u",
            job_key="ns.job",
            shard=0,
            source=LaunchSource.READY,
            agent_id="a1",
            hostname="host-a1",
            launched_at=T0,
            executor_id="ns.app@-@a1",
        )
    )
    raw = offer("o1", "a2")
    raw["executor_ids"] = [{"value": "ns.app@-@a2"}, {"value": "foreign"}]
    registry.offered(HeldOffer.from_mesos(raw, 0.0))
    live = StatusUpdate("t", TaskState.RUNNING, agent_id="a3", executor_id="ns.app@-@a3")
    registry.status_received(live)
    dead = StatusUpdate("t", TaskState.FAILED, agent_id="a4", executor_id="ns.app@-@a4")
    registry.status_received(dead)
    assert registry.of_app("ns.app") == {
        "ns.app@-@a1": "a1",
        "ns.app@-@a2": "a2",
        "ns.app@-@a3": "a3",
    }
    registry.agent_lost("a2")
    registry.forget("ns.app@-@a3")
    assert registry.runtime("ns.app", []) == [
        ExecutorRuntime(agent_id="a1", hostname="host-a1", executor_id="ns.app@-@a1", tasks=0)
    ]


def test_job_statistics_count_and_forget() -> None:
    changed: list[str] = []
    stats = JobStatistics(changed.append)
    stats.fired("j", T0)
    stats.succeeded("j", T0)
    stats.failed("j")
    assert stats.unplaceable("j", "too big") and not stats.unplaceable("j", "too big")
    assert stats.unplaceable_jobs() == 1
    snapshot = stats.of("j")
    assert (snapshot.succeeded, snapshot.failed, snapshot.last_fire_time) == (1, 1, T0)
    stats.placeable("j")
    stats.placeable("j")
    stats.placeable("unknown")
    assert stats.of("j").unplaceable_reason is None and stats.unplaceable_jobs() == 0
    # Every change shows in the job's status, so each one marks it; repeats do not.
    assert changed == ["j"] * 5
    stats.forget("j")
    assert stats.of("j").succeeded == 0


async def test_expiry_sweeps_after_a_quarter_of_the_grace_while_tasks_are_adrift() -> None:
    background = Background(asyncio.get_running_loop())
    expiry = UnreachableExpiry(0.0, background)
    swept = asyncio.Event()

    async def sweep() -> bool:
        swept.set()
        return False

    expiry.schedule(sweep)
    await background.close()
    assert not swept.is_set(), "a grace of 0 keeps adrift tasks forever"


async def test_a_task_unreachable_past_the_grace_is_lost_and_killed() -> None:
    world = World(settings=settings(unreachable_grace_seconds=1.0))
    (task,) = world.seed(running=1)
    await world.handle([update(task, TaskState.UNREACHABLE)])  # since T0
    assert world.store.running_task(task) is not None, "kept as running for now"
    assert await world.statuses.expire_unreachable() is False, "none adrift any more"
    assert world.store.running() == {}
    assert world.mesos.killed == [task]
    await world.close()
