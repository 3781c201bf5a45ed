"""Unit tests of controller.cron: error messages, every special character, the daylight-saving
rule, and croniter as an oracle over generated expressions (UTC, a zone without DST, DST zones
away from their transitions, and naive wall-clock sequences mapped through the DST rule)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from croniter.croniter import CroniterBadDateError
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from controller.cron import (
    CronError,
    CronSchedule,
    parse_cron,
    validate_cron,
    validate_time_zone,
)

pytestmark = pytest.mark.unit

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")  # moves its clocks by 30 minutes


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fires(expression: str, after: datetime, count: int, zone: str = "UTC") -> list[datetime]:
    schedule = parse_cron(expression, zone)
    result: list[datetime] = []
    fire: datetime | None = after
    while len(result) < count:
        assert fire is not None
        fire = schedule.next_fire(fire)
        if fire is None:
            break
        result.append(fire)
    return result


def local_walls(expression: str, after: datetime, count: int, zone: ZoneInfo) -> list[str]:
    return [
        f.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S%z")
        for f in fires(expression, after, count, str(zone))
    ]


def days(expression: str, after: datetime, count: int) -> list[str]:
    return [f.strftime("%Y-%m-%d %a") for f in fires(expression, after, count)]


# Errors: each names the field (or the zone) and says what to write instead.


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0 0 25 * * ?", "cron field 'hour' (3rd): value 25 out of range 0-23 in '0 0 25 * * ?'"),
        ("60 * * * * ?", "cron field 'second' (1st): value 60 out of range 0-59"),
        ("0 60 * * * ?", "cron field 'minute' (2nd): value 60 out of range 0-59"),
        ("0 0 0 32 * ?", "cron field 'day-of-month' (4th): value 32 out of range 1-31"),
        ("0 0 0 0 * ?", "cron field 'day-of-month' (4th): value 0 out of range 1-31"),
        ("0 0 0 ? 13 *", "cron field 'month' (5th): value 13 out of range 1-12 (or JAN-DEC)"),
        ("0 0 0 ? * 0", "cron field 'day-of-week' (6th): value 0 out of range 1-7 (Quartz"),
        ("0 0 0 ? * 8", "cron field 'day-of-week' (6th): value 8 out of range 1-7"),
        ("0 0 0 1 1 ? 1969", "cron field 'year' (7th): value 1969 out of range 1970-2099"),
        ("0 0 0 1 1 ? 2100", "cron field 'year' (7th): value 2100 out of range 1970-2099"),
        ("0 24 * * *", "cron field 'hour' (2nd): value 24 out of range 0-23"),
        ("0 0 * * 8", "cron field 'day-of-week' (5th): value 8 out of range 0-7 (0 and 7 = SUN"),
        ("0 0 * 0 *", "cron field 'month' (4th): value 0 out of range 1-12"),
        ("0 0 0 ? * FRY", "cron field 'day-of-week' (6th): 'FRY' is not a number or a name"),
        ("0 0 0 ? JANUARY *", "cron field 'month' (5th): 'JANUARY' is not a number or a name"),
        ("x * * * *", "cron field 'minute' (1st): 'x' is not a number; use 0-59"),
        ("0 MON * * * ?", "cron field 'minute' (2nd): 'MON' is not a number"),
        ("0 0 -1 * * ?", "cron field 'hour' (3rd): '-1' is not a range"),
        ("0 0 1- * * ?", "cron field 'hour' (3rd): '1-' is not a range"),
        ("99999999999 * * * * ?", "cron field 'second' (1st): value 99999999999 out of range"),
        ("*/0 * * * *", "cron field 'minute' (1st): step 0 out of range 1-59"),
        ("0 0 */24 * * ?", "cron field 'hour' (3rd): step 24 out of range 1-23"),
        ("0 0 0 ? * */7", "cron field 'day-of-week' (6th): step 7 out of range 1-6"),
        ("*/x * * * *", "cron field 'minute' (1st): step 'x' is not a number"),
        ("*/ * * * *", "cron field 'minute' (1st): step '' is not a number"),
        ("5-2 * * * *", "cron field 'minute' (1st): range 5-2 runs backwards"),
        ("0 0 * * FRI-MON", "cron field 'day-of-week' (5th): range FRI-MON runs backwards"),
        ("0 0 0 1 1 ? 2030-2020", "cron field 'year' (7th): range 2030-2020 runs backwards"),
        ("1,,2 * * * *", "cron field 'minute' (1st): empty list item"),
        ("0 0 0 1, * ?", "cron field 'day-of-month' (4th): empty list item"),
        ("? * * * * *", "cron field 'second' (1st): '?' stands alone and only in day-of-month"),
        ("0 0 0 ?,1 * *", "cron field 'day-of-month' (4th): '?' stands alone"),
        ("0 0 0 1 1 ? ?", "cron field 'year' (7th): '?' stands alone"),
        ("0 0 ? * *", "cron field 'day-of-month' (3rd): '?' belongs to the Quartz dialect"),
        ("0 0 L * *", "cron field 'day-of-month' (3rd): 'L' belongs to the Quartz dialect"),
        ("0 0 15W * *", "cron field 'day-of-month' (3rd): 'W' belongs to the Quartz dialect"),
        ("0 0 * * 5L", "cron field 'day-of-week' (5th): 'L' belongs to the Quartz dialect"),
        ("0 0 * * 5#3", "cron field 'day-of-week' (5th): '#' belongs to the Quartz dialect"),
        ("0 0 0 L,15 * ?", "cron field 'day-of-month' (4th): 'L,15': L and W cannot be combined"),
        ("0 0 0 L-31 * ?", "cron field 'day-of-month' (4th): 'L-31': the offset in L-n must be"),
        ("0 0 0 L-x * ?", "the offset in L-n must be a number 0-30"),
        ("0 0 0 32W * ?", "cron field 'day-of-month' (4th): value 32 out of range 1-31"),
        ("0 0 0 W * ?", "cron field 'day-of-month' (4th): 'W' is not a day-of-month"),
        ("0 0 0 1-5W * ?", "cron field 'day-of-month' (4th): '1-5W' is not a day-of-month"),
        ("0 0 0 15L * ?", "cron field 'day-of-month' (4th): '15L' is not a day-of-month"),
        ("0 0 0 ? * 6#6", "cron field 'day-of-week' (6th): '6#6': the n in weekday#n must be 1-5"),
        ("0 0 0 ? * 6#0", "the n in weekday#n must be 1-5"),
        ("0 0 0 ? * 8#1", "cron field 'day-of-week' (6th): value 8 out of range 1-7"),
        ("0 0 0 ? * 6#3,2", "cron field 'day-of-week' (6th): '6#3,2': L and # cannot be combined"),
        ("0 0 0 ? * 8L", "cron field 'day-of-week' (6th): value 8 out of range 1-7"),
        ("0 0 0 ? * L6", "cron field 'day-of-week' (6th): 'L6' is not a day-of-week"),
        ("0 0 12 * * *", "neither is '?' in '0 0 12 * * *'; a Quartz expression needs '?' in"),
        ("0 0 12 * * *", "write '0 0 12 * * ?'"),
        ("0 0 12 * * MON", "write '0 0 12 ? * MON'"),
        (
            "0 0 12 5 * MON",
            "cron fields 'day-of-month' (4th) and 'day-of-week' (6th): both are set",
        ),
        ("0 0 12 ? * ?", "cron fields 'day-of-month' (4th) and 'day-of-week' (6th): both are '?'"),
        ("* * * *", "cron expression '* * * *' has 4 fields; write 5 (minute hour day-of-month"),
        ("0 0 0 1 1 ? 2020 x", "has 8 fields"),
        ("", "cron expression '' has 0 fields"),
        ("@daily", "cron expression '@daily' has 1 field;"),
        ("0 0 0 30 2 ?", "cron expression '0 0 0 30 2 ?' never fires: no date matches"),
        ("0 0 0 31 4,6,9,11 ?", "never fires"),
        ("0 0 31 2 *", "never fires"),
        ("0 0 0 29 2 ? 2023", "never fires: no date matches its day-of-month, month, day-of-week"),
        ("0 0 0 ? 2 2#5 2025-2027", "never fires"),
    ],
)
def test_bad_expression_is_rejected_with_a_message_naming_the_field(
    expression: str, expected: str
) -> None:
    with pytest.raises(CronError) as raised:
        parse_cron(expression)
    assert expected in str(raised.value)
    assert validate_cron(expression) == str(raised.value)
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    "expression",
    [
        "0 0 12 * * ?",
        "0 0/15 * * * ?",
        "*/5 * * * *",
        "0 9 * * mon-fri",
        "0 0 12 ? * FRI#3 2030",
        "0 0 0 L-3W * ?",
        "0 0 0 29 2 ?",
        "0 0 0 ? 2 2#5",
        "0 0 0 1 1 ? 2020",
    ],
)
def test_valid_expressions_validate(expression: str) -> None:
    assert validate_cron(expression) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Mars/Olympus", "time zone 'Mars/Olympus' is not a known IANA time zone; use a name"),
        ("utc", "time zone 'utc' is not a known IANA time zone"),
        ("", "time zone '' is not an IANA time zone name"),
        ("America", "time zone 'America' is not an IANA time zone name"),
        ("../etc/passwd", "is not an IANA time zone name"),
        ("/etc/localtime", "is not an IANA time zone name"),
        ("Europe/Berlin\x00", "is not an IANA time zone name"),
        ("x" * 300, "is not an IANA time zone name"),
    ],
)
def test_bad_time_zone_is_rejected(name: str, expected: str) -> None:
    with pytest.raises(CronError) as raised:
        parse_cron("0 0 12 * * ?", name)
    assert expected in str(raised.value)
    assert validate_time_zone(name) == str(raised.value)


@pytest.mark.parametrize("name", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Shanghai"])
def test_good_time_zone_validates(name: str) -> None:
    assert validate_time_zone(name) is None


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_cron("0 * * * * ?").next_fire(datetime(2024, 1, 1))


# The API contract.


def test_next_fire_is_strictly_after_and_in_utc() -> None:
    schedule = parse_cron("0 0 12 * * ?", "Asia/Shanghai")
    first = schedule.next_fire(utc(2024, 5, 1))
    assert first == utc(2024, 5, 1, 4)
    assert first is not None and first.tzinfo is UTC
    assert schedule.next_fire(first) == utc(2024, 5, 2, 4)
    assert schedule.next_fire(first - timedelta(microseconds=1)) == first
    assert schedule.next_fire(first + timedelta(microseconds=1)) == utc(2024, 5, 2, 4)


def test_after_may_be_in_any_zone() -> None:
    schedule = parse_cron("0 30 * * * ?", "UTC")
    india = timezone(timedelta(hours=5, minutes=30))
    assert schedule.next_fire(datetime(2024, 1, 1, 9, 45, tzinfo=india)) == utc(2024, 1, 1, 4, 30)
    assert schedule.next_fire(datetime(2024, 1, 1, 6, 0, tzinfo=NEW_YORK)) == utc(
        2024, 1, 1, 11, 30
    )


def test_no_fire_left_gives_none() -> None:
    schedule = parse_cron("0 0 0 1 1 ? 2025-2026")
    assert schedule.next_fire(utc(2024, 6, 1)) == utc(2025, 1, 1)
    assert schedule.next_fire(utc(2025, 1, 1)) == utc(2026, 1, 1)
    assert schedule.next_fire(utc(2026, 1, 1)) is None
    assert parse_cron("0 0 0 1 1 ? 2020").next_fire(utc(2024, 1, 1)) is None


def test_fires_between_is_after_start_up_to_end_and_limited() -> None:
    schedule = parse_cron("0 0 * * * ?")
    start, end = utc(2024, 1, 1, 0), utc(2024, 1, 1, 5)
    assert schedule.fires_between(start, end) == [utc(2024, 1, 1, h) for h in range(1, 6)]
    assert schedule.fires_between(start, end, limit=2) == [utc(2024, 1, 1, 1), utc(2024, 1, 1, 2)]
    assert schedule.fires_between(end, start) == []
    assert parse_cron("0 0 0 1 1 ? 2020").fires_between(utc(2019, 1, 1), utc(2030, 1, 1)) == [
        utc(2020, 1, 1)
    ]


def test_schedules_are_values() -> None:
    assert parse_cron("0 * * * * ?") == CronSchedule("0 * * * * ?", "UTC")
    assert parse_cron("0 * * * * ?") != parse_cron("0 * * * * ?", "Europe/Berlin")
    assert len({parse_cron("0 * * * * ?"), CronSchedule("0 * * * * ?")}) == 1
    assert parse_cron("0 * * * * ?").dialect == "quartz"
    assert parse_cron("* * * * *").dialect == "unix"
    with pytest.raises(CronError):
        CronSchedule("0 0 25 * * ?")


def test_far_fire_is_found() -> None:
    # A fifth Monday in February is a Feb 29 falling on a Monday: 2016, 2044, 2072.
    assert fires("0 0 0 ? FEB 2#5", utc(2016, 3, 1), 2) == [utc(2044, 2, 29), utc(2072, 2, 29)]
    # 2100 is no leap year.
    assert fires("0 0 0 29 2 ?", utc(2096, 3, 1), 1) == [utc(2104, 2, 29)]


# Each field and special character.


def test_seconds_field_and_steps() -> None:
    after = utc(2024, 1, 1)
    assert [f.second for f in fires("0/15 * * * * ?", after, 5)] == [15, 30, 45, 0, 15]
    assert [f.second for f in fires("*/20 * * * * ?", after, 3)] == [20, 40, 0]
    assert [f.second for f in fires("10-50/10 * * * * ?", after, 6)] == [10, 20, 30, 40, 50, 10]
    assert [f.second for f in fires("5/25 * * * * ?", after, 4)] == [5, 30, 55, 5]
    assert [f.second for f in fires("1,3,58-59 * * * * ?", after, 5)] == [1, 3, 58, 59, 1]


def test_minutes_hours_and_wrapping_ranges() -> None:
    after = utc(2024, 1, 1)
    assert [f.minute for f in fires("0 */20 * * * ?", after, 4)] == [20, 40, 0, 20]
    assert [f.hour for f in fires("0 0 22-2 * * ?", after, 6)] == [1, 2, 22, 23, 0, 1]
    assert [f.hour for f in fires("0 0 22-2/2 * * ?", after, 4)] == [2, 22, 0, 2]
    assert [f.minute for f in fires("0 55-5/5 * * * ?", after, 4)] == [5, 55, 0, 5]


def test_months_by_number_name_and_wrap() -> None:
    after = utc(2024, 1, 15)
    assert [f.month for f in fires("0 0 0 1 JAN,jul ?", after, 3)] == [7, 1, 7]
    assert [f.month for f in fires("0 0 0 1 NOV-FEB ?", after, 5)] == [2, 11, 12, 1, 2]
    assert [f.month for f in fires("0 0 0 1 */4 ?", after, 3)] == [5, 9, 1]
    assert [f.month for f in fires("0 0 1 jan-mar *", after, 3)] == [2, 3, 1]


def test_quartz_day_of_week_counts_sunday_as_1() -> None:
    after = utc(2024, 1, 1)  # a Monday
    assert days("0 0 0 ? * 1", after, 2) == ["2024-01-07 Sun", "2024-01-14 Sun"]
    assert days("0 0 0 ? * 7", after, 1) == ["2024-01-06 Sat"]
    assert days("0 0 0 ? * SUN,sat", after, 3) == [
        "2024-01-06 Sat",
        "2024-01-07 Sun",
        "2024-01-13 Sat",
    ]
    assert days("0 0 0 ? * MON-FRI", after, 5)[-1] == "2024-01-08 Mon"
    assert days("0 0 0 ? * FRI-MON", after, 4) == [
        "2024-01-05 Fri",
        "2024-01-06 Sat",
        "2024-01-07 Sun",
        "2024-01-08 Mon",
    ]
    assert days("0 0 0 ? * 2/2", after, 3) == ["2024-01-03 Wed", "2024-01-05 Fri", "2024-01-08 Mon"]


def test_unix_day_of_week_counts_sunday_as_0_and_7() -> None:
    after = utc(2024, 1, 1)
    assert days("0 0 * * 0", after, 1) == ["2024-01-07 Sun"]
    assert days("0 0 * * 7", after, 1) == ["2024-01-07 Sun"]
    assert days("0 0 * * sun", after, 1) == ["2024-01-07 Sun"]
    assert days("0 0 * * 5-7", after, 3) == ["2024-01-05 Fri", "2024-01-06 Sat", "2024-01-07 Sun"]
    assert days("0 0 * * */3", after, 3) == ["2024-01-03 Wed", "2024-01-06 Sat", "2024-01-07 Sun"]
    assert days("0 0 * * 1/3", after, 3) == ["2024-01-04 Thu", "2024-01-08 Mon", "2024-01-11 Thu"]


def test_unix_day_fields_or_when_both_restricted() -> None:
    after = utc(2024, 9, 1)
    # Either the 13th or a Friday.
    assert days("0 0 13 * 5", after, 4) == [
        "2024-09-06 Fri",
        "2024-09-13 Fri",
        "2024-09-20 Fri",
        "2024-09-27 Fri",
    ]
    assert days("0 0 13 * 1", after, 4)[:3] == [
        "2024-09-02 Mon",
        "2024-09-09 Mon",
        "2024-09-13 Fri",
    ]
    # One of them '*': only the other one restricts.
    assert days("0 0 13 * *", after, 2) == ["2024-09-13 Fri", "2024-10-13 Sun"]
    assert days("0 0 * * 1", after, 2) == ["2024-09-02 Mon", "2024-09-09 Mon"]
    assert days("0 0 */10 * 1", after, 3) == ["2024-09-02 Mon", "2024-09-09 Mon", "2024-09-11 Wed"]


def test_last_day_of_month() -> None:
    after = utc(2023, 12, 31, 12)
    assert days("0 0 0 L * ?", after, 3) == ["2024-01-31 Wed", "2024-02-29 Thu", "2024-03-31 Sun"]
    assert days("0 0 0 L 2 ?", utc(2024, 3, 1), 1) == ["2025-02-28 Fri"]
    assert days("0 0 0 L-3 * ?", after, 2) == ["2024-01-28 Sun", "2024-02-26 Mon"]
    assert days("0 0 0 L-30 * ?", after, 3) == [
        "2024-01-01 Mon",
        "2024-03-01 Fri",
        "2024-05-01 Wed",
    ]


def test_nearest_weekday() -> None:
    assert days("0 0 0 15W * ?", utc(2024, 6, 1), 4) == [
        "2024-06-14 Fri",  # the 15th is a Saturday
        "2024-07-15 Mon",
        "2024-08-15 Thu",
        "2024-09-16 Mon",  # the 15th is a Sunday
    ]
    # Never leaves the month: June 1st 2024 is a Saturday, June 30th a Sunday.
    assert days("0 0 0 1W * ?", utc(2024, 5, 2), 1) == ["2024-06-03 Mon"]
    assert days("0 0 0 30W 6 ?", utc(2024, 1, 1), 1) == ["2024-06-28 Fri"]
    # A day the month does not have never fires in that month.
    assert days("0 0 0 31W * ?", utc(2024, 4, 1), 1) == ["2024-05-31 Fri"]
    assert days("0 0 0 LW * ?", utc(2024, 2, 1), 3) == [
        "2024-02-29 Thu",
        "2024-03-29 Fri",  # the 31st is a Sunday
        "2024-04-30 Tue",
    ]
    assert days("0 0 0 LW 8 ?", utc(2024, 1, 1), 1) == ["2024-08-30 Fri"]  # the 31st is a Saturday
    assert days("0 0 0 L-1W 6 ?", utc(2024, 1, 1), 1) == ["2024-06-28 Fri"]  # the 29th: Saturday


def test_nth_weekday_of_month() -> None:
    assert days("0 0 0 ? * 6#3", utc(2024, 1, 1), 2) == ["2024-01-19 Fri", "2024-02-16 Fri"]
    assert days("0 0 0 ? * FRI#3", utc(2024, 1, 1), 1) == ["2024-01-19 Fri"]
    assert days("0 0 0 ? * 2#5", utc(2024, 1, 1), 5) == [
        "2024-01-29 Mon",
        "2024-04-29 Mon",
        "2024-07-29 Mon",
        "2024-09-30 Mon",
        "2024-12-30 Mon",
    ]
    assert days("0 0 0 ? * 1#1", utc(2024, 9, 1), 1) == ["2024-10-06 Sun"]


def test_last_weekday_of_month() -> None:
    assert days("0 0 0 ? * 6L", utc(2024, 1, 1), 2) == ["2024-01-26 Fri", "2024-02-23 Fri"]
    assert days("0 0 0 ? * friL", utc(2024, 1, 1), 1) == ["2024-01-26 Fri"]
    assert days("0 0 0 ? * 1L", utc(2024, 3, 1), 2) == ["2024-03-31 Sun", "2024-04-28 Sun"]
    # 'L' alone in day-of-week is its last day, Saturday.
    assert days("0 0 0 ? * L", utc(2024, 1, 1), 2) == ["2024-01-06 Sat", "2024-01-13 Sat"]


def test_year_field() -> None:
    assert [f.year for f in fires("0 0 0 1 1 ? 2030/5", utc(2024, 1, 1), 3)] == [2030, 2035, 2040]
    assert [f.year for f in fires("0 0 0 1 1 ? 2025,2027-2028", utc(2024, 1, 1), 4)] == [
        2025,
        2027,
        2028,
    ]
    assert fires("0 0 0 1 1 ? *", utc(2024, 1, 1), 1) == [utc(2025, 1, 1)]


def test_whitespace_and_case_do_not_matter() -> None:
    assert parse_cron("  0  0 12\t? *  fri#3 ").next_fire(utc(2024, 1, 1)) == utc(2024, 1, 19, 12)
    assert parse_cron("0 0 0 lw * ?").next_fire(utc(2024, 3, 1)) == utc(2024, 3, 29)


# Daylight saving. An hour written as a single value (`2`, `1,13`) holds pinned wall-clock
# times: one skipped by a spring-forward gap fires once, when the gap ends; one repeated by a
# fall-back fires once, at its first occurrence. An hour written as `*`, a range or a step is
# paced: its times fire whenever the clock shows them, so a skipped one does not fire and a
# repeated one fires at both occurrences, and a job repeating within the hour keeps its pace.

SYDNEY = ZoneInfo("Australia/Sydney")
SANTIAGO = ZoneInfo("America/Santiago")  # changes at midnight
TEHRAN = ZoneInfo("Asia/Tehran")  # changed at midnight until 2022


def transitions(zone: ZoneInfo, year: int) -> list[tuple[datetime, timedelta]]:
    """Each instant of `year` the zone's UTC offset changes, and by how much (found by scanning)."""

    def offset(instant: datetime) -> timedelta:
        value = instant.astimezone(zone).utcoffset()
        assert value is not None
        return value

    found: list[tuple[datetime, timedelta]] = []
    probe = utc(year, 1, 1)
    while probe.year == year:
        step = probe + timedelta(hours=1)
        if offset(step) != offset(probe):
            low, high = probe, step
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                low, high = (low, middle) if offset(middle) == offset(step) else (middle, high)
            found.append((high, offset(step) - offset(probe)))
        probe = step
    return found


