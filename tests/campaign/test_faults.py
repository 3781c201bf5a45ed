"""Fault schedules: a seed names its schedule, faults on one resource never overlap,
and the timeline undoes every held fault after it began."""

from __future__ import annotations

import itertools
import random

import pytest

from devcluster.campaign.faults import ALL_KINDS, Fault, Kind, plan, resource, timeline

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


def test_a_freeze_outlasts_the_session_timeout() -> None:
    freezes = [
        fault
        for seed in range(100)
        for fault in schedule(seed, kinds=[Kind.FREEZE_LEADER], session_timeout=2.0)
    ]
    assert freezes
    assert all(fault.hold > 2.0 for fault in freezes)


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
