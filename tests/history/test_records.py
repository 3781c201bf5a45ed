"""What the status pipeline hands the run history, over the in-memory ZooKeeper and
Mesos: a transition per state change, one ended run per transient task with its host
and failure cause, nothing for an update that could not be persisted."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from controller.history.records import Outcome, RunEnded, Transition
from controller.mesos.states import StatusSource, TaskState
from controller.state import StateUnavailable
from tests.framework.world import World, update

pytestmark = pytest.mark.unit


@pytest.fixture
async def world() -> AsyncIterator[World]:
    built = World()
    yield built
    await built.close()


async def test_a_failed_shard_ends_its_run_with_host_exit_status_and_stderr(world: World) -> None:
    tasks = world.seed(running=3)
    await world.handle([update(t, TaskState.RUNNING, uid=n) for n, t in enumerate(tasks)])
    await world.handle([update(tasks[0], TaskState.FINISHED, uid=10)])
    await world.handle(
        [
            update(
                tasks[1],
                TaskState.FAILED,
                uid=11,
                message="exit status 3; stderr: Traceback ... ValueError: bad input",
                source=StatusSource.EXECUTOR,
                reason="REASON_COMMAND_EXECUTOR_FAILED",
            )
        ]
    )
    moves = [r for r in world.history if isinstance(r, Transition)]
    assert [(m.shard, m.state) for m in moves] == [
        (0, "TASK_RUNNING"),
        (1, "TASK_RUNNING"),
        (2, "TASK_RUNNING"),
        (0, "TASK_FINISHED"),
        (1, "TASK_FAILED"),
    ]
    assert moves[-1].source == "SOURCE_EXECUTOR"
    assert moves[-1].reason == "REASON_COMMAND_EXECUTOR_FAILED"
    ends = [r for r in world.history if isinstance(r, RunEnded)]
    assert [(e.place.shard, e.outcome, e.place.hostname) for e in ends] == [
        (0, Outcome.SUCCEEDED, "host-a1"),
        (1, Outcome.FAILED, "host-a1"),
    ]
    failed = ends[1]
    assert (failed.exit_status, failed.message) == (3, "exit status 3")
    assert failed.stderr_tail == "Traceback ... ValueError: bad input"
    assert failed.run_key == tasks[1]


async def test_a_repeated_update_records_nothing_more(world: World) -> None:
    (task,) = world.seed(running=1)
    await world.handle([update(task, TaskState.RUNNING, uid=1)])
    await world.handle([update(task, TaskState.RUNNING, uid=1)])
    await world.handle([update(task, TaskState.FINISHED, uid=2)])
    await world.handle([update(task, TaskState.FINISHED, uid=2)])
    assert [type(r).__name__ for r in world.history] == ["Transition", "Transition", "RunEnded"]


async def test_nothing_is_recorded_for_an_update_that_was_not_persisted(world: World) -> None:
    (task,) = world.seed(running=1)
    world.gateway.fail_next_commits(StateUnavailable("ZooKeeper did not answer"))
    await world.handle([update(task, TaskState.FINISHED)])
    assert world.history == []
    await world.handle([update(task, TaskState.FINISHED)])  # sent again
    assert [type(r).__name__ for r in world.history] == ["Transition", "RunEnded"]