def test_transitions_of_the_zones_used() -> None:
    assert transitions(NEW_YORK, 2024) == [
        (utc(2024, 3, 10, 7), timedelta(hours=1)),
        (utc(2024, 11, 3, 6), timedelta(hours=-1)),
    ]
    assert transitions(LORD_HOWE, 2024) == [
        (utc(2024, 4, 6, 15), timedelta(minutes=-30)),
        (utc(2024, 10, 5, 15, 30), timedelta(minutes=30)),
    ]
    assert transitions(SANTIAGO, 2024) == [
        (utc(2024, 4, 7, 3), timedelta(hours=-1)),
        (utc(2024, 9, 8, 4), timedelta(hours=1)),
    ]
    assert transitions(TEHRAN, 2021) == [
        (utc(2021, 3, 21, 20, 30), timedelta(hours=1)),
        (utc(2021, 9, 21, 19, 30), timedelta(hours=-1)),
    ]


def test_pinned_time_in_a_spring_forward_gap_fires_once_when_the_gap_ends() -> None:
    # New York, 2024-03-10 02:00 EST becomes 03:00 EDT.
    assert local_walls("0 30 2 * * ?", utc(2024, 3, 9), 3, NEW_YORK) == [
        "2024-03-09 02:30:00-0500",
        "2024-03-10 03:00:00-0400",
        "2024-03-11 02:30:00-0400",
    ]
    assert local_walls("0 2 * * *", utc(2024, 3, 10), 2, NEW_YORK) == [
        "2024-03-10 03:00:00-0400",
        "2024-03-11 02:00:00-0400",
    ]
    # Berlin, 2026-03-29 02:00 CET becomes 03:00 CEST.
    assert local_walls("0 15 2 * * ?", utc(2026, 3, 28), 3, BERLIN) == [
        "2026-03-28 02:15:00+0100",
        "2026-03-29 03:00:00+0200",
        "2026-03-30 02:15:00+0200",
    ]
    # Santiago, 2024-09-08 00:00 -04 becomes 01:00 -03: midnight itself is skipped.
    assert local_walls("0 0 * * *", utc(2024, 9, 7, 12), 3, SANTIAGO) == [
        "2024-09-08 01:00:00-0300",
        "2024-09-09 00:00:00-0300",
        "2024-09-10 00:00:00-0300",
    ]
    # Lord Howe, 2024-10-06 02:00 (+10:30) becomes 02:30 (+11).
    assert local_walls("0 15 2 * * ?", utc(2024, 10, 5), 2, LORD_HOWE) == [
        "2024-10-06 02:30:00+1100",
        "2024-10-07 02:15:00+1100",
    ]


