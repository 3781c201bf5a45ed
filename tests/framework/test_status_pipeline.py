"""The status-update pipeline alone, over the in-memory ZooKeeper and Mesos: batching,
persistence, rollback of a batch that could not be persisted, and acknowledgement
only after durability."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from controller.mesos.events import Heartbeat, StatusReceived
from controller.mesos.inbox import Inbox
from controller.mesos.reconciler import ReconcileTrigger
from controller.mesos.states import TaskState
from controller.mesos.status_updates import DECIDED_PER_HOLD, distinct_jobs
from controller.mesos.statuses import TaskKnowledge, TrackedTask
from controller.mesos.tasks import MetaInfo, TaskId
from controller.state import LaunchSource, StateUnavailable
from tests.framework.factories import make_job
from tests.framework.world import T0, World, update

pytestmark = pytest.mark.unit


@pytest.fixture
async def world() -> AsyncIterator[World]:
    built = World()
    yield built
    await built.close()


def states(world: World, tasks: list[str]) -> list[str]:
    return [task.state for t in tasks if (task := world.store.running_task(t)) is not None]


async def test_tracking_updates_of_a_batch_are_written_in_one_transaction_then_acknowledged(
    world: World,
) -> None:
    tasks = world.seed(running=3)
    await world.handle([update(t, TaskState.RUNNING, uid=n) for n, t in enumerate(tasks)])
    # the three states, and their run history unit
    assert world.journal.entries == [("commit", 3 + 1)] + [("ack", t) for t in tasks]
    assert states(world, tasks) == ["TASK_RUNNING"] * 3
    assert all(world.tracked.get(t).state is TaskState.RUNNING for t in tasks)  # type: ignore[union-attr]


async def test_a_batch_that_cannot_be_persisted_is_not_acknowledged_and_memory_is_restored(
    world: World,
) -> None:
    tasks = world.seed(running=2)
    world.gateway.fail_next_commits(StateUnavailable("ZooKeeper did not answer"))
    batch = [update(t, TaskState.RUNNING, uid=n) for n, t in enumerate(tasks)]
    await world.handle(batch)
    assert world.mesos.acknowledged == []
    assert states(world, tasks) == ["TASK_STAGING"] * 2
    assert all(world.tracked.get(t).state is TaskState.STAGING for t in tasks)  # type: ignore[union-attr]

    await world.handle(batch)  # Mesos sends them again
    assert [a.task_id for a in world.mesos.acknowledged] == tasks
    assert states(world, tasks) == ["TASK_RUNNING"] * 2


async def test_a_terminal_update_is_acknowledged_only_after_its_transaction(world: World) -> None:
    (task,) = world.seed(running=1)
    await world.handle([update(task, TaskState.FINISHED)])
    assert world.journal.kinds() == ["commit", "ack"]
    assert world.store.running() == {}
    assert world.stats.of("ns.job").succeeded == 1


async def test_a_failed_terminal_update_is_not_acknowledged_and_the_ones_after_it_go_on(
    world: World,
) -> None:
    first, second = world.seed(running=2)
    world.gateway.fail_next_commits(StateUnavailable("ZooKeeper did not answer"))
    await world.handle(
        [update(first, TaskState.FINISHED, uid=1), update(second, TaskState.RUNNING, uid=2)]
    )
    assert [a.task_id for a in world.mesos.acknowledged] == [second]
    assert world.store.running_task(first) is not None
    assert world.stats.of("ns.job").succeeded == 0


async def test_staged_updates_are_written_before_a_terminal_one_and_all_acknowledged_after(
    world: World,
) -> None:
    first, second = world.seed(running=2)
    await world.handle(
        [update(first, TaskState.RUNNING, uid=1), update(second, TaskState.FAILED, uid=2)]
    )
    assert world.journal.kinds() == ["commit", "commit", "ack", "ack"]
    assert world.journal.entries[0] == ("commit", 1 + 1)  # a state and its history unit
    assert list(world.store.running()) == [first]


async def test_updates_without_a_uuid_are_applied_but_never_acknowledged(world: World) -> None:
    (task,) = world.seed(running=1)
    await world.handle([update(task, TaskState.RUNNING, uid=None)])
    assert states(world, [task]) == ["TASK_RUNNING"]
    assert world.mesos.acknowledged == []


async def test_a_live_task_nobody_records_is_killed_on_purpose(world: World) -> None:
    world.seed()
    stray = TaskId.new(MetaInfo("ns.job", 0), LaunchSource.READY, "a9").value
    await world.handle([update(stray, TaskState.RUNNING)])
    assert world.mesos.killed == [stray]
    assert world.kills.on_purpose(stray)
    assert world.metric("cloudjob_task_kills_total", why="status") == 1


async def test_an_applied_update_answers_the_open_reconciliation(world: World) -> None:
    first, second = world.seed(running=2)
    world.reconciler.start(ReconcileTrigger.SUBSCRIBED, gate=True)
    assert world.reconciler.unsettled_jobs() == {"ns.job"}
    await world.handle([update(first, TaskState.RUNNING, uid=1)])
    assert world.reconciler.unsettled_jobs() == {"ns.job"}
    await world.handle([update(second, TaskState.FINISHED, uid=2)])
    assert world.reconciler.unsettled_jobs() == set()


async def test_the_inbox_hands_out_the_status_updates_behind_the_first_in_one_batch() -> None:
    inbox = Inbox(batch_seconds=0, limit=3)
    task = TaskId.new(MetaInfo("ns.job", 0), LaunchSource.READY, "a1").value
    updates = [update(task, TaskState.RUNNING, uid=n) for n in range(6)]
    for item in updates[:2]:
        inbox.put(StatusReceived(item))
    inbox.put(Heartbeat())
    for item in updates[2:]:
        inbox.put(StatusReceived(item))

    first = await inbox.get()
    assert isinstance(first, StatusReceived)
    assert await inbox.statuses_behind(first) == (updates[:2], Heartbeat())
    third = await inbox.get()
    assert isinstance(third, StatusReceived)
    assert await inbox.statuses_behind(third) == (updates[2:5], None)  # at most `limit`
    assert await inbox.get() == StatusReceived(updates[5])


async def test_a_copy_of_an_update_still_waiting_in_the_inbox_is_dropped_and_counted() -> None:
    resent: list[None] = []
    inbox = Inbox(batch_seconds=0, on_resent=lambda: resent.append(None))
    task = TaskId.new(MetaInfo("ns.job", 0), LaunchSource.READY, "a1").value
    running, finished = (
        update(task, TaskState.RUNNING, uid=1),
        update(task, TaskState.FINISHED, uid=2),
    )
    answer = update(task, TaskState.RUNNING, uid=None)  # the master's: no uuid
    for item in (running, running, answer, answer, finished, running):
        inbox.put(StatusReceived(item))

    first = await inbox.get()
    assert isinstance(first, StatusReceived)
    assert await inbox.statuses_behind(first) == ([running, answer, answer, finished], None)
    assert len(resent) == 2
    # Once the first is out, a copy is an update like any other: handled again.
    inbox.put(StatusReceived(running))
    assert await inbox.get() == StatusReceived(running)
    assert len(resent) == 2


async def test_a_timed_out_launch_is_ended_durably_then_killed(world: World) -> None:
    tasks = world.seed(running=2)
    stuck = world.tracked.get(tasks[1])
    assert stuck is not None
    await world.statuses.expire_launches([stuck], T0 + timedelta(seconds=301), 300)
    assert [name for name, _ in world.journal.entries] == ["commit", "kill"]
    assert world.mesos.killed == [tasks[1]]
    assert world.metric("cloudjob_task_kills_total", why="launch_timeout") == 1
    assert world.store.running_task(tasks[1]) is None and world.tracked.get(tasks[1]) is None
    assert world.store.failover_of("ns.job") == (1,)
    assert not world.kills.on_purpose(tasks[0])
    # Mesos's answer to the kill is about a task no longer recorded: nothing more.
    await world.handle([update(tasks[1], TaskState.LOST)])
    assert world.store.failover_of("ns.job") == (1,)


async def test_a_timed_out_launch_not_made_durable_is_not_killed(world: World) -> None:
    tasks = world.seed(running=1)
    stuck = world.tracked.get(tasks[0])
    assert stuck is not None
    world.gateway.fail_next_commits(StateUnavailable("ZooKeeper did not answer"))
    await world.statuses.expire_launches([stuck], T0 + timedelta(seconds=301), 300)
    assert world.mesos.killed == []
    assert world.store.running_task(tasks[0]) is not None


async def test_no_launch_times_out_while_a_reconciliation_is_open(world: World) -> None:
    tasks = world.seed(running=1)
    stuck = world.tracked.get(tasks[0])
    assert stuck is not None
    world.reconciler.start(ReconcileTrigger.SUBSCRIBED, gate=True)
    await world.statuses.expire_launches([stuck], T0 + timedelta(seconds=301), 300)
    assert world.mesos.killed == []
    assert world.store.running_task(tasks[0]) is not None


async def test_terminal_updates_of_distinct_jobs_are_written_in_one_transaction(
    world: World,
) -> None:
    first = world.seed(make_job("one", shards=2), running=2)
    second = world.seed(make_job("two", shards=1), running=1)
    await world.handle(
        [
            update(first[0], TaskState.FINISHED, uid=1),
            update(second[0], TaskState.FAILED, uid=2),
        ]
    )
    assert world.journal.kinds() == ["commit", "ack", "ack"]
    assert list(world.store.running()) == [first[1]]
    assert world.stats.of("ns.one").succeeded == 1
    assert world.stats.of("ns.two").failed == 1


async def test_a_large_batch_lets_the_loop_run_while_it_is_decided(world: World) -> None:
    """A cron fire's timer must not wait for hundreds of updates to be decided."""
    tasks = world.seed(make_job("wide", shards=200), running=200)
    decided: list[str] = []
    knowledge = world.statuses.knowledge

    def counted(task_id: str) -> TaskKnowledge:
        decided.append(task_id)
        return knowledge(task_id)

    world.statuses.knowledge = counted  # type: ignore[method-assign]
    handling = asyncio.create_task(
        world.handle([update(t, TaskState.RUNNING, uid=n) for n, t in enumerate(tasks)])
    )
    seen: list[int] = []
    while not handling.done():
        seen.append(len(decided))
        await asyncio.sleep(0)
    await handling
    assert any(0 < n < len(tasks) for n in seen), seen
    assert states(world, tasks) == ["TASK_RUNNING"] * len(tasks)


