"""The checker's rules (docs/campaign.md#the-checkers-rules): which missing or repeated
runs the semantics allow, and which are lost or doubled."""

from __future__ import annotations

from dataclasses import replace

import pytest

from devcluster.campaign.checker import (
    CronJob,
    Rules,
    TriggerJob,
    Window,
    check_cron,
    check_triggers,
    combine,
    fires_between,
    zombie_calls,
    zombie_subscriptions,
)
from devcluster.campaign.faults import LEADERLESS, Kind
from devcluster.campaign.ledger import Run
from devcluster.campaign.monitor import outages
from devcluster.campaign.whole import Observation, whole

pytestmark = pytest.mark.unit

PLAIN = CronJob("ns.plain", period=3, shards=2, misfire=False, failover=False)
STRICT = CronJob("ns.strict", period=3, shards=1, misfire=True, failover=True)


def run(job: CronJob, fire: float | None, shard: int = 0, agent: str = "S1", **times: float) -> Run:
    start = times.get("start", (fire or 0.0) + 0.1)
    task = f"{job.key}@-@{shard}@-@READY@-@{agent}@-@uuid-{start}"
    return Run(job.key, fire, shard, task, start, times.get("end", start + 0.3))


def every_fire(job: CronJob, start: float, cut: float) -> list[Run]:
    return [
        run(job, fire, shard)
        for fire in fires_between(job.period, start, cut)
        for shard in range(job.shards)
    ]


def test_fires_are_the_multiples_of_the_period_within_the_bounds() -> None:
    assert fires_between(3, 100.5, 112.0) == [102.0, 105.0, 108.0, 111.0]
    assert fires_between(5, 100.0, 100.0) == [100.0]


def test_every_fire_run_once_per_shard_is_clean() -> None:
    verdict = check_cron(PLAIN, every_fire(PLAIN, 100, 130), [], start=100, cut=130)
    assert verdict.clean
    assert (verdict.expected, verdict.ran, verdict.lost, verdict.doubled) == (20, 20, 0, 0)


def test_a_missing_shard_without_a_fault_is_lost_naming_the_fire() -> None:
    runs = [r for r in every_fire(PLAIN, 100, 130) if (r.fire_time, r.shard) != (111.0, 1)]
    verdict = check_cron(PLAIN, runs, [], start=100, cut=130)
    assert verdict.lost == 1
    [finding] = verdict.findings
    assert (finding.kind, finding.shard, finding.fire) == ("lost", 1, 111.0)
    assert "no fault near" in finding.describe()


def test_a_run_twice_without_an_agent_fault_is_doubled_naming_the_fault_around_it() -> None:
    runs = [*every_fire(STRICT, 100, 130), run(STRICT, 111.0, start=113.0)]
    killed = Window("kill-leader#1@5.0s", 110.0, 112.0, leaderless=True)
    verdict = check_cron(STRICT, runs, [killed], start=100, cut=130)
    assert verdict.doubled == 1
    [finding] = verdict.findings
    assert finding.kind == "doubled"
    assert finding.faults == ("kill-leader#1@5.0s",)
    assert len(finding.tasks) == 2


def test_fires_in_a_leaderless_gap_must_run_within_the_jobs_starting_deadline() -> None:
    gap = Window("freeze-leader", 109.5, 116.0, leaderless=True)
    runs = [r for r in every_fire(STRICT, 100, 130) if not 110 <= (r.fire_time or 0) <= 115]
    # The next leader catches up fires at most 300 s (the default deadline) late.
    assert check_cron(STRICT, runs, [gap], start=100, cut=130).lost == 2
    short = CronJob(
        "ns.strict", period=3, shards=1, misfire=True, failover=True, starting_deadline=3
    )
    lenient = check_cron(short, runs, [gap], start=100, cut=130)
    # 111 ended more than 3 s before the gap did; 114 within it.
    assert (lenient.lost, lenient.allowed_lost) == (1, 1)
    assert lenient.allowed == {"leaderless": 1}


