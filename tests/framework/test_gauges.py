"""The queue gauges, paced: set at once, then at most once per interval, and always
ending on the sizes of the moment they were last set."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from controller.mesos.gauges import QueueGauges
from tests.framework.factories import make_job
from tests.framework.world import World

pytestmark = pytest.mark.unit

FIRE = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


async def test_updates_within_the_interval_are_made_once_when_it_has_passed() -> None:
    world = World()
    try:
        world.seed(make_job("a"))
        world.seed(make_job("b"))
        clock = Clock()
        later: list[tuple[float, Callable[[], None]]] = []
        gauges = QueueGauges(
            world.store,
            world.stats,
            world.metrics,
            interval=0.5,
            later=lambda delay, call: later.append((delay, call)),
            clock=clock,
        )

        def ready_jobs() -> float:
            return world.metric("cloudjob_ready_jobs")

        world.store.fire(["ns.a"], FIRE)
        gauges.update()
        assert ready_jobs() == 1 and later == [], "the first update is made at once"

        clock.now += 0.2
        world.store.fire(["ns.b"], FIRE)
        gauges.update()
        gauges.update()
        assert ready_jobs() == 1, "within the interval: not yet"
        assert [delay for delay, _ in later] == [pytest.approx(0.3)], "one deferred update"

        world.store.remove_ready("ns.a")
        clock.now += 0.3
        later[0][1]()
        assert ready_jobs() == 1, "set with the sizes of when it ran (b only)"
        assert world.metric("cloudjob_ready_runs") == 1

        clock.now += 0.6
        world.store.remove_ready("ns.b")
        gauges.update()
        assert ready_jobs() == 0 and len(later) == 1, "past the interval: at once again"
    finally:
        await world.close()