def test_pinned_time_repeated_by_a_fall_back_fires_once() -> None:
    # New York, 2024-11-03 02:00 EDT becomes 01:00 EST: 01:00-01:59 happen twice.
    assert local_walls("0 30 1 * * ?", utc(2024, 11, 2), 3, NEW_YORK) == [
        "2024-11-02 01:30:00-0400",
        "2024-11-03 01:30:00-0400",
        "2024-11-04 01:30:00-0500",
    ]
    assert local_walls("59 59 1 * * ?", utc(2024, 11, 3), 2, NEW_YORK) == [
        "2024-11-03 01:59:59-0400",
        "2024-11-04 01:59:59-0500",
    ]
    # Berlin, 2026-10-25 03:00 CEST becomes 02:00 CET.
    assert local_walls("0 30 2 * * ?", utc(2026, 10, 24), 3, BERLIN) == [
        "2026-10-24 02:30:00+0200",
        "2026-10-25 02:30:00+0200",
        "2026-10-26 02:30:00+0100",
    ]
    # Santiago, 2024-04-07 00:00 -03 becomes 2024-04-06 23:00 -04: 23:00-23:59 of the 6th twice.
    assert local_walls("0 30 23 * * ?", utc(2024, 4, 5, 12), 3, SANTIAGO) == [
        "2024-04-05 23:30:00-0300",
        "2024-04-06 23:30:00-0300",
        "2024-04-07 23:30:00-0400",
    ]
    # Lord Howe, 2024-04-07 02:00 (+11) becomes 01:30 (+10:30).
    assert local_walls("0 45 1 * * ?", utc(2024, 4, 6), 2, LORD_HOWE) == [
        "2024-04-07 01:45:00+1100",
        "2024-04-08 01:45:00+1030",
    ]


