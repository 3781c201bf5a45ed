"""Fault schedules: a seed names its schedule, faults on one resource never overlap,
and the timeline undoes every held fault after it began."""

from __future__ import annotations

import itertools
import random

import pytest

from devcluster.campaign.faults import (
    ALL_KINDS,
    LEADERLESS,
    Fault,
    Kind,
    lingering,
    plan,
    resource,
    timeline,
    update_delay,
)

pytestmark = pytest.mark.unit


def schedule(seed: int, **options: object) -> tuple[Fault, ...]:
    return plan(random.Random(seed), duration=60.0, **options)  # type: ignore[arg-type]


def test_a_seed_replays_its_schedule_and_another_seed_draws_another() -> None:
    assert schedule(7) == schedule(7)
    assert schedule(7) != schedule(8)


def test_faults_on_one_resource_never_overlap_and_all_end_within_the_phase() -> None:
    for seed in range(200):
        faults = schedule(seed)
        for fault in faults:
            assert fault.at + fault.hold < 60.0
        by_resource: dict[str, list[Fault]] = {}
        for fault in faults:
            by_resource.setdefault(resource(fault.kind, fault.target, 3), []).append(fault)
        for same in by_resource.values():
            for earlier, later in itertools.pairwise(same):
                assert earlier.at + earlier.hold < later.at, (seed, earlier, later)


def test_over_many_seeds_every_kind_is_drawn_and_some_faults_coincide() -> None:
    drawn = [schedule(seed) for seed in range(100)]
    assert {fault.kind for faults in drawn for fault in faults} == set(ALL_KINDS)
    assert any(len({fault.at for fault in faults}) < len(faults) for faults in drawn), (
        "no two faults at one moment"
    )


def test_only_the_kinds_asked_for_are_drawn() -> None:
    faults = schedule(3, kinds=[Kind.MASTER_RESTART])
    assert faults
    assert {fault.kind for fault in faults} == {Kind.MASTER_RESTART}
    assert schedule(3, kinds=[]) == ()


@pytest.mark.parametrize("kind", [Kind.FREEZE_LEADER, Kind.ZK_SESSION_EXPIRY])
def test_a_freeze_and_a_session_expiry_outlast_the_session_timeout(kind: Kind) -> None:
    held = [
        fault for seed in range(100) for fault in schedule(seed, kinds=[kind], session_timeout=2.0)
    ]
    assert held
    assert all(fault.hold > 2.0 for fault in held)


def test_faults_on_the_leader_and_its_links_share_one_resource() -> None:
    on_leader = [
        Kind.KILL_LEADER,
        Kind.FREEZE_LEADER,
        Kind.ZK_SESSION_EXPIRY,
        Kind.PARTITION_ZK,
        Kind.PARTITION_MASTER,
    ]
    assert {resource(kind, 5, 3) for kind in on_leader} == {"leader"}
    assert resource(Kind.DELAY_UPDATES, 5, 3) == "mesos"
    # Cut off from ZooKeeper the leader stops leading; cut off from the master it does not.
    assert {Kind.ZK_SESSION_EXPIRY, Kind.PARTITION_ZK} <= LEADERLESS
    assert Kind.PARTITION_MASTER not in LEADERLESS


def test_delayed_updates_and_a_launch_lost_at_its_agent_act_after_they_are_undone() -> None:
    delays = {update_delay(Fault(1.0, Kind.DELAY_UPDATES, 3.0, target)) for target in range(12)}
    assert min(delays) == 0.5
    assert max(delays) == 3.0
    delayed = Fault(1.0, Kind.DELAY_UPDATES, 3.0, 4)
    assert lingering(delayed, launch_timeout=8.0) == update_delay(delayed) == 2.5
    dropped = Fault(1.0, Kind.DROP_LAUNCH_AT_AGENT, 0.0, 4)
    # Until the launch timeout (checked every quarter of it) ends the stuck task.
    assert lingering(dropped, launch_timeout=8.0) == 11.0
    assert lingering(Fault(1.0, Kind.PARTITION_ZK, 3.0, 4), launch_timeout=8.0) == 0.0


def test_the_timeline_begins_each_fault_and_ends_the_held_ones_in_time_order() -> None:
    faults = (
        Fault(5.0, Kind.PARTITION_AGENT, 3.0, 1),
        Fault(6.0, Kind.MASTER_RESTART, 0.0, 2),
        Fault(8.0, Kind.KILL_LEADER, 1.0, 3),
    )
    steps = [(action.at, action.fault, action.begin) for action in timeline(faults)]
    assert steps == [
        (5.0, 0, True),
        (6.0, 1, True),
        (8.0, 0, False),
        (8.0, 2, True),
        (9.0, 2, False),
    ]


def test_a_fault_describes_itself_with_its_moment_and_hold() -> None:
    assert Fault(5.0, Kind.FREEZE_LEADER, 4.5, 12).describe() == "freeze-leader#12@5.0s for 4.5s"
    assert Fault(6.0, Kind.MASTER_RESTART, 0.0, 3).describe() == "master-restart#3@6.0s"
