"""The launch cycle alone, over the in-memory fakes: commit before ACCEPT, what a
failed commit or ACCEPT leaves behind, the offer pool's calls, unplaceable work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from controller.mesos import launch_cycle
from controller.mesos.tasks import TaskId
from controller.operations import EventKind
from controller.state import StateUnavailable
from tests.framework.factories import make_job
from tests.framework.world import World, offer

pytestmark = pytest.mark.unit


@pytest.fixture
async def world() -> AsyncIterator[World]:
    built = World()
    yield built
    await built.close()


def ready(world: World, shards: int = 3) -> None:
    world.seed(make_job("job", shards=shards))
    world.store.fire(["ns.job"], None)
    world.journal.entries.clear()


async def test_the_launch_is_recorded_in_zookeeper_before_the_accept(world: World) -> None:
    ready(world)
    world.launch.offers_received([offer("o1", "a1")])
    await world.launch.cycle()
    assert world.journal.kinds()[:2] == ["commit", "accept"]
    (offers, tasks) = world.mesos.accepted[0]
    assert offers == ["o1"]
    ids = {t["task_id"]["value"] for t in tasks}
    assert set(world.store.running()) == ids
    assert all(world.tracked.get(i) is not None for i in ids)
    assert world.store.ready() == {}
    assert [e.kind for e in world.events] == [EventKind.LAUNCHED]


async def test_a_launch_that_cannot_be_recorded_sends_nothing_and_runs_on_later_offers(
    world: World,
) -> None:
    ready(world)
    world.launch.offers_received([offer("o1", "a1")])
    world.gateway.fail_next_commits(StateUnavailable("ZooKeeper did not answer"))
    await world.launch.cycle()
    assert world.mesos.accepted == []
    assert world.store.running() == {}
    assert world.metric("cloudjob_launch_errors_total", stage="record") == 1
    world.launch.offers_received([offer("o2", "a1")])
    await world.launch.cycle()
    assert [o for o, _ in world.mesos.accepted] == [["o2"]]
    assert len(world.store.running()) == 3


async def test_a_failed_accept_reconciles_its_tasks_at_once_and_declines_its_offers(
    world: World,
) -> None:
    ready(world, shards=2)
    world.launch.offers_received([offer("o1", "a1")])
    world.mesos.refused.add("accept")
    await world.launch.cycle()
    recorded = sorted((t, "a1") for t in world.store.running())
    assert len(recorded) == 2
    await world.mesos.until(lambda: recorded in world.mesos.reconciled)
    assert ["o1"] in world.mesos.declined
    assert world.metric("cloudjob_launch_errors_total", stage="accept") == 1
    assert world.metric("cloudjob_offers_declined_total", why="accept-failed") == 1


async def test_with_no_work_the_offers_are_declined_and_offers_suppressed(world: World) -> None:
    world.seed()
    world.launch.offers_received([offer("o1", "a1")])
    await world.launch.cycle()
    assert world.mesos.declined == [["o1"]]
    assert world.mesos.suppressions == 1
    assert world.metric("cloudjob_offers_declined_total", why="idle") == 1


async def test_nothing_happens_while_not_subscribed(world: World) -> None:
    ready(world)
    world.subscribed = False
    world.launch.offers_received([offer("o1", "a1")])
    await world.launch.cycle()
    assert world.journal.entries == []


async def test_work_that_does_not_fit_is_reported_unplaceable_once(world: World) -> None:
    ready(world)
    world.launch.offers_received([offer("o1", "a1", cpus=0.1, mem=16)])
    await world.launch.cycle()
    assert world.stats.of("ns.job").unplaceable_reason
    assert [e.kind for e in world.events] == [EventKind.UNPLACEABLE]
    assert world.metric("cloudjob_unplaceable_jobs") == 1
    await world.launch.cycle()
    assert len(world.events) == 1, "the same reason is reported once"

    world.launch.offers_received([offer("o3", "a2")])
    await world.launch.cycle()
    assert world.stats.of("ns.job").unplaceable_reason is None
    assert {TaskId.parse(t).agent_id for t in world.store.running()} == {"a2"}


async def test_a_rescinded_offer_is_not_used(world: World) -> None:
    ready(world)
    world.launch.offers_received([offer("o1", "a1")])
    world.launch.offer_rescinded("o1")
    await world.launch.cycle()
    assert world.mesos.accepted == []
    assert world.metric("cloudjob_offers_rescinded_total") == 1


async def test_an_agent_whose_offer_went_while_planning_is_left_to_the_next_cycle(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ready(world)  # 3 shards of 0.5 cpus: both of a1's offers
    world.launch.offers_received([offer("o1", "a1", cpus=1.0), offer("o2", "a1", cpus=1.0)])
    planning = world.while_planning(lambda: world.launch.offer_rescinded("o2"))
    monkeypatch.setattr(launch_cycle, "plan_launch", planning)
    await world.launch.cycle()
    assert world.mesos.accepted == [], "o1 alone cannot hold the tasks placed on o1 and o2"
    assert world.store.running() == {}
    assert world.store.ready()["ns.job"].count == 1
    assert world.launch.held_offers() == ["o1"]
    monkeypatch.undo()
    world.launch.offers_received([offer("o3", "a2")])
    await world.launch.cycle()
    assert sorted(o for o, _ in world.mesos.accepted) == [["o1"], ["o3"]]
    assert len(world.store.running()) == 3


async def test_with_a_fire_due_within_the_lead_an_idle_cycle_holds_its_offers(
    world: World,
) -> None:
    world.seed()
    world.next_fire = datetime.now(UTC) + timedelta(seconds=1)
    world.launch.offers_received([offer("o1", "a1")])
    await world.launch.cycle()
    assert world.mesos.declined == []
    assert world.mesos.suppressions == 0
    assert world.mesos.revives == 1  # the subscription's first word: offers wanted
    assert set(world.launch.held_offers()) == {"o1"}


async def test_an_idle_cycle_wakes_at_the_lead_of_the_next_fire_and_asks_for_offers(
    world: World,
) -> None:
    world.seed()
    lead = world.settings.fire_lead_seconds
    world.next_fire = datetime.now(UTC) + timedelta(seconds=lead + 0.3)
    world.background.spawn(world.launch.run(), "launch cycle")
    world.launch.changed()
    await world.mesos.until(lambda: world.mesos.suppressions == 1)
    assert world.mesos.revives == 0
    await world.mesos.until(lambda: world.mesos.revives == 1)
    assert datetime.now(UTC) >= world.next_fire - timedelta(seconds=lead)
