"""Launches planned ahead of a cron fire, over the in-memory fakes: the fire and its
tasks recorded in one transaction and accepted on offers held back for it, and every
way a plan made ahead falls back to the ready queue when something changed."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from controller.history.records import RunLaunched
from controller.mesos import launch_cycle
from controller.mesos.calls import AgentAccept
from controller.mesos.tasks import TaskId
from controller.operations import EventKind
from controller.state import LaunchSource
from controller.state.transactions import Op
from tests.framework.factories import make_job
from tests.framework.world import World, offer

pytestmark = pytest.mark.unit

FIRE = datetime(2030, 1, 1, 12, 0, 5, tzinfo=UTC)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    built = World()
    yield built
    await built.close()


async def prepared(world: World, *, jobs: tuple[str, ...] = ("ns.job",)) -> None:
    world.seed(make_job("job", shards=2))
    world.launch.offers_received([offer("o1", "a1"), offer("o2", "a2")])
    await world.launch.prepare(jobs, FIRE)
    world.journal.entries.clear()


async def fire(world: World) -> None:
    async with world.lock:
        changes, launch = await world.launch.record_fire(("ns.job",), FIRE)
    assert changes is not None
    await world.launch.launch_fired(launch)


async def test_a_fire_planned_ahead_is_recorded_with_its_tasks_and_accepted_on_held_offers(
    world: World,
) -> None:
    await prepared(world)
    assert world.launch.held_offers() == ["o2"], "a1's offer is held back for the fire"
    await fire(world)
    assert world.journal.kinds() == ["commit", "accept"], "one transaction, then the ACCEPT"
    (offers, tasks) = world.mesos.accepted[0]
    assert offers == ["o1"]
    running = world.store.running_of("ns.job")
    assert sorted(t.shard for t in running) == [0, 1]
    assert {t["task_id"]["value"] for t in tasks} == {t.task_id for t in running}
    assert all(t.source is LaunchSource.READY and t.fire_time == FIRE for t in running)
    assert world.store.ready() == {}, "the run never waited in the ready queue"
    assert world.store.last_fired("ns.job") == FIRE
    assert all(world.tracked.get(t.task_id) is not None for t in running)
    launched = [r for r in world.history if isinstance(r, RunLaunched)]
    assert len(launched) == 2, "each task's run handed to the history with the launch"
    assert [e.kind for e in world.events] == [EventKind.LAUNCHED]
    assert world.metric("cloudjob_tasks_launched_total", source="READY") == 2


async def test_a_refused_accept_of_a_fire_reconciles_its_tasks_and_declines_its_offers(
    world: World,
) -> None:
    await prepared(world)
    world.mesos.refused.add("accept")
    await fire(world)
    recorded = sorted((t.task_id, "a1") for t in world.store.running_of("ns.job"))
    assert len(recorded) == 2, "recorded before the ACCEPT, as running"
    assert all(world.tracked.get(t) is not None for t, _ in recorded)
    await world.mesos.until(lambda: recorded in world.mesos.reconciled)
    assert ["o1"] in world.mesos.declined
    assert world.metric("cloudjob_launch_errors_total", stage="accept") == 1
    assert [e.kind for e in world.events] == [], "nothing reported launched"


async def test_the_launch_history_is_packed_ahead_and_the_runs_launch_at_the_fire_time(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await prepared(world)
    packs: list[int] = []
    pack = world.handoff.pack
    monkeypatch.setattr(world.handoff, "pack", lambda records: packs.append(1) or pack(records))
    await fire(world)
    assert packs == [], "nothing left to pack at the fire"
    assert {t.launched_at for t in world.store.running_of("ns.job")} == {FIRE}
    launched = [r for r in world.history if isinstance(r, RunLaunched)]
    assert len(launched) == 2 and {r.place.launched_at for r in launched} == {FIRE}


class Stamped:
    """The world's commits and ACCEPTs, stamped on the wall clock as they happen on the
    fire's thread (events, since the test blocks the event loop)."""

    def __init__(self, world: World) -> None:
        self.committed, self.accepted = threading.Event(), threading.Event()
        self.committed_at: list[datetime] = []
        self.accepted_at: list[datetime] = []
        commit, accept_now = world.gateway.commit, world.mesos.accept_now

        def stamped(fence: str, ops: Sequence[Op]) -> None:
            commit(fence, ops)
            self.committed_at.append(datetime.now(UTC))
            self.committed.set()

        def sent(launches: Sequence[AgentAccept], refuse: float) -> list[Future[None]]:
            self.accepted_at.append(datetime.now(UTC))
            answers = accept_now(launches, refuse)
            self.accepted.set()
            return answers

        world.gateway.commit = stamped  # type: ignore[method-assign]
        world.mesos.accept_now = sent  # type: ignore[method-assign,assignment]