def test_a_catch_up_deadline_rule_overrides_the_jobs_deadlines() -> None:
    gap = Window("freeze-leader", 109.5, 116.0, leaderless=True)
    runs = [r for r in every_fire(STRICT, 100, 130) if not 110 <= (r.fire_time or 0) <= 115]
    strict = check_cron(STRICT, runs, [gap], start=100, cut=130, rules=Rules(catch_up_deadline=10))
    assert strict.lost == 2
    lenient = check_cron(STRICT, runs, [gap], start=100, cut=130, rules=Rules(catch_up_deadline=3))
    assert (lenient.lost, lenient.allowed_lost) == (1, 1)
    # 0: every fire in a gap may be lost, as before the controller caught up.
    before = check_cron(STRICT, runs, [gap], start=100, cut=130, rules=Rules(catch_up_deadline=0))
    assert before.clean
    assert before.allowed == {"leaderless": 2}


@pytest.mark.parametrize("kind", [Kind.PARTITION_ZK, Kind.ZK_SESSION_EXPIRY])
def test_a_leader_cut_off_from_zookeeper_is_a_leaderless_gap_whose_fires_are_caught_up(
    kind: Kind,
) -> None:
    assert kind in LEADERLESS
    cut = Window(str(kind), 109.5, 116.0, leaderless=kind in LEADERLESS)
    runs = [r for r in every_fire(STRICT, 100, 130) if not 110 <= (r.fire_time or 0) <= 115]
    assert check_cron(STRICT, runs, [cut], start=100, cut=130).lost == 2
    assert check_cron(
        STRICT, runs, [cut], start=100, cut=130, rules=Rules(catch_up_deadline=0)
    ).clean


def test_a_leader_cut_off_from_the_master_still_leads_so_its_fires_must_run() -> None:
    assert Kind.PARTITION_MASTER not in LEADERLESS
    cut = Window("partition-master", 109.5, 116.0, leaderless=False)
    runs = [r for r in every_fire(STRICT, 100, 130) if r.fire_time != 111.0]
    # Misfire on: the fire waits in the ready queue and runs once the master is back.
    assert check_cron(STRICT, runs, [cut], start=100, cut=130).lost == 1
    # Misfire off: it merges into the run pending behind the partition.
    merged = [r for r in every_fire(PLAIN, 100, 130) if r.fire_time != 111.0]
    assert check_cron(PLAIN, merged, [cut], start=100, cut=130).allowed == {"merged": 2}


def test_with_misfire_on_a_fault_that_keeps_a_leader_allows_no_loss() -> None:
    restart = Window("master-restart", 109.0, 113.0)
    runs = [r for r in every_fire(STRICT, 100, 130) if r.fire_time != 111.0]
    assert check_cron(STRICT, runs, [restart], start=100, cut=130).lost == 1


def test_with_misfire_off_a_fire_merges_into_a_run_still_pending_or_in_flight() -> None:
    restart = Window("master-restart", 109.0, 113.0)
    runs = [r for r in every_fire(PLAIN, 100, 130) if r.fire_time != 111.0]
    verdict = check_cron(PLAIN, runs, [restart], start=100, cut=130)
    assert verdict.clean
    assert verdict.allowed == {"merged": 2}
    # No fault, but the previous fire's run was still running when this one came.
    slow = [r for r in every_fire(PLAIN, 100, 130) if r.fire_time not in (108.0, 111.0)]
    slow += [run(PLAIN, 108.0, shard, start=108.1, end=111.5) for shard in range(2)]
    assert check_cron(PLAIN, slow, [], start=100, cut=130).clean


