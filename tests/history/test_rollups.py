"""The pure parts of the hourly and daily counts: interval starts, the whole intervals
of a window, and the increments of a batch of run ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from controller.history.rollups import count_rows, start_of, whole_intervals

pytestmark = pytest.mark.unit

AT = datetime(2026, 3, 1, 12, 34, 56, 789, tzinfo=UTC)


def test_an_interval_starts_at_the_utc_hour_or_day() -> None:
    assert start_of(AT, "hour") == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert start_of(AT, "day") == datetime(2026, 3, 1, tzinfo=UTC)
    # 01:30 at +02:00 is 23:30 UTC the day before
    local = datetime(2026, 3, 2, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    assert start_of(local, "day") == datetime(2026, 3, 1, tzinfo=UTC)


def test_the_whole_intervals_of_a_window_leave_its_partial_edges_out() -> None:
    hour = datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert whole_intervals("hour", AT, AT + timedelta(hours=3)) == (
        hour + timedelta(hours=1),
        hour + timedelta(hours=3),
    )
    assert whole_intervals("hour", hour, hour + timedelta(hours=2)) == (
        hour,
        hour + timedelta(hours=2),
    )
    first, end = whole_intervals("day", AT, AT + timedelta(hours=20))
    assert first >= end


def test_a_batch_adds_one_row_per_interval_namespace_and_outcome() -> None:
    ends = [("team", AT, "succeeded"), ("team", AT, "succeeded"), ("b", AT, "failed")]
    assert [(r["span"], r["namespace"], r["outcome"], r["runs"]) for r in count_rows(ends)] == [
        ("day", "b", "failed", 1),
        ("day", "team", "succeeded", 2),
        ("hour", "b", "failed", 1),
        ("hour", "team", "succeeded", 2),
    ]
    assert count_rows([]) == []