async def hand_over(world: World, fire_time: datetime) -> tuple[Stamped, asyncio.Task[None]]:
    """A fire planned ahead on one offer, handed over to its thread now."""
    world.seed(make_job("job", shards=2))
    world.launch.offers_received([offer("o1", "a1")])
    await world.launch.prepare(("ns.job",), fire_time)
    stamps = Stamped(world)

    async def fire_at() -> None:
        async with world.lock:
            changes, launch = await world.launch.record_fire(("ns.job",), fire_time)
        assert changes is not None
        await world.launch.launch_fired(launch)

    firing = asyncio.create_task(fire_at())
    await asyncio.sleep(0)
    return stamps, firing


async def test_a_fire_handed_early_is_recorded_and_accepted_at_its_time_with_a_blocked_loop() -> (
    None
):
    world = World(fire_early=30.0)
    try:
        fire_time = datetime.now(UTC) + timedelta(seconds=1)
        stamps, firing = await hand_over(world, fire_time)
        # Block the event loop: the fire's thread records it all the same and sends its
        # ACCEPT at its time.
        assert stamps.committed.wait(timeout=30), "the fire waited for the event loop"
        assert stamps.accepted.wait(timeout=30), "the ACCEPT waited for the event loop"
        assert stamps.committed_at[0] <= stamps.accepted_at[0], "recorded before launched"
        assert stamps.accepted_at[0] >= fire_time, "never launched before its time"
        await firing
        assert [o for o, _ in world.mesos.accepted] == [["o1"]]
        assert world.store.last_fired("ns.job") == fire_time
    finally:
        await world.close()


