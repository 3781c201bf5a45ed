"""The fires a new leader catches up: after the last one handled, within the deadline,
coalesced per misfire — boundaries, limits, daylight saving and wall-clock steps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.catchup import MAX_CATCH_UP, MissedFires, missed_fires, missed_of_jobs
from controller.cron import parse_cron
from tests.framework.factories import make_job

pytestmark = pytest.mark.unit

EVERY_10_S = parse_cron("*/10 * * * * ?")
T0 = datetime(2026, 5, 4, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_nothing_is_missed_while_the_next_fire_is_still_ahead() -> None:
    assert missed_fires(EVERY_10_S, at(0), at(9.9), deadline=300, misfire=True) == MissedFires()


def test_misfire_on_runs_every_missed_fire_oldest_first() -> None:
    missed = missed_fires(EVERY_10_S, at(0), at(35), deadline=300, misfire=True)
    assert missed == MissedFires((at(10), at(20), at(30)))


def test_misfire_off_runs_only_the_newest_missed_fire() -> None:
    # The older ones merge into it: none is skipped (nor warned about) within the deadline.
    missed = missed_fires(EVERY_10_S, at(0), at(35), deadline=300, misfire=False)
    assert missed == MissedFires((at(30),))
    beyond = missed_fires(EVERY_10_S, at(0), at(35), deadline=20, misfire=False)
    assert beyond == MissedFires((at(30),), first_skipped=at(10))


@pytest.mark.parametrize(
    ("late", "run"),
    [(0.0, True), (59.999999, True), (60.0, True), (60.000001, False), (120.0, False)],
)
def test_a_fire_runs_when_it_is_at_most_the_deadline_late(late: float, run: bool) -> None:
    missed = missed_fires(EVERY_10_S, at(-5), at(0 + late), deadline=60, misfire=True)
    assert (at(0) in missed.run) is run
    assert all((at(0 + late) - fire).total_seconds() <= 60 for fire in missed.run)
    assert (missed.first_skipped == at(0)) is not run


def test_fires_older_than_the_deadline_are_skipped_and_the_first_is_named() -> None:
    missed = missed_fires(EVERY_10_S, at(0), at(125), deadline=30, misfire=True)
    assert missed == MissedFires((at(100), at(110), at(120)), first_skipped=at(10))


def test_a_zero_deadline_runs_only_a_fire_that_is_due_this_instant() -> None:
    assert missed_fires(EVERY_10_S, at(0), at(10), deadline=0, misfire=True).run == (at(10),)
    late = missed_fires(EVERY_10_S, at(0), at(10.5), deadline=0, misfire=True)
    assert late == MissedFires((), first_skipped=at(10))


def test_at_most_the_newest_limit_fires_are_caught_up() -> None:
    every_second = parse_cron("* * * * * ?")
    missed = missed_fires(every_second, at(0), at(3600), deadline=3600, misfire=True)
    assert missed.run == tuple(at(s) for s in range(3601 - MAX_CATCH_UP, 3601))
    assert missed.first_skipped == at(1)
    few = missed_fires(every_second, at(0), at(3600), deadline=3600, misfire=True, limit=3)
    assert few.run == (at(3598), at(3599), at(3600))


def test_a_long_deadline_finds_a_rare_fire() -> None:
    daily = parse_cron("0 30 2 * * ?")
    missed = missed_fires(
        daily, utc(2026, 5, 3, 2, 30), utc(2026, 5, 5, 1, 0), deadline=86_400, misfire=False
    )
    assert missed == MissedFires((utc(2026, 5, 4, 2, 30),))


def test_a_clock_stepped_back_behind_the_last_fire_handled_replays_nothing() -> None:
    assert missed_fires(EVERY_10_S, at(100), at(40), deadline=300, misfire=True) == MissedFires()
    assert missed_fires(EVERY_10_S, at(100), at(100), deadline=300, misfire=True) == MissedFires()


def test_a_clock_stepped_far_forward_runs_only_what_the_deadline_allows() -> None:
    stepped = at(7 * 86_400)
    missed = missed_fires(EVERY_10_S, at(0), stepped, deadline=20, misfire=True)
    assert missed == MissedFires(
        (stepped - timedelta(seconds=20), stepped - timedelta(seconds=10), stepped), at(10)
    )
    assert missed_fires(EVERY_10_S, at(0), stepped, deadline=20, misfire=False).run == (stepped,)


def test_a_paced_cron_catches_up_both_passes_of_a_repeated_hour() -> None:
    # Europe/Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00 UTC).
    every_20_min = parse_cron("0 */20 * * * ?", "Europe/Berlin")
    missed = missed_fires(
        every_20_min,
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 25, 1, 25),
        deadline=3600,
        misfire=True,
    )
    # 02:40 CEST, 02:00 CET, 02:20 CET: 20 minutes apart across the change
    assert missed.run == (
        utc(2026, 10, 25, 0, 40),
        utc(2026, 10, 25, 1, 0),
        utc(2026, 10, 25, 1, 20),
    )


def test_a_pinned_time_shown_twice_is_caught_up_once() -> None:
    pinned = parse_cron("0 30 2 * * ?", "Europe/Berlin")
    missed = missed_fires(
        pinned, utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 1, 45), deadline=7200, misfire=True
    )
    assert missed == MissedFires((utc(2026, 10, 25, 0, 30),))  # 02:30 CEST only


def test_a_pinned_time_the_clock_skips_is_caught_up_at_the_first_instant_after_the_gap() -> None:
    # America/New_York, 2024-03-10: 02:00 EST becomes 03:00 EDT (07:00 UTC).
    pinned = parse_cron("0 30 2 * * ?", "America/New_York")
    missed = missed_fires(
        pinned, utc(2024, 3, 9, 7, 30), utc(2024, 3, 10, 7, 10), deadline=900, misfire=False
    )
    assert missed == MissedFires((utc(2024, 3, 10, 7, 0),))  # 03:00 EDT


def test_each_job_catches_up_with_its_own_deadline_raised_to_the_misfire_threshold() -> None:
    quick = make_job("quick", cron="*/10 * * * * ?", startingDeadlineSeconds=0, misfire=True)
    patient = make_job("patient", cron="*/10 * * * * ?", startingDeadlineSeconds=60, misfire=True)
    idle = make_job("idle", cron="0 0 0 1 1 ? 2099")
    found = missed_of_jobs([(quick, at(0)), (patient, at(0)), (idle, at(0))], at(37), threshold=5)
    assert found == {
        quick.key: MissedFires((), first_skipped=at(10)),
        patient.key: MissedFires((at(10), at(20), at(30))),
    }
    on_time = missed_of_jobs([(quick, at(0)), (patient, at(25))], at(33), threshold=5)
    assert found.keys() == on_time.keys()
    assert on_time[quick.key] == MissedFires((at(30),), first_skipped=at(10))
    assert on_time[patient.key] == MissedFires((at(30),))


CRONS = st.sampled_from(
    ["*/10 * * * * ?", "* * * * * ?", "0 */7 * * * ?", "*/5 * * * *", "0 0 */3 * * ?"]
)


# The oracle walks every fire of the gap (thousands for the per-second cron).
@settings(deadline=None)
@given(
    cron=CRONS,
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney"]),
    handled=st.integers(0, 30 * 86_400),
    gap=st.integers(-3600, 3 * 3600),
    fraction=st.integers(0, 999_999),
    deadline=st.integers(0, 4 * 3600),
    misfire=st.booleans(),
    limit=st.integers(1, 120),
)
def test_the_newest_fires_within_the_deadline_after_the_last_handled(
    cron: str,
    zone: str,
    handled: int,
    gap: int,
    fraction: int,
    deadline: int,
    misfire: bool,
    limit: int,
) -> None:
    schedule = parse_cron(cron, zone)
    since = utc(2026, 1, 1) + timedelta(seconds=handled)
    now = since + timedelta(seconds=gap, microseconds=fraction)
    every = schedule.fires_between(since, now, limit=1_000_000) if now > since else []
    within = [f for f in every if (now - f).total_seconds() <= deadline]
    expected = within[-(limit if misfire else 1) :] if within else []
    missed = missed_fires(schedule, since, now, deadline=deadline, misfire=misfire, limit=limit)
    assert list(missed.run) == expected
    # Misfire off, the fires within the deadline merge into the newest: not skipped.
    kept = expected if misfire else within
    assert missed.first_skipped == (every[0] if every and every[0] not in kept else None)
