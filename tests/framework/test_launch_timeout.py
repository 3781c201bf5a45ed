"""The launch timeout's pure decisions: which tasks are overdue (`launch_timeout.overdue`)
and how an overdue launch ends (`statuses.expire_launch`); docs/semantics.md
#launches-that-never-get-going."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.definitions import JobDefinition
from controller.mesos.launch_timeout import overdue
from controller.mesos.states import StatusSource, TaskState
from controller.mesos.statuses import (
    Count,
    Emit,
    Kill,
    RecordFailover,
    RemoveRunning,
    TaskKnowledge,
    TrackedTask,
    expire_launch,
    launch_timeout_update,
)
from controller.mesos.tasks import MetaInfo, TaskId
from controller.operations import EventKind
from controller.state.records import LaunchSource
from tests.framework.factories import make_job

pytestmark = pytest.mark.unit

T0 = datetime(2024, 1, 1, tzinfo=UTC)
TRANSIENT = make_job("job", shards=2)
DAEMON = make_job("job", shards=2, executionType="DAEMON")


def task(
    state: TaskState, *, since: float = 0, shard: int = 0, started: bool = False
) -> TrackedTask:
    task_id = TaskId.new(MetaInfo("ns.job", shard), LaunchSource.READY, "agent-1", f"u{shard}")
    return TrackedTask(task_id, "host-1", state, T0 + timedelta(seconds=since), started=started)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_only_launching_tasks_past_the_timeout_are_overdue() -> None:
    staging = task(TaskState.STAGING)
    starting = task(TaskState.STARTING, since=100, shard=1, started=True)
    running = task(TaskState.RUNNING, shard=2, started=True)
    adrift = task(TaskState.UNREACHABLE, shard=3, started=True)
    verdict = overdue([staging, starting, running, adrift], at(299), 300)
    assert verdict.overdue == []
    assert verdict.recheck_in == pytest.approx(1)

    verdict = overdue([staging, starting, running, adrift], at(300), 300)
    assert verdict.overdue == [staging]
    assert verdict.recheck_in == pytest.approx(100)

    verdict = overdue([staging, starting, running, adrift], at(400), 300)
    assert verdict.overdue == [staging, starting]
    assert verdict.recheck_in is None


def test_nothing_launching_means_nothing_to_recheck() -> None:
    verdict = overdue([task(TaskState.RUNNING, started=True)], at(10_000), 300)
    assert verdict.overdue == [] and verdict.recheck_in is None


def kinds(actions: list[object]) -> list[str]:
    return [type(a).__name__ for a in actions]


def know(job: JobDefinition | None, tracked: TrackedTask, **kw: bool) -> TaskKnowledge:
    return TaskKnowledge(job=job, tracked=tracked, **kw)


@pytest.mark.parametrize("state", [TaskState.STAGING, TaskState.STARTING])
def test_a_timed_out_launch_ends_as_a_dropped_one_requeued_whatever_the_flag(
    state: TaskState,
) -> None:
    stuck = task(state, started=state is TaskState.STARTING)
    d = expire_launch(know(TRANSIENT, stuck), at(301), 300)
    assert kinds(d.actions) == [
        "RemoveRunning",
        "Count",
        "Emit",
        "RecordFailover",
        "Emit",
    ]
    assert d.of(RemoveRunning)[0].task_id == stuck.task_id
    assert d.of(Count)[0].succeeded is False
    assert d.of(RecordFailover)[0].requeue is True
    # The caller kills it with its own reason, once the end is durable.
    assert d.of(Kill) == []
    failed, failover = (e.event for e in d.of(Emit))
    assert failed.kind is EventKind.FAILED and failed.warning
    assert failed.job_key == "ns.job" and failed.task_id == stuck.task_id.value
    assert "launch timed out" in failed.message and state.words in failed.message
    assert failover.kind is EventKind.FAILOVER


def test_a_timed_out_daemon_launch_is_requeued_too() -> None:
    d = expire_launch(know(DAEMON, task(TaskState.STAGING)), at(301), 300)
    assert d.of(RecordFailover)[0].requeue is True


@pytest.mark.parametrize("why", ["killed_on_purpose", "job_disabled", "app_disabled"])
def test_a_timed_out_launch_of_a_stopped_job_is_not_requeued(why: str) -> None:
    d = expire_launch(know(TRANSIENT, task(TaskState.STAGING), **{why: True}), at(301), 300)
    assert kinds(d.actions) == ["RemoveRunning", "Count", "Emit"]


def test_a_timed_out_launch_of_a_deleted_job_is_only_removed() -> None:
    stuck = task(TaskState.STAGING)
    d = expire_launch(TaskKnowledge(job=None, tracked=stuck), at(301), 300)
    assert d.actions == [RemoveRunning(stuck.task_id)]


def test_an_untracked_task_needs_nothing() -> None:
    assert expire_launch(TaskKnowledge(job=TRANSIENT, tracked=None), at(301), 300).actions == []


def test_the_made_up_update_comes_from_the_scheduler() -> None:
    stuck = task(TaskState.STAGING)
    update = launch_timeout_update(stuck, at(301), 300)
    assert update.state is TaskState.DROPPED
    assert update.source is StatusSource.SCHEDULER
    assert update.task_id == stuck.task_id.value and update.agent_id == "agent-1"
    assert update.uuid is None and not update.acknowledgeable
