"""The status-update state machine (docs/semantics.md#status-updates) and reconciliation
decisions."""

from __future__ import annotations

import base64
import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controller.definitions import JobDefinition
from controller.executor.messages import RunReport
from controller.mesos.reconciliation import ReconciliationRun, backoff
from controller.mesos.states import StatusUpdate, TaskState
from controller.mesos.statuses import (
    Count,
    Decision,
    Emit,
    Kill,
    ReadyDaemon,
    RecordFailover,
    RemoveRunning,
    TaskKnowledge,
    Track,
    TrackedTask,
    decide,
    expire_unreachable,
)
from controller.mesos.tasks import MetaInfo, TaskId
from controller.operations import EventKind
from controller.state.records import LaunchSource
from tests.framework.factories import make_job

pytestmark = pytest.mark.unit

T0 = datetime(2024, 1, 1, tzinfo=UTC)
TRANSIENT = make_job("job", shards=3)
FAILOVER_ON = make_job("job", shards=3, failover=True)
DAEMON = make_job("job", shards=3, executionType="DAEMON")
TASK = TaskId.new(MetaInfo("ns.job", 1), LaunchSource.READY, "agent-1", "u1")


def uuid(n: int) -> str:
    return base64.b64encode(n.to_bytes(16, "big")).decode()


def update(
    state: str,
    *,
    task: TaskId = TASK,
    message: str = "",
    reason: str | None = None,
    uid: str | None = "default",
    source: str = "SOURCE_EXECUTOR",
) -> StatusUpdate:
    return StatusUpdate.from_mesos(
        {
            "task_id": {"value": task.value},
            "state": state,
            "agent_id": {"value": task.agent_id},
            "message": message,
            "reason": reason,
            "source": source,
            "uuid": uuid(7) if uid == "default" else uid,
            "timestamp": (T0 + timedelta(seconds=5)).timestamp(),
        }
    )


def tracked(state: str = "TASK_STAGING", *, started: bool = False, **kw: Any) -> TrackedTask:
    return TrackedTask(TASK, "host-1", TaskState(state), T0, started=started, **kw)


def know(
    job: JobDefinition | None = TRANSIENT, task: TrackedTask | None = None, **kw: Any
) -> TaskKnowledge:
    return TaskKnowledge(job=job, tracked=task if task is not None else tracked(), **kw)


def kinds(decision: Decision) -> list[str]:
    out = []
    for action in decision.actions:
        if isinstance(action, Emit):
            out.append(f"Emit:{action.event.kind.value}")
        elif isinstance(action, Count):
            out.append(f"Count:{'ok' if action.succeeded else 'fail'}")
        else:
            out.append(type(action).__name__)
    return out


def test_update_from_mesos_json() -> None:
    u = update("TASK_RUNNING", message="BEGIN")
    assert (u.task_id, u.state, u.agent_id, u.message) == (
        TASK.value,
        "TASK_RUNNING",
        "agent-1",
        "BEGIN",
    )
    assert u.acknowledgeable
    assert u.at == T0 + timedelta(seconds=5)


@pytest.mark.parametrize("uid", [None, "", "bm90LTE2LWJ5dGVz", "%%%"])
def test_updates_without_a_proper_uuid_are_never_acknowledged(uid: str | None) -> None:
    assert not update("TASK_RUNNING", uid=uid).acknowledgeable
    assert not decide(update("TASK_FINISHED", uid=uid), know()).acknowledge


def test_running_tracks_state_and_emits_once() -> None:
    d = decide(update("TASK_RUNNING"), know())
    assert kinds(d) == ["Track", "Emit:TaskState"]
    assert d.acknowledge
    after = d.of(Track)[0].task
    assert (
        after.state == "TASK_RUNNING" and after.started and after.since == T0 + timedelta(seconds=5)
    )
    # the same state again (another uuid): tracked, no second event
    again = decide(update("TASK_RUNNING", uid=uuid(8)), know(task=after))
    assert kinds(again) == ["Track"]


def test_finished_removes_and_counts_success() -> None:
    d = decide(update("TASK_FINISHED"), know(task=tracked("TASK_RUNNING", started=True)))
    assert kinds(d) == ["RemoveRunning", "Count:ok", "Emit:Succeeded"]


def test_a_retried_update_with_the_same_uuid_only_acknowledges() -> None:
    d = decide(update("TASK_RUNNING", message="COMPLETE"), know(task=tracked(last_uuid=uuid(7))))
    assert d.actions == [] and d.acknowledge


def test_terminal_update_for_a_task_no_longer_recorded_is_only_acknowledged() -> None:
    for state in ("TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_GONE"):
        d = decide(update(state), TaskKnowledge(job=TRANSIENT, tracked=None))
        assert d.actions == [] and d.acknowledge


@pytest.mark.parametrize("state", ["TASK_STAGING", "TASK_STARTING", "TASK_RUNNING"])
def test_live_task_we_do_not_record_is_killed(state: str) -> None:
    d = decide(update(state), TaskKnowledge(job=TRANSIENT, tracked=None))
    assert kinds(d) == ["Kill", "Emit:Killed"]
    assert d.of(Kill)[0] == Kill(TASK.value, "agent-1")