def test_a_pinned_hour_with_frequent_minutes_runs_its_wall_times_once() -> None:
    after = utc(2026, 10, 24, 23)
    assert local_walls("0 */15 2 * * ?", after, 5, BERLIN) == [
        "2026-10-25 02:00:00+0200",
        "2026-10-25 02:15:00+0200",
        "2026-10-25 02:30:00+0200",
        "2026-10-25 02:45:00+0200",
        "2026-10-26 02:00:00+0100",
    ]
    # Every time of the skipped hour collapses into one fire when the gap ends.
    assert local_walls("0 */15 2 * * ?", utc(2026, 3, 28, 23), 2, BERLIN) == [
        "2026-03-29 03:00:00+0200",
        "2026-03-30 02:00:00+0200",
    ]


def test_frequent_jobs_keep_their_pace_through_a_fall_back() -> None:
    # The two cases that lost an hour when every repeated time fired once only.
    assert local_walls("0 */20 * * * ?", utc(2026, 10, 24, 23, 30), 8, BERLIN) == [
        "2026-10-25 01:40:00+0200",
        "2026-10-25 02:00:00+0200",
        "2026-10-25 02:20:00+0200",
        "2026-10-25 02:40:00+0200",
        "2026-10-25 02:00:00+0100",
        "2026-10-25 02:20:00+0100",
        "2026-10-25 02:40:00+0100",
        "2026-10-25 03:00:00+0100",
    ]
    five = fires("*/5 * * * *", utc(2024, 11, 3, 5), 30, "America/New_York")
    assert {later - earlier for earlier, later in pairwise(five)} == {timedelta(minutes=5)}
    assert local_walls("0 0 * * * ?", utc(2024, 11, 3, 3, 30), 4, NEW_YORK) == [
        "2024-11-03 00:00:00-0400",
        "2024-11-03 01:00:00-0400",
        "2024-11-03 01:00:00-0500",
        "2024-11-03 02:00:00-0500",
    ]