async def test_a_fire_handed_early_commits_at_once_and_accepts_once_it_is_due(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The transaction is out of the fire's way: what the fire time finds is the ACCEPT.
    # The fire thread's wait is held open until the test has looked.
    waiting, go = threading.Event(), threading.Event()
    waits: list[float] = []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        waiting.set()
        assert go.wait(timeout=30)

    monkeypatch.setattr(launch_cycle, "time", SimpleNamespace(monotonic=time.monotonic, sleep=wait))
    world = World(fire_early=30.0)
    try:
        fire_time = datetime.now(UTC) + timedelta(seconds=60)
        stamps, firing = await hand_over(world, fire_time)
        assert waiting.wait(timeout=30), "the fire's thread waits for the fire time"
        assert stamps.committed.is_set(), "committed before the wait"
        assert not stamps.accepted.is_set(), "the ACCEPT waits for the fire time"
        assert 0 < waits[0] <= 30, "no longer than the early bound"
        go.set()
        await firing
        assert [o for o, _ in world.mesos.accepted] == [["o1"]]
        assert world.store.last_fired("ns.job") == fire_time
    finally:
        go.set()
        await world.close()


async def test_a_fire_time_far_ahead_holds_the_fire_no_longer_than_the_early_bound() -> None:
    # A wall clock stepped back after the fire was handed: the fire goes ahead.
    world = World(fire_early=0.05)
    try:
        world.seed(make_job("job", shards=1))
        async with world.lock:
            changes, _ = await asyncio.wait_for(world.launch.record_fire(("ns.job",), FIRE), 30)
        assert changes is not None and world.store.last_fired("ns.job") == FIRE
    finally:
        await world.close()


async def test_a_job_changed_after_the_plan_waits_in_the_ready_queue(world: World) -> None:
    await prepared(world)
    world.store.put_job(make_job("job", shards=2, cpus=0.25))
    await fire(world)
    assert world.mesos.accepted == []
    assert world.store.running_of("ns.job") == ()
    assert world.store.ready()["ns.job"].next_fire == FIRE
    assert sorted(world.launch.held_offers()) == ["o1", "o2"], "the held-back offer is back"
    await world.launch.cycle()
    assert len(world.store.running_of("ns.job")) == 2, "the ordinary cycle launches it"


async def test_a_job_that_got_a_run_meanwhile_is_not_launched_twice(world: World) -> None:
    await prepared(world)
    world.store.fire(["ns.job"], FIRE - timedelta(seconds=1))
    await fire(world)
    assert world.mesos.accepted == []
    assert world.store.running_of("ns.job") == ()
    assert world.store.ready()["ns.job"].count == 1, "misfire off: the fire merges"


async def test_a_rescinded_held_back_offer_sends_the_fire_to_the_ready_queue(world: World) -> None:
    await prepared(world)
    world.launch.offer_rescinded("o1")
    assert world.metric("cloudjob_offers_rescinded_total") == 1
    await fire(world)
    assert world.mesos.accepted == []
    assert world.store.ready()["ns.job"].count == 1
    await world.launch.cycle()
    assert {TaskId.parse(t).agent_id for t in world.store.running()} == {"a2"}


async def test_an_offer_gone_while_planning_ahead_leaves_its_agent_out_of_the_plan(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.seed(make_job("job", shards=1, cpus=0.5))
    world.launch.offers_received([offer("o1", "a1", cpus=0.3), offer("o2", "a1", cpus=0.3)])
    planning = world.while_planning(lambda: world.launch.offer_rescinded("o2"))
    monkeypatch.setattr(launch_cycle, "plan_launch", planning)
    assert not await world.launch.prepare(("ns.job",), FIRE), "o1 alone cannot hold it"
    assert world.launch.held_offers() == ["o1"], "not held back for the fire"
    await fire(world)
    assert world.mesos.accepted == []
    assert world.store.ready()["ns.job"].count == 1, "the fire waits in the ready queue"


async def test_a_lost_agent_drops_its_part_of_the_plan(world: World) -> None:
    await prepared(world)
    world.launch.agent_lost("a1")
    await fire(world)
    assert world.mesos.accepted == []
    assert world.store.ready()["ns.job"].count == 1


async def test_offers_held_for_a_fire_that_never_came_are_given_back(world: World) -> None:
    world.seed(make_job("job", shards=2))
    world.launch.offers_received([offer("o1", "a1")])
    past = datetime.now(UTC) - timedelta(seconds=world.settings.misfire_threshold_seconds + 1)
    await world.launch.prepare(("ns.job",), past)
    assert world.launch.held_offers() == []
    world.store.fire(["ns.job"], past)
    await world.launch.cycle()
    assert [o for o, _ in world.mesos.accepted] == [["o1"]], "the offer served the queue"


async def test_nothing_is_planned_ahead_for_a_job_that_is_not_idle(world: World) -> None:
    world.seed(make_job("job", shards=2), running=1)
    world.launch.offers_received([offer("o1", "a1")])
    await world.launch.prepare(("ns.job",), FIRE)
    assert world.launch.held_offers() == ["o1"]
    world.store.disable_job("ns.job")
    world.store.enable_job("ns.job")
    world.seed(make_job("other", shards=1))
    world.store.disable_job("ns.other")
    await world.launch.prepare(("ns.other",), FIRE)
    assert world.launch.held_offers() == ["o1"]


async def test_a_plan_ahead_writes_nothing_and_so_takes_no_state_lock(world: World) -> None:
    world.seed(make_job("job", shards=2))
    world.launch.offers_received([offer("o1", "a1")])
    world.journal.entries.clear()
    async with world.lock:  # a status batch or a change holds it
        assert await asyncio.wait_for(world.launch.prepare(("ns.job",), FIRE), timeout=30)
        assert world.launch.held_offers() == [], "held back for the fire meanwhile"
    assert world.journal.kinds() == []
    await fire(world)
    assert world.journal.kinds() == ["commit", "accept"]


async def test_a_plan_ahead_and_a_launch_cycle_take_turns_on_the_held_offers(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.seed(make_job("busy", shards=1, cpus=0.6))
    world.seed(make_job("job", shards=1, cpus=0.6))
    world.store.fire(["ns.busy"], datetime.now(UTC))
    world.launch.offers_received([offer("o1", "a1", cpus=1.0), offer("o2", "a2", cpus=1.0)])
    loop = asyncio.get_running_loop()
    real = launch_cycle.plan_launch
    planned: list[tuple[list[str], list[str]]] = []
    cycle_planning, cycle_may_go_on = asyncio.Event(), threading.Event()

    def planning(inputs: Any, offers: Sequence[Any], *args: Any, **kwargs: Any) -> Any:
        planned.append((sorted(inputs.ready), sorted(o.offer_id for o in offers)))
        if len(planned) == 1:
            loop.call_soon_threadsafe(cycle_planning.set)
            assert cycle_may_go_on.wait(timeout=30)
        return real(inputs, offers, *args, **kwargs)

    monkeypatch.setattr(launch_cycle, "plan_launch", planning)
    cycle = asyncio.create_task(world.launch.cycle())
    await cycle_planning.wait()
    ahead = asyncio.create_task(world.launch.prepare(("ns.job",), FIRE))
    for _ in range(10):
        await asyncio.sleep(0)
    cycle_may_go_on.set()
    await cycle
    assert await ahead
    (cycle_ready, cycle_offers), (ahead_ready, ahead_offers) = planned
    assert (cycle_ready, cycle_offers) == (["ns.busy"], ["o1", "o2"])
    (cycle_took,) = world.mesos.accepted[0][0]
    assert ahead_ready == ["ns.job"]
    assert ahead_offers == sorted({"o1", "o2"} - {cycle_took}), "planned on what was left"
    await fire(world)
    assert sorted(o for offers, _ in world.mesos.accepted for o in offers) == ["o1", "o2"]