async def test_a_fire_waiting_for_the_lock_takes_it_between_parts_of_a_large_batch(
    world: World,
) -> None:
    """A batch holds the state lock for `DECIDED_PER_HOLD` updates at a time, all of them
    persisted and handed over for acknowledgement before it lets go, and a cron fire
    goes next."""
    tasks = world.seed(make_job("wide", shards=250), running=250)
    handling = asyncio.create_task(
        world.handle([update(t, TaskState.RUNNING, uid=n) for n, t in enumerate(tasks)])
    )
    await asyncio.sleep(0)
    assert world.lock.locked(), "the batch's first part is being decided"
    async with world.lock.first():
        running = states(world, tasks).count("TASK_RUNNING")
        handed_to_acknowledge = world.metric("cloudjob_acknowledgements_waiting")
    await handling
    assert running == handed_to_acknowledge == DECIDED_PER_HOLD
    assert states(world, tasks) == ["TASK_RUNNING"] * len(tasks)
    assert world.journal.kinds().count("commit") == 3, "one transaction per part"


async def test_a_second_update_of_a_job_is_written_after_the_first(world: World) -> None:
    tasks = world.seed(make_job("one", shards=2), running=2)
    await world.handle(
        [update(tasks[0], TaskState.FINISHED, uid=1), update(tasks[1], TaskState.FINISHED, uid=2)]
    )
    assert world.journal.kinds() == ["commit", "commit", "ack", "ack"]
    assert world.store.running() == {}
    assert world.stats.of("ns.one").succeeded == 2