def test_tasks_of_deleted_jobs_are_killed() -> None:
    d = decide(update("TASK_RUNNING"), know(job=None))
    assert kinds(d) == ["Kill", "Track"]
    gone = decide(update("TASK_KILLED"), know(job=None))
    assert kinds(gone) == ["RemoveRunning"]


def test_foreign_task_ids_are_killed_when_live() -> None:
    foreign = StatusUpdate(task_id="someone-else", state=TaskState.RUNNING, agent_id="a")
    assert decide(foreign, know()).actions == [Kill("someone-else", "a")]
    assert decide(StatusUpdate(task_id="x", state=TaskState.FAILED), know()).actions == []


def test_daemon_begin_and_complete_track_idle_and_count_runs() -> None:
    begin = decide(update("TASK_RUNNING", message="BEGIN"), know(DAEMON, tracked("TASK_RUNNING")))
    assert kinds(begin) == ["Track"]
    assert begin.of(Track)[0].task.idle is False
    done = decide(
        update("TASK_RUNNING", message="COMPLETE", uid=uuid(9)),
        know(DAEMON, begin.of(Track)[0].task),
    )
    assert kinds(done) == ["Count:ok", "Emit:Succeeded", "Track"]
    assert done.of(Track)[0].task.idle is True


def test_a_daemon_run_reported_failed_counts_as_a_failure() -> None:
    report = RunReport(outcome="failed", detail="exit status 2").encode()
    complete = StatusUpdate.from_mesos(
        {
            "task_id": {"value": TASK.value},
            "state": "TASK_RUNNING",
            "message": "COMPLETE",
            "uuid": uuid(3),
            "data": base64.b64encode(report).decode(),
        }
    )
    d = decide(complete, know(DAEMON, tracked("TASK_RUNNING")))
    assert kinds(d) == ["Count:fail", "Emit:Failed", "Track"]
    assert "exit status 2" in d.of(Emit)[0].event.message


def test_daemon_killed_goes_back_to_ready() -> None:
    d = decide(update("TASK_KILLED"), know(DAEMON, tracked("TASK_RUNNING")))
    assert kinds(d) == ["RemoveRunning", "Emit:Killed", "ReadyDaemon"]
    assert d.of(ReadyDaemon) == [ReadyDaemon("ns.job")]


def test_a_daemon_shard_killed_beside_running_shards_fails_over() -> None:
    d = decide(
        update("TASK_KILLED"), know(DAEMON, tracked("TASK_RUNNING"), other_shards_running=True)
    )
    assert kinds(d) == ["RemoveRunning", "Emit:Killed", "RecordFailover"]
    assert d.of(RecordFailover) == [RecordFailover(MetaInfo("ns.job", 1), TASK)]


def test_a_daemon_shard_replaced_by_a_roll_out_is_relaunched_alone_through_failover() -> None:
    # Even with no other shard running (they may be being replaced too): a ready entry
    # would wait behind their failover entries and then behind their running tasks.
    d = decide(update("TASK_KILLED"), know(DAEMON, tracked("TASK_RUNNING"), replacing=True))
    assert kinds(d) == ["RemoveRunning", "Emit:Killed", "RecordFailover"]
    assert d.of(RecordFailover) == [RecordFailover(MetaInfo("ns.job", 1), TASK, requeue=True)]


@pytest.mark.parametrize(
    "flags",
    [{"killed_on_purpose": True}, {"job_disabled": True}, {"app_disabled": True}],
)
def test_daemon_killed_on_purpose_stays_down(flags: dict[str, bool]) -> None:
    d = decide(update("TASK_KILLED"), know(DAEMON, tracked("TASK_RUNNING"), **flags))
    assert kinds(d) == ["RemoveRunning", "Emit:Killed"]


def test_transient_killed_is_not_requeued() -> None:
    d = decide(update("TASK_KILLED"), know(TRANSIENT, tracked("TASK_RUNNING")))
    assert kinds(d) == ["RemoveRunning", "Emit:Killed"]


@pytest.mark.parametrize(
    "state",
    [
        "TASK_LOST",
        "TASK_GONE",
        "TASK_GONE_BY_OPERATOR",
        "TASK_FAILED",
        "TASK_ERROR",
        "TASK_DROPPED",
    ],
)
def test_failures_fail_over_when_the_job_asks_for_it(state: str) -> None:
    running = tracked("TASK_RUNNING", started=True)
    on = decide(update(state), know(FAILOVER_ON, running))
    assert kinds(on) == [
        "RemoveRunning",
        "Count:fail",
        "Emit:Failed",
        "RecordFailover",
        "Emit:Failover",
    ]
    assert on.of(RecordFailover) == [RecordFailover(MetaInfo("ns.job", 1), TASK, requeue=False)]
    daemon = decide(update(state), know(DAEMON, running))
    assert daemon.of(RecordFailover)
    off = decide(update(state), know(TRANSIENT, running))
    assert kinds(off) == ["RemoveRunning", "Count:fail", "Emit:Failed"]
    disabled = decide(update(state), know(FAILOVER_ON, running, job_disabled=True))
    assert not disabled.of(RecordFailover)


