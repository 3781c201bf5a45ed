"""Reconciliation alone, and its gate on the launch cycle, over the in-memory fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from controller.mesos.reconciler import ReconcileTrigger
from controller.mesos.states import TaskState
from controller.mesos.tasks import MetaInfo, TaskId
from controller.state import LaunchSource
from tests.framework.factories import make_job
from tests.framework.world import World, offer, update

pytestmark = pytest.mark.unit


@pytest.fixture
async def world() -> AsyncIterator[World]:
    built = World()
    yield built
    await built.close()


def launched_jobs(world: World) -> list[str]:
    return sorted(
        TaskId.parse(task["task_id"]["value"]).meta.value
        for _, tasks in world.mesos.accepted
        for task in tasks
    )


async def test_a_new_leader_launches_nothing_of_a_job_before_reconciliation_accounted_for_it(
    world: World,
) -> None:
    held = make_job("held", shards=2, failover=True)
    (running,) = world.seed(held, running=1)
    lost = TaskId.new(MetaInfo(held.key, 1), LaunchSource.READY, "a1").value
    world.store.add_failover(lost)
    world.store.put_job(make_job("free", shards=1))
    world.store.fire(["ns.free"], None)

    world.reconciler.start(ReconcileTrigger.SUBSCRIBED, gate=True)
    world.launch.offers_received([offer("o1", "a2")])
    await world.launch.cycle()
    assert launched_jobs(world) == ["ns.free@-@0"], "the held job waits for reconciliation"
    assert world.store.failover() != {}

    await world.handle([update(running, TaskState.RUNNING)])
    await world.settled.wait()
    assert world.mesos.reconciled[-1] == [], "the run ends with an implicit round"
    world.launch.offers_received([offer("o2", "a2")])
    await world.launch.cycle()
    assert launched_jobs(world) == ["ns.free@-@0", "ns.held@-@1"]


async def test_reconciliation_asks_again_about_what_is_not_answered_yet(world: World) -> None:
    first, second = world.seed(running=2)
    world.reconciler.start(ReconcileTrigger.SUBSCRIBED, gate=False)
    assert world.reconciler.reconciling
    assert world.reconciler.unsettled_jobs() == set(), "only a gating run holds launches"
    await world.handle([update(first, TaskState.RUNNING)])
    await world.mesos.until(lambda: [(second, "a1")] in world.mesos.reconciled)
    assert world.mesos.reconciled[0] == sorted([(first, "a1"), (second, "a1")])
    assert not world.settled.is_set()
    await world.handle([update(second, TaskState.RUNNING, uid=2)])
    await world.settled.wait()
    assert world.mesos.reconciled[-1] == []
    assert not world.reconciler.reconciling
    assert world.metric("cloudjob_reconciliation_rounds_total") >= 2


async def test_a_task_no_longer_recorded_settles_the_run(world: World) -> None:
    (task,) = world.seed(running=1)
    world.reconciler.start(ReconcileTrigger.SUBSCRIBED, gate=True)
    world.reconciler.forget(task)
    await world.settled.wait()
    assert world.reconciler.unsettled_jobs() == set()


async def test_a_periodic_run_never_replaces_one_in_flight_and_a_resubscription_keeps_its_gate(
    world: World,
) -> None:
    (task,) = world.seed(running=1)
    world.reconciler.start(ReconcileTrigger.SUBSCRIBED, gate=True)
    world.reconciler.start(ReconcileTrigger.PERIODIC, gate=False)
    assert world.metric("cloudjob_reconciliation_runs_total", trigger="periodic") == 0
    world.reconciler.start(ReconcileTrigger.SUBSCRIBED, gate=False)
    assert world.metric("cloudjob_reconciliation_runs_total", trigger="subscribed") == 2
    assert world.reconciler.unsettled_jobs() == {"ns.job"}, "the gate is kept"
    world.reconciler.observe(task)
    await world.settled.wait()
    assert not world.reconciler.reconciling


async def test_an_on_demand_ask_goes_out_at_once(world: World) -> None:
    world.reconciler.ask([("t1", "a1")])
    await world.mesos.until(lambda: world.mesos.reconciled == [[("t1", "a1")]])
    assert not world.reconciler.reconciling, "outside any run"
