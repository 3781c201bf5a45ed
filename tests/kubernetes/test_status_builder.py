"""The status builders: desired facts + runtime facts → CloudJob/CloudApp status."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from controller.operations import (
    ExecutorRuntime,
    JobHistory,
    JobRun,
    JobRuntime,
    ShardRun,
    ShardRuntime,
)
from controller.reconcilers.conditions import find_condition
from controller.reconcilers.status import (
    AppAvailability,
    Counted,
    JobFacts,
    JobState,
    app_status,
    count_runs,
    job_status,
    parse_job_status,
    render,
    status_patch,
)
from controller.resources import CloudAppStatus, CloudJobStatus, ConditionStatus

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
FACTS = JobFacts(namespace="team-a", generation=4, app_name="demo")


def shard(item: int, state: str = "TASK_RUNNING") -> ShardRuntime:
    return ShardRuntime(
        shard=item,
        task_id=f"team-a.report@-@{item}@-@READY@-@agent-{item}@-@u",
        agent_id=f"agent-{item}",
        hostname=f"host-{item}",
        state=state,
        since=T0,
    )


def runtime(**changes: object) -> JobRuntime:
    values: dict[str, object] = {
        "job_key": "team-a.report",
        "scheduled": True,
        "next_fire_time": T0 + timedelta(hours=1),
    }
    values.update(changes)
    return JobRuntime(**values)  # type: ignore[arg-type]


def condition(status: CloudJobStatus, type_: str) -> tuple[ConditionStatus, str, str]:
    found = find_condition(status.conditions, type_)
    assert found is not None, type_
    return found.status, found.reason, found.message


def test_a_scheduled_job_waiting_for_its_fire_is_ready() -> None:
    fire = T0 + timedelta(seconds=5)
    status = job_status(CloudJobStatus(), FACTS, runtime(next_fire_time=fire), T0)
    assert status.state == JobState.SCHEDULED
    assert status.observed_generation == 4
    assert status.next_schedule_time == fire.replace(microsecond=0)
    assert condition(status, "Ready")[:2] == (ConditionStatus.TRUE, "Scheduled")
    assert condition(status, "Scheduled")[0] is ConditionStatus.TRUE
    assert condition(status, "AppAvailable")[:2] == (ConditionStatus.TRUE, "AppAvailable")
    assert condition(status, "Disabled")[0] is ConditionStatus.FALSE
    assert condition(status, "CannotPlace")[0] is ConditionStatus.FALSE
    assert all(c.last_transition_time == T0.replace(microsecond=0) for c in status.conditions)


def test_a_transient_job_whose_cron_has_no_fire_left_is_expired_not_ready() -> None:
    status = job_status(CloudJobStatus(), FACTS, runtime(next_fire_time=None), T0)
    assert status.state == JobState.EXPIRED
    ready, reason, message = condition(status, "Ready")
    assert (ready, reason) == (ConditionStatus.FALSE, "Expired")
    assert "spec.cron" in message and "triggered" in message
    assert condition(status, "Scheduled")[0] is ConditionStatus.TRUE
    daemon = job_status(
        CloudJobStatus(), replace(FACTS, daemon=True), runtime(next_fire_time=None), T0
    )
    assert daemon.state == JobState.SCHEDULED


def test_a_running_job_lists_its_shards_in_order_with_counters_and_times() -> None:
    live = runtime(
        active_shards=(shard(2), shard(0), shard(1, "TASK_STAGING")),
        last_fire_time=T0,
        last_success_time=T0 - timedelta(seconds=5),
        succeeded=6,
        failed=1,
    )
    status = job_status(CloudJobStatus(), FACTS, live, T0, Counted(6, 1, 6, 1))
    assert status.state == JobState.RUNNING
    assert [(s.shard, s.agent, s.state) for s in status.active_shards] == [
        (0, "agent-0", "TASK_RUNNING"),
        (1, "agent-1", "TASK_STAGING"),
        (2, "agent-2", "TASK_RUNNING"),
    ]
    assert (status.succeeded, status.failed) == (6, 1)
    assert status.last_schedule_time == T0.replace(microsecond=0)
    assert status.last_successful_time == (T0 - timedelta(seconds=5)).replace(microsecond=0)


def test_an_invalid_spec_reports_every_problem_and_nothing_scheduled() -> None:
    facts = JobFacts(namespace="team-a", generation=2, problems=("spec.cron: bad", "spec.x: y"))
    status = job_status(CloudJobStatus(), facts, None, T0)
    assert status.state == JobState.INVALID
    assert condition(status, "Ready") == (
        ConditionStatus.FALSE,
        "InvalidSpec",
        "spec.cron: bad; spec.x: y",
    )
    assert condition(status, "Scheduled")[:2] == (ConditionStatus.FALSE, "InvalidSpec")
    assert condition(status, "AppAvailable")[0] is ConditionStatus.UNKNOWN
    assert status.active_shards == []


def test_a_missing_app_says_which_app_and_how_to_fix_it_and_keeps_history() -> None:
    previous = job_status(
        CloudJobStatus(),
        FACTS,
        runtime(succeeded=3, last_fire_time=T0, active_shards=(shard(0),)),
        T0,
        Counted(3, 0, 3, 0),
    )
    facts = JobFacts(namespace="team-a", generation=4, app_name="demo", app=AppAvailability.MISSING)
    status = job_status(previous, facts, runtime(scheduled=False), T0 + timedelta(minutes=1))
    assert status.state == JobState.APP_MISSING
    ok, reason, message = condition(status, "AppAvailable")
    assert (ok, reason) == (ConditionStatus.FALSE, "AppMissing")
    assert "CloudApp 'demo' in namespace 'team-a' does not exist" in message
    assert "spec.appName" in message
    assert condition(status, "Ready")[:2] == (ConditionStatus.FALSE, "AppMissing")
    assert status.active_shards == []
    assert status.succeeded == 3
    assert status.last_schedule_time == T0.replace(microsecond=0)
    assert status.next_schedule_time is None


def test_a_disabled_job_and_a_disabled_app_say_which_is_disabled() -> None:
    job_off = job_status(
        CloudJobStatus(),
        JobFacts(namespace="a", generation=1, app_name="d", disabled=True),
        runtime(),
        T0,
    )
    app_off = job_status(
        CloudJobStatus(),
        JobFacts(namespace="a", generation=1, app_name="d", app=AppAvailability.DISABLED),
        runtime(),
        T0,
    )
    assert job_off.state == app_off.state == JobState.DISABLED
    assert condition(job_off, "Disabled")[:2] == (ConditionStatus.TRUE, "JobDisabled")
    assert condition(app_off, "Disabled")[:2] == (ConditionStatus.TRUE, "AppDisabled")
    assert condition(job_off, "Scheduled")[:2] == (ConditionStatus.FALSE, "JobDisabled")
    assert condition(app_off, "Ready")[0] is ConditionStatus.FALSE


def test_unplaceable_work_sets_cannot_place_with_the_reason() -> None:
    live = runtime(pending_runs=1, unplaceable_reason="needs 3 x 2.0 cpus; largest offer 1.0")
    status = job_status(CloudJobStatus(), FACTS, live, T0)
    assert status.state == JobState.CANNOT_PLACE
    assert condition(status, "CannotPlace") == (
        ConditionStatus.TRUE,
        "InsufficientResources",
        "needs 3 x 2.0 cpus; largest offer 1.0",
    )
    assert condition(status, "Ready")[0] is ConditionStatus.FALSE


def test_a_pending_run_is_ready_but_pending() -> None:
    status = job_status(CloudJobStatus(), FACTS, runtime(pending_runs=2), T0)
    assert status.state == JobState.PENDING
    assert condition(status, "Ready")[0] is ConditionStatus.TRUE


def test_refreshing_with_the_same_facts_changes_nothing_and_patches_nothing() -> None:
    live = runtime(active_shards=(shard(0),), succeeded=1, last_fire_time=T0)
    first = job_status(CloudJobStatus(), FACTS, live, T0)
    stored = render(first)
    again = job_status(parse_job_status(stored), FACTS, live, T0 + timedelta(minutes=3))
    assert status_patch(stored, again) is None


def test_a_patch_carries_only_what_changed_and_removes_vanished_fields() -> None:
    first = job_status(CloudJobStatus(), FACTS, runtime(next_fire_time=T0), T0)
    stored = {**render(first), "kopf": {"progress": {}}}
    later = job_status(
        parse_job_status(stored),
        FACTS,
        runtime(active_shards=(shard(0),), next_fire_time=None),
        T0 + timedelta(seconds=1),
    )
    patch = status_patch(stored, later)
    assert patch is not None
    assert set(patch) == {"state", "conditions", "activeShards", "nextScheduleTime"}
    assert patch["nextScheduleTime"] is None
    assert "kopf" not in patch


def test_a_ready_condition_keeps_its_transition_time_while_its_status_holds() -> None:
    first = job_status(CloudJobStatus(), FACTS, runtime(), T0)
    later = job_status(first, FACTS, runtime(active_shards=(shard(0),)), T0 + timedelta(hours=1))
    found = find_condition(later.conditions, "Ready")
    assert found is not None
    assert found.reason == "Running"
    assert found.last_transition_time == T0.replace(microsecond=0)


def test_app_status_lists_executors_per_agent_and_readiness() -> None:
    executors = [
        ExecutorRuntime(agent_id="a2", hostname="host-2", executor_id="team-a.demo@-@a2", tasks=1),
        ExecutorRuntime(agent_id="a1", hostname="", executor_id="team-a.demo@-@a1", tasks=3),
    ]
    status = app_status(
        CloudAppStatus(), generation=1, problems=(), disabled=False, executors=executors, now=T0
    )
    assert [(e.agent, e.tasks) for e in status.executors] == [("a1", 3), ("a2", 1)]
    ready = find_condition(status.conditions, "Ready")
    assert ready is not None and ready.status is ConditionStatus.TRUE
    disabled = app_status(status, generation=2, problems=(), disabled=True, executors=[], now=T0)
    ready = find_condition(disabled.conditions, "Ready")
    assert ready is not None and (ready.status, ready.reason) == (ConditionStatus.FALSE, "Disabled")
    invalid = app_status(
        CloudAppStatus(),
        generation=3,
        problems=("spec.appURL: x",),
        disabled=False,
        executors=[],
        now=T0,
    )
    ready = find_condition(invalid.conditions, "Ready")
    assert ready is not None and ready.reason == "InvalidSpec" and ready.message == "spec.appURL: x"


def test_counters_start_from_what_status_shows_and_add_what_the_core_counts_next() -> None:
    shown = CloudJobStatus(succeeded=40, failed=2)
    first = count_runs(shown, runtime(succeeded=5, failed=1), None)
    assert (first.succeeded, first.failed) == (40, 2)
    later = count_runs(shown, runtime(succeeded=9, failed=1), first)
    assert (later.succeeded, later.failed) == (44, 2)


def test_counters_hold_without_a_runtime_and_rebase_when_the_core_restarts_counting() -> None:
    shown = CloudJobStatus(succeeded=44, failed=2)
    baseline = Counted(44, 2, 9, 1)
    assert count_runs(shown, None, baseline) == baseline
    assert count_runs(shown, None, None) == Counted(44, 2, 0, 0)
    restarted = count_runs(shown, runtime(succeeded=1, failed=0), baseline)
    assert (restarted.succeeded, restarted.failed) == (44, 2)
    assert count_runs(shown, runtime(succeeded=3), restarted).succeeded == 46


def test_an_invalid_spec_over_a_kept_definition_is_degraded_and_shows_what_runs() -> None:
    facts = JobFacts(
        namespace="team-a", generation=3, app_name="demo", problems=("spec.cron: bad",), held=True
    )
    live = runtime(active_shards=(shard(0),), next_fire_time=T0 + timedelta(seconds=9))
    status = job_status(CloudJobStatus(), facts, live, T0)
    assert status.state == JobState.INVALID
    ready = condition(status, "Ready")
    assert ready[:2] == (ConditionStatus.FALSE, "InvalidSpec")
    assert ready[2].startswith("spec.cron: bad")
    assert condition(status, "Scheduled")[:2] == (ConditionStatus.TRUE, "LastValidSpec")
    degraded = condition(status, "Degraded")
    assert degraded[:2] == (ConditionStatus.TRUE, "InvalidSpec")
    assert "spec.cron: bad" in degraded[2]
    assert [s.shard for s in status.active_shards] == [0]
    assert status.next_schedule_time is not None

    fixed = job_status(status, FACTS, live, T0 + timedelta(seconds=30))
    assert condition(fixed, "Degraded")[:2] == (ConditionStatus.FALSE, "AsSpecified")
    assert find_condition(fixed.conditions, "Degraded").last_transition_time == (  # type: ignore[union-attr]
        T0 + timedelta(seconds=30)
    ).replace(microsecond=0)


def test_last_schedule_time_is_the_latest_of_fire_trigger_and_what_status_showed() -> None:
    fired, triggered = T0, T0 + timedelta(seconds=40)
    status = job_status(CloudJobStatus(), FACTS, runtime(last_fire_time=fired), T0, None, triggered)
    assert status.last_schedule_time == triggered.replace(microsecond=0)
    later = job_status(status, FACTS, runtime(last_fire_time=fired), T0)
    assert later.last_schedule_time == triggered.replace(microsecond=0)
    refired = job_status(later, FACTS, runtime(last_fire_time=T0 + timedelta(minutes=5)), T0)
    assert refired.last_schedule_time == (T0 + timedelta(minutes=5)).replace(microsecond=0)


def shard_run(item: int, outcome: str | None, *, fire: datetime = T0) -> ShardRun:
    return ShardRun(
        shard=item,
        task_id=f"team-a.report@-@{item}@-@READY@-@agent-{item}@-@{fire.timestamp():.0f}",
        agent_id=f"agent-{item}",
        hostname=f"host-{item}",
        started_at=fire + timedelta(seconds=1),
        ended_at=None if outcome is None else fire + timedelta(seconds=9),
        outcome=outcome,
        message="exit status 3" if outcome == "failed" else None,
    )


def test_the_run_history_gives_exact_counters_recent_runs_and_queue_facts() -> None:
    later = T0 + timedelta(minutes=1)
    history = JobHistory(
        succeeded=41,
        failed=2,
        last_success_time=T0 + timedelta(seconds=9),
        recent=(
            JobRun(later, later, (shard_run(0, None, fire=later),)),
            JobRun(T0, T0, (shard_run(0, "succeeded"), shard_run(1, "failed"))),
        ),
    )
    live = runtime(
        history=history,
        succeeded=3,
        failed=1,
        pending_runs=2,
        failover_shards=(1,),
        active_shards=(shard(0),),
    )
    previous = CloudJobStatus(succeeded=7, failed=9)
    counted = count_runs(previous, live, Counted(7, 9, 1, 0))
    status = job_status(previous, FACTS, live, T0, counted)
    assert (status.succeeded, status.failed) == (41, 2)
    assert status.last_successful_time == (T0 + timedelta(seconds=9)).replace(microsecond=0)
    assert (status.pending_runs, status.failover_shards) == (2, [1])
    assert [s.host for s in status.active_shards] == ["host-0"]
    assert [r.outcome for r in status.recent_runs] == ["Running", "Failed"]
    failed = status.recent_runs[1].shards[1]
    assert (failed.shard, failed.host, failed.outcome, failed.message) == (
        1,
        "host-1",
        "failed",
        "exit status 3",
    )


def test_without_the_history_the_counters_and_recent_runs_stay_as_shown() -> None:
    shown = job_status(
        CloudJobStatus(),
        FACTS,
        runtime(
            history=JobHistory(succeeded=5, recent=(JobRun(T0, T0, (shard_run(0, "succeeded"),)),))
        ),
        T0,
        Counted(5, 0, 0, 0),
    )
    counted = count_runs(shown, runtime(), None)
    status = job_status(shown, FACTS, runtime(), T0, counted)
    assert status.succeeded == 5
    assert status.recent_runs == shown.recent_runs