def test_with_failover_off_a_task_lost_to_an_agent_fault_may_stay_unrun() -> None:
    crash = Window("crash-executor", 111.2, 111.2, agent_fault=True)
    no_failover = CronJob("ns.once", period=3, shards=1, misfire=True, failover=False)
    runs = [r for r in every_fire(no_failover, 100, 130) if r.fire_time != 111.0]
    verdict = check_cron(no_failover, runs, [crash], start=100, cut=130)
    assert verdict.allowed == {"task lost": 1}
    with_failover = [r for r in every_fire(STRICT, 100, 130) if r.fire_time != 111.0]
    assert check_cron(STRICT, with_failover, [crash], start=100, cut=130).lost == 1


def test_a_shard_run_again_after_a_fault_on_its_agent_is_a_rerun_not_a_double() -> None:
    partition = Window("partition-agent", 110.0, 116.0, agent_fault=True, agent="S1")
    runs = [*every_fire(STRICT, 100, 130), run(STRICT, 111.0, agent="S2", start=115.0)]
    verdict = check_cron(STRICT, runs, [partition], start=100, cut=130)
    assert (verdict.doubled, verdict.reruns) == (0, 1)
    elsewhere = Window("partition-agent", 110.0, 116.0, agent_fault=True, agent="S9")
    assert check_cron(STRICT, runs, [elsewhere], start=100, cut=130).doubled == 1


def test_a_run_of_a_cron_job_without_a_fire_time_is_reported() -> None:
    runs = [*every_fire(STRICT, 100, 130), run(STRICT, None, start=120.0)]
    [finding] = check_cron(STRICT, runs, [], start=100, cut=130).findings
    assert finding.kind == "stray"


def test_fires_outside_the_bounds_and_other_jobs_are_not_judged() -> None:
    runs = [*every_fire(PLAIN, 90, 140), run(PLAIN, 95.0), *every_fire(STRICT, 100, 130)]
    verdict = check_cron(PLAIN, runs, [], start=100, cut=130)
    assert verdict.clean
    assert verdict.expected == 20


TRIGGERS = TriggerJob("ns.triggered", shards=2, values=(100.0, 110.0, 120.0))
TOKENS = ("t-0", "t-1", "t-2")


def trigger_runs(counts: dict[int, list[int]]) -> list[Run]:
    """Per shard, how many runs each value (by index) got; each run is recorded a
    second after its value was written."""
    job = CronJob(TRIGGERS.key, 3, TRIGGERS.shards, misfire=False, failover=False)
    return [
        run(job, TRIGGERS.values[index] + 1.0, shard)
        for shard, per_value in counts.items()
        for index, count in enumerate(per_value)
        for _ in range(count)
    ]


def test_every_trigger_value_runs_once_per_shard() -> None:
    verdict = check_triggers(TRIGGERS, trigger_runs({0: [1, 1, 1], 1: [1, 1, 1]}), [])
    assert verdict.clean
    assert (verdict.expected, verdict.ran) == (6, 6)


def test_a_trigger_run_twice_is_doubled_and_one_missing_is_lost_naming_its_value() -> None:
    verdict = check_triggers(TRIGGERS, trigger_runs({0: [1, 2, 1], 1: [1, 0, 1]}), [])
    assert (verdict.doubled, verdict.lost) == (1, 1)
    assert sorted((f.kind, f.shard, f.fire) for f in verdict.findings) == [
        ("doubled", 0, 110.0),
        ("lost", 1, 110.0),
    ]


def test_a_value_replaced_before_the_leader_saw_it_may_go_unrun_without_a_fault() -> None:
    # The annotation is a level (docs/semantics.md#triggers): the second value was
    # replaced before the leader acted on it, so it never saw it.
    unseen = TriggerJob(TRIGGERS.key, 2, TRIGGERS.values, TOKENS, handled=("t-0", "t-2"))
    verdict = check_triggers(unseen, trigger_runs({0: [1, 0, 1], 1: [1, 0, 1]}), [])
    assert verdict.clean
    assert verdict.allowed == {"replaced trigger": 2}