def test_frequent_jobs_keep_their_pace_through_a_spring_forward() -> None:
    assert local_walls("* * * * *", utc(2024, 3, 10, 6, 57, 30), 4, NEW_YORK) == [
        "2024-03-10 01:58:00-0500",
        "2024-03-10 01:59:00-0500",
        "2024-03-10 03:00:00-0400",
        "2024-03-10 03:01:00-0400",
    ]
    assert local_walls("0 0 * * * ?", utc(2024, 3, 10, 5, 30), 3, NEW_YORK) == [
        "2024-03-10 01:00:00-0500",
        "2024-03-10 03:00:00-0400",
        "2024-03-10 04:00:00-0400",
    ]
    # No extra fire at the end of the gap: 02:10, 02:30 and 02:50 do not exist.
    assert local_walls("0 10/20 * * * ?", utc(2026, 3, 29, 0, 30), 3, BERLIN) == [
        "2026-03-29 01:50:00+0100",
        "2026-03-29 03:10:00+0200",
        "2026-03-29 03:30:00+0200",
    ]


def test_next_fire_from_inside_a_repeated_hour() -> None:
    # New York 2024-11-03: 05:00-06:00 UTC is 01:xx EDT, 06:00-07:00 UTC is 01:xx EST.
    every_minute = parse_cron("0 * * * * ?", "America/New_York")
    assert every_minute.next_fire(utc(2024, 11, 3, 5, 59, 30)) == utc(2024, 11, 3, 6, 0)
    assert every_minute.next_fire(utc(2024, 11, 3, 6, 30, 15)) == utc(2024, 11, 3, 6, 31)
    assert every_minute.next_fire(utc(2024, 11, 3, 6, 59, 59, 999999)) == utc(2024, 11, 3, 7, 0)
    half_past = parse_cron("0 30 * * * ?", "America/New_York")
    assert half_past.next_fire(utc(2024, 11, 3, 5, 45)) == utc(2024, 11, 3, 6, 30)
    # A pinned hour's second pass fires nothing: the next fire is the next day's.
    pinned = parse_cron("0 * 1 * * ?", "America/New_York")
    assert pinned.next_fire(utc(2024, 11, 3, 5, 59, 30)) == utc(2024, 11, 4, 6, 0)
    assert pinned.next_fire(utc(2024, 11, 3, 6, 30)) == utc(2024, 11, 4, 6, 0)