async def test_terminal_updates_written_together_fail_together(world: World) -> None:
    first = world.seed(make_job("one", shards=1), running=1)
    second = world.seed(make_job("two", shards=1), running=1)
    world.gateway.fail_next_commits(StateUnavailable("ZooKeeper did not answer"))
    batch = [update(first[0], TaskState.FINISHED, uid=1), update(second[0], TaskState.FINISHED)]
    await world.handle(batch)
    assert world.mesos.acknowledged == []
    assert set(world.store.running()) == {first[0], second[0]}

    await world.handle(batch)  # Mesos sends them again
    assert {a.task_id for a in world.mesos.acknowledged} == {first[0], second[0]}
    assert world.store.running() == {}


async def test_a_terminal_update_duplicated_in_one_batch_counts_once(world: World) -> None:
    (task,) = world.seed(make_job("one", shards=1), running=1)
    await world.handle(
        [update(task, TaskState.FINISHED, uid=1), update(task, TaskState.FINISHED, uid=1)]
    )
    assert world.store.running() == {}
    assert world.stats.of("ns.one").succeeded == 1
    assert [a.task_id for a in world.mesos.acknowledged] == [task]  # the same update


def test_tasks_are_grouped_with_no_job_twice_in_a_group() -> None:
    def tracked(job: str, shard: int) -> TrackedTask:
        task = TaskId.new(MetaInfo(job, shard), LaunchSource.READY, "a1")
        return TrackedTask(task_id=task, hostname="h", state=TaskState.STAGING, since=T0)

    tasks = [tracked("ns.a", 0), tracked("ns.a", 1), tracked("ns.b", 0), tracked("ns.c", 0)]
    groups = distinct_jobs(tasks, 2)
    assert [[t.task_id.meta.value for t in g] for g in groups] == [
        ["ns.a@-@0", "ns.b@-@0"],
        ["ns.a@-@1", "ns.c@-@0"],
    ]