def test_a_value_the_leader_recorded_must_run_though_it_was_replaced() -> None:
    seen = TriggerJob(TRIGGERS.key, 2, TRIGGERS.values, TOKENS, handled=TOKENS)
    verdict = check_triggers(seen, trigger_runs({0: [1, 0, 1], 1: [1, 0, 1]}), [])
    assert verdict.lost == 2
    assert {f.fire for f in verdict.findings} == {110.0}


def test_without_a_record_of_what_the_leader_saw_a_replaced_value_with_no_run_is_allowed() -> None:
    verdict = check_triggers(TRIGGERS, trigger_runs({0: [1, 0, 1], 1: [1, 0, 1]}), [])
    assert verdict.allowed == {"replaced trigger": 2}
    # Run on one shard: the leader saw it, and the other shard's run is lost.
    assert check_triggers(TRIGGERS, trigger_runs({0: [1, 1, 1], 1: [1, 0, 1]}), []).lost == 1


def test_no_more_values_go_unseen_than_the_leader_did_not_record() -> None:
    values, tokens = (100.0, 110.0, 120.0, 130.0), ("t-0", "t-1", "t-2", "t-3")
    job = CronJob("ns.triggered", 3, 2, misfire=False, failover=False)
    runs = [run(job, fire + 1.0, shard) for fire in (100.0, 130.0) for shard in (0, 1)]
    # The watch saw t-0 and t-3 only; the leader recorded three values, so one of t-1
    # and t-2 was seen after all and its runs are lost.
    seen = ("t-0", "t-3")
    counted = TriggerJob(job.key, 2, values, tokens, handled=seen, recorded=3)
    verdict = check_triggers(counted, runs, [])
    assert verdict.allowed == {"replaced trigger": 2}
    assert verdict.lost == 2
    uncounted = TriggerJob(job.key, 2, values, tokens, handled=seen)
    assert check_triggers(uncounted, runs, []).allowed == {"replaced trigger": 4}


def test_a_value_recorded_just_after_the_next_was_written_keeps_its_runs() -> None:
    job = CronJob("ns.triggered", 3, 2, misfire=False, failover=False)
    # t-1 was recorded at 120.1, after t-2 was written at 120.0; t-2 at 121.0.
    runs = [run(job, fire, shard) for fire in (101.0, 120.1, 121.0) for shard in (0, 1)]
    recorded = TriggerJob(job.key, 2, TRIGGERS.values, TOKENS, handled=TOKENS, recorded=3)
    verdict = check_triggers(recorded, runs, [])
    assert verdict.clean
    assert (verdict.expected, verdict.ran) == (6, 6)
    # By fire time alone, t-1's runs look like t-2's: t-2 doubled, t-1 never seen.
    by_time = check_triggers(TRIGGERS, runs, [])
    assert by_time.doubled == 2
    assert by_time.allowed == {"replaced trigger": 2}


def test_the_last_value_is_never_replaced_so_it_must_run() -> None:
    unseen = TriggerJob(TRIGGERS.key, 2, TRIGGERS.values, TOKENS, handled=("t-0", "t-1"))
    verdict = check_triggers(unseen, trigger_runs({0: [1, 1, 0], 1: [1, 1, 0]}), [])
    assert verdict.lost == 2
    assert {f.fire for f in verdict.findings} == {120.0}


def test_a_trigger_run_ended_by_an_agent_fault_may_go_unrun_with_failover_off() -> None:
    crash = Window("crash-executor", 111.0, 111.0, agent_fault=True)
    assert check_triggers(TRIGGERS, trigger_runs({0: [1, 0, 1], 1: [1, 1, 1]}), [crash]).clean


def test_a_trigger_run_before_any_value_was_written_is_stray() -> None:
    job = CronJob(TRIGGERS.key, 3, TRIGGERS.shards, misfire=False, failover=False)
    runs = [*trigger_runs({0: [1, 1, 1], 1: [1, 1, 1]}), run(job, 50.0, 0)]
    [finding] = check_triggers(TRIGGERS, runs, []).findings
    assert finding.kind == "stray"