def day_walls(expression: str, zone: ZoneInfo, day: datetime) -> list[str]:
    """The local fires of one local day, as HH:MM and the UTC offset."""
    start = day.replace(tzinfo=zone)
    return [
        f.astimezone(zone).strftime("%H:%M%z")
        for f in parse_cron(expression, str(zone)).fires_between(
            start - timedelta(seconds=1), start + timedelta(days=1) - timedelta(seconds=1)
        )
    ]


@pytest.mark.parametrize(
    ("hours", "fall_back", "spring_forward"),
    [
        # a single value: pinned
        ("2", "02:30+0200", "03:00+0200"),
        # a list of values: each pinned
        ("1,2,3", "01:30+0200 02:30+0200 03:30+0100", "01:30+0100 03:00+0200 03:30+0200"),
        # a range: paced
        ("1-3", "01:30+0200 02:30+0200 02:30+0100 03:30+0100", "01:30+0100 03:30+0200"),
        # steps: paced
        ("*/2", "00:30+0200 02:30+0200 02:30+0100 04:30+0100", "00:30+0100 04:30+0200"),
        ("2-4/2", "02:30+0200 02:30+0100 04:30+0100", "04:30+0200"),
        # the wildcard: paced
        (
            "*",
            "00:30+0200 01:30+0200 02:30+0200 02:30+0100 03:30+0100 04:30+0100",
            "00:30+0100 01:30+0100 03:30+0200 04:30+0200",
        ),
        # a mixed list: 1 and 2 pinned, 3 paced
        ("1,2,3-3", "01:30+0200 02:30+0200 03:30+0100", "01:30+0100 03:00+0200 03:30+0200"),
        # a mixed list: 1 pinned, 2 and 3 paced
        ("1,2-3", "01:30+0200 02:30+0200 02:30+0100 03:30+0100", "01:30+0100 03:30+0200"),
    ],
)
def test_each_shape_of_the_hour_field_at_both_berlin_changes(
    hours: str, fall_back: str, spring_forward: str
) -> None:
    # 2026-10-25: 02:00-02:59 twice; 2026-03-29: 02:00-02:59 skipped. Hours 0-4 only.
    expression = f"0 30 {hours} * * ?"
    early = [w for w in day_walls(expression, BERLIN, datetime(2026, 10, 25)) if w < "05"]
    assert early == fall_back.split()
    early = [w for w in day_walls(expression, BERLIN, datetime(2026, 3, 29)) if w < "05"]
    assert early == spring_forward.split()


ZONE_YEARS = [
    pytest.param(zone, year, id=f"{zone.key}-{year}")
    for zone, year in [
        (NEW_YORK, 2024),
        (BERLIN, 2026),
        (SYDNEY, 2024),
        (SANTIAGO, 2024),
        (TEHRAN, 2021),
        (LORD_HOWE, 2024),
    ]
]
FREQUENT = [
    ("*/10 * * * * ?", timedelta(seconds=10)),
    ("* * * * *", timedelta(minutes=1)),
    ("*/5 * * * *", timedelta(minutes=5)),
    ("0 0/15 * * * ?", timedelta(minutes=15)),
    ("0 */20 * * * ?", timedelta(minutes=20)),
    ("15 45 * * * ?", timedelta(hours=1)),
    ("0 * * * *", timedelta(hours=1)),
]


@pytest.mark.parametrize(("zone", "year"), ZONE_YEARS)
@pytest.mark.parametrize(("expression", "period"), FREQUENT, ids=[e for e, _ in FREQUENT])
def test_frequent_jobs_keep_their_period_at_every_change(
    zone: ZoneInfo, year: int, expression: str, period: timedelta
) -> None:
    schedule = parse_cron(expression, str(zone))
    changes = transitions(zone, year)
    assert len(changes) == 2
    for instant, shift in changes:
        window = schedule.fires_between(instant - timedelta(hours=3), instant + timedelta(hours=3))
        intervals = [later - earlier for earlier, later in pairwise(window)]
        assert len(intervals) >= 4
        if abs(shift) % period == timedelta(0):
            assert set(intervals) == {period}, (instant, shift)
        else:
            # Lord Howe moves by 30 minutes: the interval next to the change is longer or
            # shorter by at most the change; every other one is the period.
            odd = [interval for interval in intervals if interval != period]
            assert len(odd) == 1, (instant, shift, odd)
            assert abs(odd[0] - period) <= abs(shift)


def test_hourly_and_20_minute_jobs_at_the_half_hour_changes_of_lord_howe() -> None:
    # 2024-04-07 02:00 (+11) becomes 01:30 (+10:30): 01:30-01:59 twice.
    assert local_walls("0 0 * * * ?", utc(2024, 4, 6, 13, 30), 2, LORD_HOWE) == [
        "2024-04-07 01:00:00+1100",
        "2024-04-07 02:00:00+1030",  # 90 minutes later: the clock showed 01:30 twice
    ]
    assert local_walls("0 45 * * * ?", utc(2024, 4, 6, 14, 30), 3, LORD_HOWE) == [
        "2024-04-07 01:45:00+1100",
        "2024-04-07 01:45:00+1030",  # 30 minutes later: the clock showed 01:45 again
        "2024-04-07 02:45:00+1030",
    ]
    assert local_walls("0 */20 * * * ?", utc(2024, 4, 6, 14, 30), 3, LORD_HOWE) == [
        "2024-04-07 01:40:00+1100",
        "2024-04-07 01:40:00+1030",
        "2024-04-07 02:00:00+1030",
    ]
    # 2024-10-06 02:00 (+10:30) becomes 02:30 (+11): 02:00-02:29 skipped.
    assert local_walls("0 0 * * * ?", utc(2024, 10, 5, 14), 2, LORD_HOWE) == [
        "2024-10-06 01:00:00+1030",
        "2024-10-06 03:00:00+1100",
    ]
    assert local_walls("0 */20 * * * ?", utc(2024, 10, 5, 15), 3, LORD_HOWE) == [
        "2024-10-06 01:40:00+1030",
        "2024-10-06 02:40:00+1100",
        "2024-10-06 03:00:00+1100",
    ]


