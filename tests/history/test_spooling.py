"""Records ride with the change they describe, over the in-memory ZooKeeper and Mesos:
each state change commits its run history unit in its own transaction (a refused one
spools nothing), a daemon's COMPLETE — which changes no state — commits its unit alone
before it is acknowledged, and its run's start travels in the executor's report.
Units are bounded, and read back as the records written."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from controller.executor.messages import BEGIN, COMPLETE, RunReport
from controller.history.records import HistoryRecord, JobRemoved, Outcome, RunAbandoned, RunEnded
from controller.history.spool import SpoolError, decode, encode
from controller.mesos.history_handoff import UNIT_RECORDS
from controller.mesos.states import TaskState
from controller.state import StateUnavailable
from controller.state.transactions import Create
from tests.framework.factories import make_job
from tests.framework.world import T0, World, update
from tests.history.factories import ended as ended_run
from tests.history.factories import launched, transition

pytestmark = pytest.mark.unit


@pytest.fixture
async def world() -> AsyncIterator[World]:
    built = World()
    yield built
    await built.close()


def spooled(world: World) -> list[HistoryRecord]:
    spool = world.store.layout.history_spool + "/"
    return [
        record
        for path, (data, _) in world.gateway.nodes.items()
        if path.startswith(spool)
        for record in decode(data)
    ]


def key(record: HistoryRecord) -> str:
    return repr(record)


async def test_every_handed_record_is_in_the_spool_committed_with_its_change(
    world: World,
) -> None:
    tasks = world.seed(running=2)
    await world.handle([update(t, TaskState.RUNNING, uid=n) for n, t in enumerate(tasks)])
    await world.handle([update(tasks[0], TaskState.FINISHED, uid=10)])
    await world.handle([update(tasks[1], TaskState.FAILED, uid=11)])
    # the two states with their unit; each end with its own (the last one also
    # deletes the job's running parent)
    assert [n for kind, n in world.journal.entries if kind == "commit"] == [3, 2, 3]
    assert len(world.history) == 6
    assert sorted(map(key, spooled(world))) == sorted(map(key, world.history))


async def test_a_change_zookeeper_refuses_spools_nothing(world: World) -> None:
    (task,) = world.seed(running=1)
    world.gateway.fail_next_commits(StateUnavailable("ZooKeeper did not answer"))
    await world.handle([update(task, TaskState.FINISHED)])
    assert spooled(world) == [] and world.history == []


async def test_a_daemon_run_is_spooled_before_its_ack_and_keeps_its_start_across_terms(
    world: World,
) -> None:
    (task,) = world.seed(make_job("daemon", shards=1, executionType="DAEMON"), running=1)
    await world.handle([update(task, TaskState.RUNNING, uid=1)])
    await world.handle([update(task, TaskState.RUNNING, uid=2, message=BEGIN)])
    world.journal.entries.clear()
    world.tracked.forget(task)  # a new leader: nothing of the BEGIN in memory
    began = T0 + timedelta(seconds=30)
    report = RunReport(outcome="failed", detail="exit status 2", started_at=began)
    await world.handle(
        [
            update(
                task,
                TaskState.RUNNING,
                uid=3,
                message=COMPLETE,
                data=base64.b64encode(report.encode()).decode(),
            )
        ]
    )
    # no state changed: the unit commits alone, then the update is acknowledged
    assert [kind for kind, _ in world.journal.entries] == ["commit", "ack"]
    assert world.journal.entries[0] == ("commit", 1)
    (run,) = [r for r in world.history if isinstance(r, RunEnded)]
    assert (run.started_at, run.outcome, run.message) == (began, Outcome.FAILED, "exit status 2")
    assert run in spooled(world)


async def test_a_change_with_many_records_spools_them_in_bounded_units(world: World) -> None:
    records = [launched(shard=n) for n in range(2 * UNIT_RECORDS + 1)]
    packed = world.handoff.pack(records)
    assert [len(unit.records) for unit in packed.units] == [UNIT_RECORDS, UNIT_RECORDS, 1]
    assert [decode(op.data) for op in packed.ops if isinstance(op, Create)] == [
        unit.records for unit in packed.units
    ]


def test_every_kind_of_record_reads_back_from_its_unit() -> None:
    at = T0 + timedelta(seconds=5)
    records: list[HistoryRecord] = [
        launched(),
        ended_run(),
        RunAbandoned("t", "team.report", at, "killed by the scheduler: unscheduled"),
        transition(),
        JobRemoved("team.report", "removal-1", at),
    ]
    assert decode(encode(records)) == tuple(records)
    with pytest.raises(SpoolError):
        decode(b"not a unit")
