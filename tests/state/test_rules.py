"""The pure side of the state layer: queue rules, planning, records, chunking, layout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.definitions import JobDefinition
from controller.state import planning, rules
from controller.state.layout import Layout, meta_info, parse_meta_info
from controller.state.records import (
    MAX_FIRES,
    FailoverEntry,
    LaunchSource,
    ReadyEntry,
    RecordError,
    RunningTask,
    decode_trigger,
    encode_trigger,
)
from controller.state.rules import FailoverOutcome, ReadyOutcome, TriggerOutcome
from controller.state.transactions import Create, Delete, SetData, chunk, op_size
from controller.state.view import View

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def fire(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


def job(name: str = "job", *, daemon: bool = False, **spec: Any) -> JobDefinition:
    return JobDefinition(
        namespace="ns",
        name=name,
        spec={
            "appName": "app",
            "cron": "0 * * * * ?",
            "shardingTotalCount": 3,
            "cpuCount": 0.1,
            "memoryMB": 32,
            "executionType": "DAEMON" if daemon else "TRANSIENT",
            "script": {"commandLine": "echo"},
            **spec,
        },
    )


def after_fire(
    j: JobDefinition,
    current: ReadyEntry | None,
    at: datetime | None,
    *,
    disabled: bool = False,
    running: bool = False,
) -> rules.ReadyChange:
    return rules.after_fire(j, current, at, disabled=disabled, job_running=running)


# ready: transient fires
def test_first_fire_adds_one_run_with_its_fire_time() -> None:
    change = after_fire(job(), None, fire(0))
    assert change.outcome is ReadyOutcome.ADDED
    assert change.creates_entry
    assert change.entry == ReadyEntry(1, (fire(0),))


def test_misfire_on_accumulates_one_run_per_fire() -> None:
    j = job(misfire=True)
    entry = None
    for n in range(4):
        change = after_fire(j, entry, fire(n))
        entry = change.entry
    assert change.outcome is ReadyOutcome.ACCUMULATED
    assert entry == ReadyEntry(4, (fire(0), fire(1), fire(2), fire(3)))


def test_misfire_off_sets_the_count_to_one_keeping_the_newest_fire() -> None:
    j = job(misfire=False)
    change = after_fire(j, ReadyEntry(1, (fire(0),)), fire(1))
    assert change.outcome is ReadyOutcome.SET_TO_ONE
    assert change.entry == ReadyEntry(1, (fire(1),))
    assert not change.creates_entry


def test_a_trigger_adds_a_run_even_with_misfire_off() -> None:
    j = job(misfire=False)
    change = rules.after_fire(
        j, ReadyEntry(1, (fire(0),)), fire(1), disabled=False, job_running=False, triggered=True
    )
    assert change.outcome is ReadyOutcome.ACCUMULATED
    assert change.entry == ReadyEntry(2, (fire(0), fire(1)))


def test_accumulated_fire_times_are_bounded_and_stay_the_oldest() -> None:
    j = job(misfire=True)
    entry = None
    for n in range(MAX_FIRES + 10):
        entry = after_fire(j, entry, fire(n)).entry
    assert entry is not None
    assert entry.count == MAX_FIRES + 10
    assert entry.fires == tuple(fire(n) for n in range(MAX_FIRES))
    assert entry.next_fire == fire(0)


def test_a_run_without_fire_time_stops_later_fire_times_being_recorded() -> None:
    j = job(misfire=True)
    entry = after_fire(j, ReadyEntry(1, (fire(0),)), None).entry
    entry = after_fire(j, entry, fire(2)).entry
    assert entry == ReadyEntry(3, (fire(0),))


def test_transient_fire_is_added_even_while_the_job_runs() -> None:
    change = after_fire(job(), None, fire(0), running=True)
    assert change.outcome is ReadyOutcome.ADDED


@pytest.mark.parametrize("daemon", [False, True])
@pytest.mark.parametrize("misfire", [False, True])
def test_disabled_job_never_accumulates(daemon: bool, misfire: bool) -> None:
    j = job(daemon=daemon, misfire=misfire)
    change = after_fire(j, None, fire(0), disabled=True)
    assert change.outcome is ReadyOutcome.SKIPPED_DISABLED
    assert change.entry is None
    assert not change.outcome.changed


# ready: missed fires caught up after a leader change
@pytest.mark.parametrize(
    ("misfire", "current", "expected", "outcome"),
    [
        (True, None, ReadyEntry(3, (fire(1), fire(2), fire(3))), ReadyOutcome.ADDED),
        (
            True,
            ReadyEntry(1, (fire(0),)),
            ReadyEntry(4, (fire(0), fire(1), fire(2), fire(3))),
            ReadyOutcome.ACCUMULATED,
        ),
        (False, None, ReadyEntry(1, (fire(3),)), ReadyOutcome.ADDED),
        (False, ReadyEntry(1, (fire(0),)), ReadyEntry(1, (fire(3),)), ReadyOutcome.SET_TO_ONE),
    ],
)
def test_missed_fires_are_added_one_after_another_as_each_fire_would_be(
    misfire: bool, current: ReadyEntry | None, expected: ReadyEntry, outcome: ReadyOutcome
) -> None:
    j = job(misfire=misfire)
    change = rules.after_fires(
        j, current, (fire(1), fire(2), fire(3)), disabled=False, job_running=False
    )
    assert (change.entry, change.outcome) == (expected, outcome)
    assert change.creates_entry is (current is None)


def test_missed_fires_of_a_disabled_job_add_nothing_and_none_is_refused() -> None:
    disabled = rules.after_fires(job(), None, (fire(1),), disabled=True, job_running=False)
    assert disabled.outcome is ReadyOutcome.SKIPPED_DISABLED and disabled.entry is None
    with pytest.raises(ValueError, match="at least one fire"):
        rules.after_fires(job(), None, (), disabled=False, job_running=False)


# ready: daemon
def test_daemon_is_added_once_with_count_one() -> None:
    j = job(daemon=True, misfire=True)
    first = after_fire(j, None, fire(0))
    assert first.outcome is ReadyOutcome.ADDED and first.entry == ReadyEntry(1, (fire(0),))
    again = after_fire(j, first.entry, fire(1))
    assert again.outcome is ReadyOutcome.ALREADY_READY
    assert again.entry == first.entry


def test_daemon_is_not_added_while_running() -> None:
    change = after_fire(job(daemon=True), None, None, running=True)
    assert change.outcome is ReadyOutcome.SKIPPED_RUNNING
    assert change.entry is None


# ready: launch and config updates
def test_launch_decrements_and_consumes_the_oldest_fire() -> None:
    left, consumed = rules.after_launch(ReadyEntry(3, (fire(0), fire(1), fire(2))))
    assert consumed == fire(0)
    assert left == ReadyEntry(2, (fire(1), fire(2)))


def test_launch_of_the_last_run_deletes_the_entry() -> None:
    left, consumed = rules.after_launch(ReadyEntry(1, (fire(5),)))
    assert left is None
    assert consumed == fire(5)


def test_launch_beyond_recorded_fires_has_no_fire_time() -> None:
    left, consumed = rules.after_launch(ReadyEntry(2))
    assert left == ReadyEntry(1)
    assert consumed is None


def test_config_update_with_misfire_off_resets_to_one() -> None:
    entry = ReadyEntry(5, (fire(0), fire(1)))
    assert rules.after_config_update(job(misfire=False), entry) == ReadyEntry(1, (fire(0),))


def test_config_update_with_misfire_on_keeps_the_count() -> None:
    entry = ReadyEntry(5, (fire(0),))
    assert rules.after_config_update(job(misfire=True), entry) == entry


def test_config_update_of_a_daemon_removes_it_from_ready() -> None:
    assert rules.after_config_update(job(daemon=True), ReadyEntry(1)) is None


def test_config_update_without_entry_adds_nothing() -> None:
    assert rules.after_config_update(job(misfire=False), None) is None


# queue limit
def test_queue_limit_refuses_a_new_entry_with_a_clear_message() -> None:
    change = rules.within_limit(after_fire(job(), None, fire(0)), 10, 10, "ns.job")
    assert change.outcome is ReadyOutcome.REFUSED_QUEUE_FULL
    assert change.entry is None
    assert "ready queue" in change.message and "10 job entries" in change.message
    assert "limit is 10" in change.message


def test_queue_limit_allows_up_to_the_limit() -> None:
    change = rules.within_limit(after_fire(job(), None, fire(0)), 9, 10, "ns.job")
    assert change.outcome is ReadyOutcome.ADDED


def test_queue_limit_does_not_refuse_adding_to_an_existing_entry() -> None:
    existing = ReadyEntry(1, (fire(0),))
    change = rules.within_limit(after_fire(job(misfire=True), existing, fire(1)), 10, 10, "x")
    assert change.outcome is ReadyOutcome.ACCUMULATED


# failover
def decide(j: JobDefinition | None, **flags: bool) -> FailoverOutcome:
    args = {
        "job_disabled": False,
        "app_disabled": False,
        "entry_exists": False,
        "shard_running": False,
    }
    args.update(flags)
    return rules.failover_decision(j, **args)


def test_failover_recorded_when_on() -> None:
    assert decide(job(failover=True)) is FailoverOutcome.RECORDED


def test_daemon_always_fails_over() -> None:
    assert decide(job(daemon=True, failover=False)) is FailoverOutcome.RECORDED


def test_failover_off_transient_is_not_recorded() -> None:
    assert decide(job(failover=False)) is FailoverOutcome.FAILOVER_OFF


def test_a_relaunch_ignores_the_failover_flag_but_no_other_rule() -> None:
    off = job(failover=False)
    assert decide(off, relaunch=True) is FailoverOutcome.RECORDED
    assert decide(None, relaunch=True) is FailoverOutcome.NO_CONFIG
    assert decide(off, relaunch=True, job_disabled=True) is FailoverOutcome.JOB_DISABLED
    assert decide(off, relaunch=True, entry_exists=True) is FailoverOutcome.ALREADY_RECORDED
    assert decide(off, relaunch=True, shard_running=True) is FailoverOutcome.SHARD_RUNNING


def test_no_failover_for_a_shard_the_job_no_longer_has() -> None:
    # The run started with more shards than the job has now.
    two = job(failover=True, shardingTotalCount=2)
    flags = {"job_disabled": False, "app_disabled": False, "entry_exists": False}
    decided = [rules.failover_decision(two, shard_running=False, shard=s, **flags) for s in (1, 2)]
    assert decided == [FailoverOutcome.RECORDED, FailoverOutcome.SHARD_GONE]
    relaunch = rules.failover_decision(two, shard_running=False, shard=2, relaunch=True, **flags)
    assert relaunch is FailoverOutcome.SHARD_GONE


def test_failover_needs_the_job_config() -> None:
    assert decide(None) is FailoverOutcome.NO_CONFIG


@pytest.mark.parametrize(
    ("flag", "outcome"),
    [
        ("job_disabled", FailoverOutcome.JOB_DISABLED),
        ("app_disabled", FailoverOutcome.APP_DISABLED),
        ("entry_exists", FailoverOutcome.ALREADY_RECORDED),
        ("shard_running", FailoverOutcome.SHARD_RUNNING),
    ],
)
def test_failover_refusals(flag: str, outcome: FailoverOutcome) -> None:
    assert decide(job(failover=True), **{flag: True}) is outcome


# triggers
def test_a_trigger_token_runs_once_and_a_new_one_runs_again() -> None:
    assert rules.trigger_verdict(None, "t1", disabled=False) is TriggerOutcome.RUN
    assert rules.trigger_verdict("t1", "t1", disabled=False) is TriggerOutcome.ALREADY_HANDLED
    assert rules.trigger_verdict("t1", "t2", disabled=False) is TriggerOutcome.RUN


def test_a_handled_token_stays_handled_on_a_disabled_job_and_a_new_one_is_refused() -> None:
    assert rules.trigger_verdict("t1", "t1", disabled=True) is TriggerOutcome.ALREADY_HANDLED
    assert rules.trigger_verdict("t1", "t2", disabled=True) is TriggerOutcome.REFUSED_DISABLED


def test_an_empty_trigger_token_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="trigger token must be a non-empty string"):
        rules.trigger_verdict(None, "", disabled=False)


def test_trigger_token_round_trip_and_nonsense() -> None:
    assert decode_trigger(encode_trigger("2026-01-01T00:00:00Z é")) == "2026-01-01T00:00:00Z é"
    with pytest.raises(RecordError, match="empty"):
        decode_trigger(b"")
    with pytest.raises(RecordError, match="UTF-8"):
        decode_trigger(b"\xff\xfe")


def test_trigger_plan_creates_then_sets_versioned_and_is_deleted_with_the_job() -> None:
    view, lay = View(), Layout("n")
    j = job()
    view.jobs[j.key] = j
    create = planning.trigger(view, lay, j.key, "t1")
    assert create.ops == [Create("/n/state/trigger/ns.job", b"t1")]
    assert view.triggers == {}
    create.apply()
    assert view.triggers[j.key] == ("t1", 0)
    assert planning.trigger(view, lay, j.key, "t1").ops == []
    update = planning.trigger(view, lay, j.key, "t2")
    assert update.ops == [SetData("/n/state/trigger/ns.job", b"t2", 0)]
    update.apply()
    plan, _ = planning.remove_job(view, lay, j.key)
    assert Delete("/n/state/trigger/ns.job", 1) in plan.ops
    plan.apply()
    assert view.triggers == {} and view.jobs == {}


# records
def test_ready_entry_round_trip_and_original_bare_count() -> None:
    entry = ReadyEntry(3, (fire(0), fire(1)))
    assert ReadyEntry.decode(entry.encode()) == entry
    assert ReadyEntry.decode(b"7") == ReadyEntry(7)


def test_ready_entry_rejects_nonsense() -> None:
    with pytest.raises(RecordError, match="count"):
        ReadyEntry.decode(b'{"count": "x"}')
    with pytest.raises(RecordError, match="at least one run"):
        ReadyEntry(0)
    with pytest.raises(RecordError, match="not JSON"):
        ReadyEntry.decode(b"{nope")


def test_running_task_round_trip_and_original_bare_task_id() -> None:
    task = RunningTask(
        task_id="ns.job@-@2@-@FAILOVER@-@agent-1@-@uuid",
        job_key="ns.job",
        shard=2,
        source=LaunchSource.FAILOVER,
        agent_id="agent-1",
        hostname="host",
        launched_at=fire(1),
        executor_id="ns.app@-@agent-1",
        fire_time=fire(0),
        state="TASK_RUNNING",
    )
    assert RunningTask.decode(task.encode(), "ns.job", 2, fire(9)) == task
    assert len(task.encode()) < 400
    legacy = RunningTask.decode(task.task_id.encode(), "ns.job", 2, fire(9))
    assert legacy.source is LaunchSource.FAILOVER
    assert legacy.agent_id == "agent-1"
    assert legacy.launched_at == fire(9)


def test_failover_entry_round_trip_and_original_bare_task_id() -> None:
    entry = FailoverEntry("ns.job", 1, "ns.job@-@1@-@READY@-@a@-@u", fire(0))
    assert FailoverEntry.decode(entry.encode(), "ns.job", 1) == entry
    assert FailoverEntry.decode(b"ns.job@-@1@-@READY@-@a@-@u", "ns.job", 1).task_id == (
        "ns.job@-@1@-@READY@-@a@-@u"
    )


# layout
def test_layout_paths() -> None:
    lay = Layout()
    assert lay.ready("ns.job") == "/elastic-job-cloud/state/ready/ns.job"
    assert lay.running_task("ns.job", 3) == "/elastic-job-cloud/state/running/ns.job/ns.job@-@3"
    assert lay.failover_task("ns.job", 0) == ("/elastic-job-cloud/state/failover/ns.job/ns.job@-@0")
    assert lay.framework_id == "/elastic-job-cloud/ha/framework_id"
    assert lay.trigger("ns.job") == "/elastic-job-cloud/state/trigger/ns.job"
    assert lay.trigger_root in lay.containers()
    assert Layout("a/b").disabled_app("ns.app") == "/a/b/state/disable/app/ns.app"


def test_layout_rejects_bad_namespace_and_keys() -> None:
    with pytest.raises(ValueError, match="namespace"):
        Layout("/abs")
    with pytest.raises(ValueError, match="path segment"):
        Layout().job("a/b")


def test_meta_info_round_trip_and_task_ids() -> None:
    assert parse_meta_info(meta_info("ns.job", 12)) == ("ns.job", 12)
    assert parse_meta_info("ns.job@-@4@-@READY@-@agent@-@uuid") == ("ns.job", 4)
    with pytest.raises(ValueError, match="shard"):
        parse_meta_info("ns.job")


# chunking
def test_chunk_keeps_groups_whole_and_in_order() -> None:
    groups = [[Create(f"/a/{g}/{i}", b"x" * 10) for i in range(3)] for g in range(5)]
    chunks = chunk(groups, max_ops=7)
    assert [len(c) for c in chunks] == [6, 6, 3]
    assert [op for c in chunks for op in c] == [op for g in groups for op in g]


def test_chunk_splits_an_oversized_group_and_respects_bytes() -> None:
    big = [SetData(f"/n/{i}", b"y" * 1000) for i in range(10)]
    chunks = chunk([big], max_ops=100, max_bytes=3 * op_size(big[0]))
    assert [len(c) for c in chunks] == [3, 3, 3, 1]


@given(
    st.lists(st.integers(min_value=1, max_value=30), max_size=40),
    st.integers(min_value=1, max_value=50),
)
def test_chunk_never_exceeds_the_op_bound(sizes: list[int], max_ops: int) -> None:
    groups = [[Delete(f"/g{g}/{i}") for i in range(n)] for g, n in enumerate(sizes)]
    chunks = chunk(groups, max_ops=max_ops)
    assert all(0 < len(c) <= max_ops for c in chunks)
    assert [op for c in chunks for op in c] == [op for g in groups for op in g]


# planning
def test_ready_plan_is_versioned_and_applies_after_commit() -> None:
    view, lay = View(), Layout("n")
    view.ready["ns.job"] = (ReadyEntry(2), 7)
    plan = planning.ready(view, lay, "ns.job", ReadyEntry(1))
    assert plan.ops == [SetData("/n/state/ready/ns.job", ReadyEntry(1).encode(), 7)]
    assert view.ready["ns.job"] == (ReadyEntry(2), 7)
    plan.apply()
    assert view.ready["ns.job"] == (ReadyEntry(1), 8)
    delete = planning.ready(view, lay, "ns.job", None)
    assert delete.ops == [Delete("/n/state/ready/ns.job", 8)]


def test_launch_plan_creates_parent_once_and_consumes_one_ready_run_per_job() -> None:
    view, lay = View(), Layout("n")
    j = job()
    view.jobs[j.key] = j
    view.ready[j.key] = (ReadyEntry(2, (fire(0), fire(1))), 3)
    tasks = [
        RunningTask(
            f"{j.key}@-@{s}@-@READY@-@a@-@u{s}",
            j.key,
            s,
            LaunchSource.READY,
            "a",
            "h",
            fire(2),
            fire_time=fire(0),
        )
        for s in range(3)
    ]
    [plan] = planning.launch(view, lay, tasks)
    assert [type(op).__name__ for op in plan.ops] == ["Create"] * 4 + ["SetData"]
    assert plan.ops[-1] == SetData(lay.ready(j.key), ReadyEntry(1, (fire(1),)).encode(), 3)
    plan.apply()
    assert set(view.running[j.key]) == {0, 1, 2}
    with pytest.raises(ValueError, match="already running"):
        planning.launch(
            view, lay, [RunningTask("other", j.key, 0, LaunchSource.READY, "a", "h", fire(2))]
        )


def test_launch_plan_refuses_work_that_is_not_queued() -> None:
    view, lay = View(), Layout("n")
    j = job()
    view.jobs[j.key] = j
    ready_task = RunningTask("t1", j.key, 0, LaunchSource.READY, "a", "h", fire(0))
    with pytest.raises(ValueError, match="no ready entry"):
        planning.launch(view, lay, [ready_task])
    failover_task = RunningTask("t2", j.key, 0, LaunchSource.FAILOVER, "a", "h", fire(0))
    with pytest.raises(ValueError, match="no failover entry"):
        planning.launch(view, lay, [failover_task])