@pytest.mark.parametrize(
    ("state", "reason"),
    [("TASK_DROPPED", "REASON_INVALID_OFFERS"), ("TASK_GONE", "REASON_RECONCILIATION")],
)
def test_a_launch_mesos_never_ran_is_requeued_whatever_the_failover_flag(
    state: str, reason: str
) -> None:
    d = decide(update(state, reason=reason, uid=None, source="SOURCE_MASTER"), know(TRANSIENT))
    assert d.of(RecordFailover) == [RecordFailover(MetaInfo("ns.job", 1), TASK, requeue=True)]
    assert not d.acknowledge


def test_gone_after_the_task_started_follows_the_failover_flag() -> None:
    started = tracked("TASK_RUNNING", started=True)
    d = decide(
        update("TASK_GONE", reason="REASON_RECONCILIATION", uid=None), know(TRANSIENT, started)
    )
    assert not d.of(RecordFailover)


@pytest.mark.parametrize("state", ["TASK_UNREACHABLE", "TASK_UNKNOWN"])
def test_unreachable_is_kept_and_counted_once(state: str) -> None:
    d = decide(update(state, uid=None), know(task=tracked("TASK_RUNNING", started=True)))
    assert kinds(d) == ["Track", "Count:fail", "Emit:TaskState"]
    again = decide(update(state, uid=None), know(task=d.of(Track)[0].task))
    assert kinds(again) == ["Track"]
    back = decide(update("TASK_RUNNING"), know(task=again.of(Track)[0].task))
    assert kinds(back) == ["Track", "Emit:TaskState"]


def test_reordered_updates_apply_once() -> None:
    """FINISHED overtakes RUNNING: the late RUNNING is for a task no longer recorded."""
    finished = decide(update("TASK_FINISHED", uid=uuid(2)), know())
    assert finished.of(RemoveRunning)
    late = decide(update("TASK_RUNNING", uid=uuid(1)), TaskKnowledge(job=TRANSIENT, tracked=None))
    # killing a finished task is harmless; nothing is counted or requeued twice
    assert kinds(late) == ["Kill", "Emit:Killed"]


def test_unreachable_past_the_grace_is_lost_and_killed() -> None:
    adrift = tracked("TASK_UNREACHABLE", started=True)
    assert expire_unreachable(know(DAEMON, adrift), T0 + timedelta(seconds=59), 60).actions == []
    d = expire_unreachable(know(DAEMON, adrift), T0 + timedelta(seconds=60), 60)
    assert kinds(d) == [
        "Kill",
        "RemoveRunning",
        "Count:fail",
        "Emit:Failed",
        "RecordFailover",
        "Emit:Failover",
    ]
    assert d.of(RecordFailover)[0].requeue is False
    assert (
        expire_unreachable(
            know(DAEMON, tracked("TASK_RUNNING")), T0 + timedelta(days=1), 60
        ).actions
        == []
    )


def test_events_name_the_job_shard_and_state() -> None:
    d = decide(update("TASK_FAILED", message="exit 3"), know(FAILOVER_ON, tracked("TASK_RUNNING")))
    failed = next(a.event for a in d.of(Emit) if a.event.kind is EventKind.FAILED)
    assert failed.job_key == "ns.job" and failed.shard == 1 and failed.warning
    assert failed.state == "TASK_FAILED" and "exit 3" in failed.message
    assert failed.details["agent"] == "agent-1"


# reconciliation -------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff(n, base=1, cap=10) for n in range(6)] == [1, 2, 4, 8, 10, 10]


def test_reconciliation_asks_until_every_task_answered() -> None:
    a = TaskId.new(MetaInfo("ns.a", 0), LaunchSource.READY, "ag1", "1")
    b = TaskId.new(MetaInfo("ns.b", 0), LaunchSource.READY, "ag2", "2")
    run = ReconciliationRun.start([a, b], gate_launches=True)
    assert run.unsettled_jobs() == {"ns.a", "ns.b"}
    assert run.next_round() == [(a.value, "ag1"), (b.value, "ag2")]
    run.observe(a.value)
    assert run.unsettled_jobs() == {"ns.b"}
    assert run.next_round() == [(b.value, "ag2")]
    run.forget(b.value)
    assert run.settled and run.next_round() == [] and run.rounds == 2


def test_a_long_run_keeps_nothing_of_the_updates_it_sees() -> None:
    # A run lasts as long as some agent does not answer; meanwhile every update of
    # every task passes through it.
    run = ReconciliationRun.start({"ns.a@-@0@-@READY@-@ag@-@1": "ag"}, gate_launches=True)
    before = copy.deepcopy(vars(run))
    for n in range(1000):
        run.observe(f"ns.b@-@0@-@READY@-@ag@-@{n}")
    assert vars(run) == before


def test_periodic_reconciliation_does_not_gate_launches() -> None:
    run = ReconciliationRun.start({"ns.a@-@0@-@READY@-@ag@-@1": "ag"}, gate_launches=False)
    assert run.unsettled_jobs() == set()