@pytest.mark.parametrize(("zone", "year"), ZONE_YEARS)
def test_a_pinned_daily_cron_fires_exactly_once_every_local_day_through_a_year(
    zone: ZoneInfo, year: int
) -> None:
    for hour in range(24):
        # Minutes spread so that some fall in Lord Howe's repeated and skipped half hours.
        expression = f"0 {(hour * 23 + 15) % 60} {hour} * * ?"
        schedule = parse_cron(expression, str(zone))
        local_days = [
            f.astimezone(zone).date()
            for f in schedule.fires_between(utc(year, 1, 1), utc(year + 1, 1, 1), limit=400)
        ]
        consecutive = [local_days[0] + timedelta(days=n) for n in range(len(local_days))]
        assert local_days == consecutive, expression
        assert len(local_days) in (365, 366), expression


# croniter as the oracle. Generated expressions stay inside the features where croniter and
# Quartz agree: no wrapping or equal-bound ranges, W on days 1-28, one L/W/# item per field.


Pair = tuple[str, str]  # (our text, croniter text)


def _value(low: int, high: int, shift: int, names: tuple[str, ...]) -> st.SearchStrategy[Pair]:
    def render(value: int, by_name: bool) -> Pair:
        ours = names[value - low] if by_name and names else str(value)
        return ours, str(value - shift)

    return st.builds(render, st.integers(low, high), st.booleans())


def _item(
    low: int, high: int, shift: int = 0, names: tuple[str, ...] = (), top: int | None = None
) -> st.SearchStrategy[Pair]:
    top = high if top is None else top
    span = top - low + 1
    value = _value(low, high, shift, names)

    @st.composite
    def ranged(draw: st.DrawFn) -> Pair:
        first, second = sorted(
            draw(st.lists(st.integers(low, top), min_size=2, max_size=2, unique=True))
        )
        step = draw(st.none() | st.integers(1, span - 1))
        suffix = "" if step is None else f"/{step}"
        return f"{first}-{second}{suffix}", f"{first - shift}-{second - shift}{suffix}"

    @st.composite
    def stepped(draw: st.DrawFn) -> Pair:
        start = draw(st.none() | st.integers(low, top))
        step = draw(st.integers(1, span - 1))
        if start is None:
            return f"*/{step}", f"*/{step}"
        return f"{start}/{step}", f"{start - shift}/{step}"

    return value | ranged() | stepped()


def _field(
    low: int, high: int, shift: int = 0, names: tuple[str, ...] = (), top: int | None = None
) -> st.SearchStrategy[Pair]:
    def join(items: list[Pair]) -> Pair:
        return ",".join(i[0] for i in items), ",".join(i[1] for i in items)

    listed = st.lists(_item(low, high, shift, names, top), min_size=1, max_size=3).map(join)
    return st.just(("*", "*")) | listed


MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
WEEK = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


@st.composite
def quartz_expressions(draw: st.DrawFn, daily: bool = False) -> Pair:
    """A Quartz expression and the same schedule for croniter (seconds first, SUN=0).

    `daily` fixes the time of day so that consecutive fires land on different days and the
    day fields are what gets compared.
    """
    if daily:
        second, minute, hour = (
            draw(_value(0, 59, 0, ())),
            draw(_value(0, 59, 0, ())),
            draw(_value(0, 23, 0, ())),
        )
    else:
        second, minute, hour = draw(_field(0, 59)), draw(_field(0, 59)), draw(_field(0, 23))
    month = draw(_field(1, 12, names=MONTHS))
    weekday = st.integers(1, 7)
    if draw(st.booleans()):
        special = st.just(("L", "L")) | st.integers(1, 28).map(lambda d: (f"{d}W", f"{d}W"))
        dom, dow = draw(_field(1, 31) | special), ("?", "*")
    else:
        special = weekday.map(lambda d: (f"{d}L", f"L{d - 1}")) | st.builds(
            lambda d, n: (f"{d}#{n}", f"{d - 1}#{n}"), weekday, st.integers(1, 5)
        )
        dom, dow = ("?", "*"), draw(_field(1, 7, shift=1, names=WEEK) | special)
    fields = [second, minute, hour, dom, month, dow]
    if draw(st.booleans()):
        fields.append(draw(_field(2000, 2070)))
    return " ".join(f[0] for f in fields), " ".join(f[1] for f in fields)


@st.composite
def unix_expressions(draw: st.DrawFn) -> Pair:
    """A 5-field expression (croniter reads the same text)."""
    fields = [
        draw(_field(0, 59)),
        draw(_field(0, 23)),
        draw(_field(1, 31)),
        draw(_field(1, 12, names=MONTHS)),
        draw(_field(0, 7, names=(*WEEK, "SUN"), top=6)),
    ]
    text = " ".join(f[0] for f in fields)
    dom, dow = fields[2][0], fields[4][0]
    # A day field spelt other than '*' is restricted here (it takes part in the OR rule) even if
    # it covers every value; croniter widens such a field to '*' when the other one contains a
    # '*'. Spellings of a full field are not what this comparison is about.
    every_day = croniter.expand(f"* * {dom} * 1")[0][2]
    every_weekday = croniter.expand(f"* * 1 * {dow}")[0][4]
    assume(dom == "*" or len(every_day) < 31)
    assume(dow == "*" or len(every_weekday) < 7)
    return text, text


def oracle_fires(text: str, start: datetime, count: int) -> list[datetime]:
    walker = croniter(text, start, second_at_beginning=True, max_years_between_matches=200)
    result: list[datetime] = []
    for _ in range(count):
        try:
            result.append(walker.get_next(datetime).astimezone(UTC))
        except CroniterBadDateError:
            break
    return result


def offsets_steady(zone: ZoneInfo, start: datetime, days: int) -> bool:
    """No UTC offset change within `days` after `start` nor 2 days around it."""
    probes = (start - timedelta(days=2), start, start + timedelta(days=days))
    return len({p.astimezone(zone).utcoffset() for p in probes}) == 1


