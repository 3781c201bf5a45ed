"""The roll-out plan of a new app version: old idle executors retired, daemon shards moved a
few at a time (docs/framework.md#app-upgrades); and the kill book's replacements."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from controller.mesos.kills import KillBook
from controller.mesos.roller import Roller
from controller.mesos.rollout import RolloutPlan, plan_rollout
from controller.mesos.states import TaskState
from controller.mesos.tasks import AppVersion, ExecutorId
from controller.metrics import FrameworkMetrics
from controller.state import LaunchSource, RunningTask
from tests.framework.factories import make_app, make_job
from tests.framework.fakes import FakeMesos
from tests.framework.world import World

pytestmark = pytest.mark.unit

T0 = datetime(2024, 1, 1, tzinfo=UTC)
OLD = AppVersion("ns.app", "000000000001")
NEW = AppVersion("ns.app", "000000000002")
DAEMON = make_job("daemon", shards=3, executionType="DAEMON")
TRANSIENT = make_job("transient", shards=1, python={"callable": "jobs.a:run"}, script=None)
JOBS = {job.key: job for job in (DAEMON, TRANSIENT)}


def task(
    job_key: str,
    shard: int,
    version: AppVersion | None,
    agent: str = "a1",
    state: TaskState = TaskState.RUNNING,
) -> RunningTask:
    executor = ExecutorId.of(version, agent).value if version else None
    return RunningTask(
        task_id=f"{job_key}@-@{shard}@-@READY@-@{agent}@-@u{shard}",
        job_key=job_key,
        shard=shard,
        source=LaunchSource.READY,
        agent_id=agent,
        hostname=agent,
        launched_at=T0,
        executor_id=executor,
        state=state.value,
    )


def plan(
    running: Iterable[RunningTask],
    *,
    executors: Iterable[ExecutorId] = (),
    replacing: Iterable[str] = (),
    unsettled: Iterable[str] = (),
    batch: int = 1,
) -> RolloutPlan:
    return plan_rollout(
        executors=executors,
        running=running,
        jobs=JOBS,
        current={"ns.app": NEW},
        replacing=frozenset(replacing),
        unsettled_jobs=frozenset(unsettled),
        batch=batch,
    )


def test_an_outdated_executor_is_retired_only_once_no_recorded_task_uses_it() -> None:
    old_a1, old_a2 = ExecutorId.of(OLD, "a1"), ExecutorId.of(OLD, "a2")
    current = ExecutorId.of(NEW, "a1")
    from_before_versions = ExecutorId("ns.app", "a3", None)
    other_app = ExecutorId("ns.gone", "a1", "000000000009")
    result = plan(
        [task(TRANSIENT.key, 0, OLD, agent="a2")],
        executors=[old_a1, old_a2, current, from_before_versions, other_app],
    )
    # a2 still runs a transient task: it finishes there first. The current version's
    # executor stays (it exits by itself when idle); an app not defined is not ours to roll.
    assert result.retire == [old_a1, from_before_versions]
    assert result.replace == []


def test_daemon_shards_move_one_at_a_time() -> None:
    tasks = [task(DAEMON.key, shard, OLD) for shard in range(3)]
    first = plan(tasks)
    assert [t.shard for t in first.replace] == [0]

    # Shard 0 is being replaced: it counts as down, nothing else moves.
    assert plan(tasks, replacing=[tasks[0].task_id]).replace == []
    # Its replacement is launched on the new version but not running yet: still down.
    relaunched = task(DAEMON.key, 0, NEW, state=TaskState.STAGING)
    assert plan([relaunched, *tasks[1:]]).replace == []
    # Running on the new version: the next shard moves.
    running = task(DAEMON.key, 0, NEW)
    assert [t.shard for t in plan([running, *tasks[1:]]).replace] == [1]
    # All moved: nothing left to do.
    assert plan([task(DAEMON.key, s, NEW) for s in range(3)]) == RolloutPlan()


def test_a_bigger_batch_moves_more_shards_at_once_and_a_shard_down_counts_against_it() -> None:
    tasks = [task(DAEMON.key, shard, OLD) for shard in range(3)]
    assert [t.shard for t in plan(tasks, batch=2).replace] == [0, 1]
    # Shard 2 is not running at all (waiting for resources): only one more may go down.
    assert [t.shard for t in plan(tasks[:2], batch=2).replace] == [0]
    assert plan(tasks[:2], batch=1).replace == []


def test_unsettled_jobs_and_current_tasks_are_left_alone() -> None:
    tasks = [task(DAEMON.key, shard, OLD) for shard in range(3)]
    assert plan(tasks, unsettled=[DAEMON.key]).replace == []
    assert plan([task(TRANSIENT.key, 0, OLD)]).replace == [], "transient tasks end by themselves"


async def test_the_roller_shuts_an_old_executor_down_once_and_moves_one_daemon_shard() -> None:
    world = World()
    try:
        world.store.put_app(make_app("app"))
        world.store.put_job(DAEMON)
        old = ExecutorId("ns.app", "a1", None)
        world.store.add_ready(DAEMON.key, None)
        world.store.commit_launch([task(DAEMON.key, shard, OLD) for shard in range(3)])
        world.store.update_task_states({t: TaskState.RUNNING.value for t in world.store.running()})
        ended: list[ExecutorId] = []
        roller = Roller(
            store=world.store,
            mesos=world.mesos,
            lock=world.lock,
            settings=world.settings,
            executors=world.executors,
            kills=world.kills,
            reconciler=world.reconciler,
            executor_gone=ended.append,
            subscribed=lambda: True,
        )
        world.executors.listed(old.value)
        await roller.step()
        assert world.mesos.shutdowns == [("a1", old.value)]
        assert ended == [old] and old not in world.executors.known()
        assert world.mesos.killed == [task(DAEMON.key, 0, OLD).task_id]

        # An offer made before it ended names it again: no second SHUTDOWN, and the
        # shard being replaced holds the next one back.
        world.executors.listed(old.value)
        await roller.step()
        assert world.mesos.shutdowns == [("a1", old.value)]
        assert world.mesos.killed == [task(DAEMON.key, 0, OLD).task_id]
        roller.executor_ended(old.value)
        await roller.step()
        assert len(world.mesos.shutdowns) == 2, "a new executor under the same id is new"
    finally:
        await world.close()


async def test_a_replacement_kill_is_not_on_purpose_and_is_forgotten_when_it_fails() -> None:
    mesos = FakeMesos()
    registry = CollectorRegistry()
    book = KillBook(mesos, FrameworkMetrics(registry))
    await book.replace("t1", "a1")
    assert mesos.killed == ["t1"]
    assert book.replacing() == {"t1"} and not book.on_purpose("t1")
    book.forget("t1")
    assert book.replacing() == frozenset()
    mesos.refused.add("kill")
    await book.replace("t2", "a1")
    assert book.replacing() == frozenset(), "the next roll-out step tries again"
    assert registry.get_sample_value("cloudjob_task_kills_total", {"why": "rollout"}) == 2
