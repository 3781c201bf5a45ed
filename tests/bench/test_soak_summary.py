"""Unit tests of the soak's pure half (bench/soak_summary.py): the least-squares slope,
the warm-up cut, when a series counts as flat, and a replica's series split by role."""

from __future__ import annotations

import pytest

from bench.soak_summary import HOUR, Point, by_role, slope, summaries, summarise

pytestmark = pytest.mark.unit


def flat(points: list[Point], *, floor: float, warm_until: float = 0.0) -> bool:
    summary = summarise(points, warm_until=warm_until, floor=floor)
    assert summary is not None
    return summary.flat


def test_the_slope_of_a_line_is_its_gradient_and_of_noise_around_a_level_zero() -> None:
    assert slope([(t, 5.0 + 2.0 * t) for t in range(0, 100, 10)]) == pytest.approx(2.0)
    assert slope([(0, 10.0), (30, 12.0), (60, 10.0), (90, 12.0), (120, 10.0)]) == pytest.approx(
        0.0, abs=1e-9
    )
    assert slope([(0, 3.0)]) == 0.0
    assert slope([(5, 1.0), (5, 9.0)]) == 0.0


def test_samples_before_the_warm_up_are_left_out() -> None:
    # A start-up climb to 100, then level: flat once warmed up.
    points = [(float(t), min(100.0, t / 3)) for t in range(0, 3600, 30)]
    summary = summarise(points, warm_until=600, floor=1.0)
    assert summary is not None
    assert summary.first == summary.last == summary.low == summary.high == 100.0
    assert summary.slope_per_hour == pytest.approx(0.0)
    assert summary.flat
    assert not flat(points, floor=1.0)
    assert summarise(points, warm_until=4000, floor=1.0) is None


def test_a_steady_climb_is_not_flat_and_its_slope_is_per_hour() -> None:
    # 200 MiB rising 1 MiB a minute: 60 MiB an hour, beyond 10% of the median.
    points = [(float(t), 200.0 + t / 60) for t in range(0, 3600, 30)]
    summary = summarise(points, warm_until=0, floor=20.0)
    assert summary is not None
    assert summary.slope_per_hour == pytest.approx(60.0)
    assert summary.span == 3570
    assert not summary.flat


def test_a_rise_within_the_floor_or_the_tolerance_is_flat() -> None:
    # Ten file descriptors more over the hour on a base of 30: within the floor of 10.
    fds = [(float(t), 30.0 + 10 * t / HOUR) for t in range(0, 3600, 30)]
    assert flat(fds, floor=10.0)
    assert not flat(fds, floor=2.0)
    # 5% of a 400 MiB median: within the 10% tolerance, whatever the floor.
    rss = [(float(t), 400.0 + 20 * t / HOUR) for t in range(0, 3600, 30)]
    assert flat(rss, floor=0.0)


def test_a_replicas_series_are_split_by_the_role_it_had_at_each_sample() -> None:
    points: dict[str, list[Point]] = {
        "replica-2 rss_mib": [(0, 100.0), (30, 101.0), (60, 180.0), (90, 181.0)],
        # No flag at 90 s (its scrape failed): that sample has no role and is dropped.
        "replica-2 leading": [(0, 0.0), (30, 0.0), (60, 1.0)],
        "zookeeper znodes": [(0, 400.0), (30, 401.0)],
    }
    assert by_role(points) == {
        "replica-2 standby rss_mib": [(0, 100.0), (30, 101.0)],
        "replica-2 leader rss_mib": [(60, 180.0)],
        "zookeeper znodes": [(0, 400.0), (30, 401.0)],
    }


def test_summaries_warm_a_role_up_from_when_the_replica_took_it() -> None:
    # replica-1 stands by for 20 minutes, then leads: its leader RSS climbs for 3 minutes and
    # levels; the stack's series only skip the soak's warm-up; a unit without a floor is left out.
    times = range(0, 3600, 30)
    points: dict[str, list[Point]] = {
        "replica-1 leading": [(t, 1.0 if t >= 1200 else 0.0) for t in times],
        "replica-1 rss_mib": [(t, 300.0 - max(0, 1380 - t) if t >= 1200 else 90.0) for t in times],
        "replica-1 handles": [(t, 1.0) for t in times],
        "api events objects": [(t, 10.0 * t) for t in times],
    }
    result = summaries(points, warmup=600, role_warmup=180)
    assert set(result) == {
        "replica-1 standby rss_mib",
        "replica-1 leader rss_mib",
        "api events objects",
    }
    leader = result["replica-1 leader rss_mib"]
    assert (leader.first, leader.low, leader.flat) == (300.0, 300.0, True)
    assert result["replica-1 standby rss_mib"].samples == (1200 - 600) // 30
    assert not result["api events objects"].flat