def test_combined_verdicts_add_up() -> None:
    one = check_cron(PLAIN, every_fire(PLAIN, 100, 130), [], start=100, cut=130)
    two = check_triggers(TRIGGERS, trigger_runs({0: [1, 2, 1], 1: [1, 1, 1]}), [])
    total = combine([one, two])
    assert (total.expected, total.ran, total.doubled) == (26, 27, 1)
    assert len(total.findings) == 1


def test_a_subscription_by_a_replica_not_named_leader_around_it_is_a_zombie_act() -> None:
    leaders = [(100.0, "replica-1"), (101.0, None), (102.0, "replica-2"), (110.0, "replica-2")]
    heir = (102.5, "fw-1", "replica-2")
    zombie = (109.0, "fw-1", "replica-1")
    assert zombie_subscriptions([heir], leaders) == []
    [found] = zombie_subscriptions([heir, zombie], leaders)
    assert found.startswith("zombie: replica-1 subscribed framework fw-1 at 109.0")
    assert "ZooKeeper named replica-2" in found
    # ZooKeeper not answering the harness (a quorum loss) decides nothing.
    assert zombie_subscriptions([(101.0, "fw-1", "replica-3")], [(101.0, None)]) == []


def test_a_call_by_a_replica_not_named_leader_around_it_is_a_zombie_act() -> None:
    leaders = [(100.0, "replica-1"), (104.0, "replica-2"), (110.0, "replica-2")]
    calls = [
        (100.5, "fw-1", "replica-1", "ACCEPT"),
        (104.5, "fw-1", "replica-2", "ACCEPT"),
        (108.0, "fw-1", "replica-1", "KILL"),
        (108.5, "fw-1", "replica-1", "ACKNOWLEDGE"),
        (109.0, "fw-1", "replica-1", "KILL"),
    ]
    [found] = zombie_calls(calls, leaders)
    assert found == (
        "zombie: replica-1 made 3 call(s) (ACKNOWLEDGE x1, KILL x2) from 108.0 to 109.0 "
        "while ZooKeeper named replica-2"
    )
    assert zombie_calls(calls[:2], leaders) == []


# The monitor's rule for a whole stack: a fault's window ends at the first whole sample.
WHOLE = Observation("replica-1", leader_alive=True, subscribed_frameworks=1, registered_agents=3)


def test_the_stack_is_whole_with_a_live_leader_one_framework_and_every_agent() -> None:
    assert whole(WHOLE, agents=3)
    assert not whole(replace(WHOLE, leader=None), agents=3)
    assert not whole(replace(WHOLE, leader_alive=False), agents=3)
    assert not whole(replace(WHOLE, subscribed_frameworks=0), agents=3)
    assert not whole(replace(WHOLE, subscribed_frameworks=2), agents=3)
    assert not whole(replace(WHOLE, registered_agents=2), agents=3)


def test_a_frozen_leader_or_one_cut_off_from_zookeeper_or_the_master_is_not_whole() -> None:
    # The master still counts its framework subscribed (a partition leaves the stream
    # open), so the harness's own knowledge of the cut decides.
    assert not whole(replace(WHOLE, leader_frozen=True), agents=3)
    assert not whole(replace(WHOLE, leader_cut_off=True), agents=3)


def test_outages_are_found_in_the_samples_whatever_caused_them() -> None:
    samples = [
        (0.0, True, "replica-1"),
        (1.0, True, "replica-1"),
        (2.0, False, "replica-1"),  # suspended: not whole, still named
        (3.0, True, "replica-1"),
        (4.0, True, "replica-2"),  # handed over between two samples
        (5.0, True, "replica-2"),
        (6.0, False, None),  # not whole again by the last sample
    ]
    assert outages(samples) == [(1.0, 3.0), (3.0, 4.0), (5.0, 6.0)]
    assert outages(samples[:2]) == []