STARTS = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2060, 12, 31))
ZONES = st.sampled_from(
    ["UTC", "Asia/Shanghai", "America/New_York", "Europe/Berlin", "Australia/Sydney"]
)
WINDOW_DAYS = 50
ORACLE = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much]
)


def compare_with_oracle(ours: str, theirs: str, zone_name: str, naive_start: datetime) -> None:
    assume(validate_cron(ours) is None)
    zone = ZoneInfo(zone_name)
    start = naive_start.replace(tzinfo=UTC).astimezone(zone)
    assume(offsets_steady(zone, start, WINDOW_DAYS + 2))
    horizon = start + timedelta(days=WINDOW_DAYS)
    expected = [f for f in oracle_fires(theirs, start, 6) if f <= horizon]
    got = [f for f in fires(ours, start, 6, zone_name) if f <= horizon]
    assert got == expected


@ORACLE
@given(quartz_expressions() | quartz_expressions(daily=True), ZONES, STARTS)
def test_quartz_fires_agree_with_croniter(pair: Pair, zone: str, start: datetime) -> None:
    compare_with_oracle(pair[0], pair[1], zone, start)


@ORACLE
@given(unix_expressions(), ZONES, STARTS)
def test_unix_fires_agree_with_croniter(pair: Pair, zone: str, start: datetime) -> None:
    compare_with_oracle(pair[0], pair[1], zone, start)


@ORACLE
@given(quartz_expressions(daily=True), STARTS)
def test_day_rules_agree_with_croniter_over_years_in_utc(pair: Pair, start: datetime) -> None:
    assume(validate_cron(pair[0]) is None)
    aware = start.replace(tzinfo=UTC)
    assert fires(pair[0], aware, 8) == oracle_fires(pair[1], aware, 8)


# The DST rule against croniter's naive wall-clock sequence: every wall time it lists in a
# pinned hour fires at the first instant at which the zone's clock shows that time or a later
# one; every wall time in a paced hour fires at each instant the clock shows it.

TRANSITIONS = [
    (NEW_YORK, utc(2024, 3, 10, 7)),
    (NEW_YORK, utc(2024, 11, 3, 6)),
    (BERLIN, utc(2024, 3, 31, 1)),
    (BERLIN, utc(2024, 10, 27, 1)),
    (SYDNEY, utc(2024, 4, 6, 16)),
    (SYDNEY, utc(2024, 10, 5, 16)),
    (SANTIAGO, utc(2024, 4, 7, 3)),
    (SANTIAGO, utc(2024, 9, 8, 4)),
    (TEHRAN, utc(2021, 3, 21, 20, 30)),
    (TEHRAN, utc(2021, 9, 21, 19, 30)),
    (LORD_HOWE, utc(2024, 10, 5, 15, 30)),
    (LORD_HOWE, utc(2024, 4, 6, 15)),
]


def test_transition_table_is_right() -> None:
    for zone, instant in TRANSITIONS:
        before = (instant - timedelta(seconds=1)).astimezone(zone).utcoffset()
        assert before != instant.astimezone(zone).utcoffset(), (zone, instant)


def first_instant_showing(zone: ZoneInfo, wall: datetime) -> datetime:
    """Independent of the engine: scan minute by minute for the clock to reach `wall`."""
    earliest = min(wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)).replace(
        second=0
    )
    instant = earliest
    while instant.astimezone(zone).replace(tzinfo=None) < wall.replace(second=0):
        instant += timedelta(minutes=1)
    if instant.astimezone(zone).replace(tzinfo=None) == wall.replace(second=0):
        return instant + timedelta(seconds=wall.second)
    return instant


def instants_showing(zone: ZoneInfo, wall: datetime) -> list[datetime]:
    """Every instant at which the zone's clock shows `wall`: none, one, or two in an overlap."""
    candidates = {wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)}
    return sorted(c for c in candidates if c.astimezone(zone).replace(tzinfo=None) == wall)


ALL_HOURS = frozenset(range(24))
# An hour field and the hours it paces (written as '*', a range or a step).
HOUR_FIELDS = [
    ("*", ALL_HOURS),
    ("0-4", frozenset(range(5))),
    ("1", frozenset()),
    ("2", frozenset()),
    ("3", frozenset()),
    ("23", frozenset()),
    ("0", frozenset()),
    ("1,2", frozenset()),
    ("*/2", ALL_HOURS),
    ("2/3", ALL_HOURS),
    ("0-23/5", ALL_HOURS),
    ("1,2-3", frozenset({2, 3})),
    ("0,22-23", frozenset({22, 23})),
]


@st.composite
def near_transition_expressions(draw: st.DrawFn) -> tuple[str, str, frozenset[int]]:
    second = draw(st.sampled_from(["0", "30", "0,45", "10/25"]))
    minute = draw(_field(0, 59))
    hour, paced = draw(st.sampled_from(HOUR_FIELDS))
    return f"{second} {minute[0]} {hour} * * ?", f"{second} {minute[1]} {hour} * * *", paced


@settings(max_examples=300, deadline=None)
@given(
    near_transition_expressions(),
    st.sampled_from(TRANSITIONS),
    st.integers(-3 * 3600, 3 * 3600),
)
def test_dst_rule_against_naive_wall_clock(
    case: tuple[str, str, frozenset[int]], transition: tuple[ZoneInfo, datetime], shift: int
) -> None:
    ours, theirs, paced = case
    zone, instant = transition
    after = instant + timedelta(seconds=shift)
    local = after.astimezone(zone)
    offsets = [(instant + timedelta(days=d)).astimezone(zone).utcoffset() for d in (-1, 1)]
    largest = max(o for o in offsets if o is not None)
    walker = croniter(
        theirs, local.replace(tzinfo=None, fold=0) - timedelta(hours=1), second_at_beginning=True
    )
    expected: set[datetime] = set()
    while True:
        wall = walker.get_next(datetime)
        # No instant showing this wall time or a later one comes before the fifth fire found.
        if len(expected) >= 5 and wall - largest > sorted(expected)[4].replace(tzinfo=None):
            break
        if wall.hour in paced:
            instants = instants_showing(zone, wall)
        else:
            instants = [first_instant_showing(zone, wall)]
        expected.update(i for i in instants if i > after)
    assert fires(ours, after, 5, str(zone)) == sorted(expected)[:5]
