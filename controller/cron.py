"""Cron engine: parses Quartz (6/7-field) and standard (5-field) cron expressions, finds fires.

Pure (no I/O). The resource validators call `validate_cron` / `validate_time_zone`; the transient
producer and the daemon executor's timer build a `CronSchedule` and ask it for `next_fire`.
Fire times are wall-clock times in an IANA time zone; docs/cron.md states the syntax, how the
dialect is detected and the daylight-saving rule implemented by `CronSchedule.next_fire`.

Longer than the other modules (~720 lines) for a reason: parsing and the field-skipping
search share one representation of the seven fields, and the search is tuned as a whole
(bench/cron_next_fire.py); split apart, each half would need the other's internals.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "CronError",
    "CronSchedule",
    "parse_cron",
    "validate_cron",
    "validate_time_zone",
]

Dialect = Literal["quartz", "unix"]

MIN_YEAR = 1970
MAX_YEAR = 2099
# The Gregorian calendar repeats every 400 years: an expression that matches no date in
# 400 consecutive years matches none ever.
_CALENDAR_CYCLE_YEARS = 400
_ONE_SECOND = timedelta(seconds=1)

_MONTH_NAMES = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
        start=1,
    )
}
_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_QUARTZ_DAY_NAMES = {name: number for number, name in enumerate(_DAY_NAMES, start=1)}
_UNIX_DAY_NAMES = {name: number for number, name in enumerate(_DAY_NAMES)}

_QUARTZ_FORM = "second minute hour day-of-month month day-of-week [year]"
_UNIX_FORM = "minute hour day-of-month month day-of-week"


class CronError(ValueError):
    """A cron expression or time zone that cannot be used; the message says what and how to fix."""


@dataclass(frozen=True)
class _Field:
    """The value domain of one cron field in one dialect."""

    name: str
    low: int
    high: int
    names: Mapping[str, int] = field(default_factory=dict)
    # Ranges such as FRI-MON or 22-2 wrap around the cycle (Quartz); never for years.
    wraps: bool = True
    # `*` and `start/step` run up to here (unix day-of-week: 6, although 7 is accepted as SUN).
    star_high: int | None = None
    hint: str = ""

    @property
    def top(self) -> int:
        return self.high if self.star_high is None else self.star_high

    @property
    def span(self) -> int:
        return self.top - self.low + 1


_SECOND = _Field("second", 0, 59)
_MINUTE = _Field("minute", 0, 59)
_HOUR = _Field("hour", 0, 23)
_DAY_OF_MONTH = _Field("day-of-month", 1, 31)
_MONTH = _Field("month", 1, 12, _MONTH_NAMES, hint=" (or JAN-DEC)")
_QUARTZ_DAY_OF_WEEK = _Field(
    "day-of-week", 1, 7, _QUARTZ_DAY_NAMES, hint=" (Quartz counts 1=SUN .. 7=SAT; or SUN-SAT)"
)
_YEAR = _Field("year", MIN_YEAR, MAX_YEAR, wraps=False)
_UNIX_MINUTE = _Field("minute", 0, 59, wraps=False)
_UNIX_HOUR = _Field("hour", 0, 23, wraps=False)
_UNIX_DAY_OF_MONTH = _Field("day-of-month", 1, 31, wraps=False)
_UNIX_MONTH = _Field("month", 1, 12, _MONTH_NAMES, wraps=False, hint=" (or JAN-DEC)")
_UNIX_DAY_OF_WEEK = _Field(
    "day-of-week",
    0,
    7,
    _UNIX_DAY_NAMES,
    wraps=False,
    star_high=6,
    hint=" (0 and 7 = SUN; or SUN-SAT)",
)

_ORDINALS = ("1st", "2nd", "3rd", "4th", "5th", "6th", "7th")


@dataclass(frozen=True)
class _Where:
    """Error context: which field of which expression."""

    expression: str
    field: _Field
    position: int

    def error(self, problem: str) -> CronError:
        return CronError(
            f"cron field '{self.field.name}' ({_ORDINALS[self.position]}): {problem} "
            f"in '{self.expression}'"
        )


# Day terms. Each yields a bit mask of the matching days (bit d = day d) of one month, given
# the month's length and the weekday of its 1st (0=SUN .. 6=SAT).


@dataclass(frozen=True)
class _DaySet:
    mask: int

    def days(self, length: int, first: int) -> int:
        return self.mask


@dataclass(frozen=True)
class _LastDay:
    """`L` (offset 0) or `L-n` in day-of-month."""

    offset: int

    def days(self, length: int, first: int) -> int:
        day = length - self.offset
        return 1 << day if day >= 1 else 0


@dataclass(frozen=True)
class _NearestWeekday:
    """`15W` (day 15), `LW` and `L-3W` (day None, counted back from the last day)."""

    day: int | None
    last_offset: int = 0

    def days(self, length: int, first: int) -> int:
        target = length - self.last_offset if self.day is None else self.day
        if not 1 <= target <= length:
            return 0
        weekday = (first + target - 1) % 7
        # Move to the weekday next to it without leaving the month (Quartz's rule).
        if weekday == 6:
            target = target - 1 if target > 1 else target + 2
        elif weekday == 0:
            target = target + 1 if target < length else target - 2
        return 1 << target


@dataclass(frozen=True)
class _Weekdays:
    """A set of weekdays; `by_first[w]` is its day mask for a month whose 1st is weekday w."""

    by_first: tuple[int, ...]

    @classmethod
    def of(cls, weekdays: int) -> _Weekdays:
        return cls(
            tuple(
                sum(1 << day for day in range(1, 32) if weekdays >> ((first + day - 1) % 7) & 1)
                for first in range(7)
            )
        )

    def days(self, length: int, first: int) -> int:
        return self.by_first[first]


@dataclass(frozen=True)
class _LastWeekday:
    """`5L` / `THUL`: the last given weekday of the month."""

    weekday: int

    def days(self, length: int, first: int) -> int:
        last = (first + length - 1) % 7
        return 1 << (length - (last - self.weekday) % 7)


@dataclass(frozen=True)
class _NthWeekday:
    """`6#3`: the nth given weekday of the month (no fire in months without one)."""

    weekday: int
    nth: int

    def days(self, length: int, first: int) -> int:
        day = 1 + (self.weekday - first) % 7 + 7 * (self.nth - 1)
        return 1 << day if day <= length else 0


_DayTerm: TypeAlias = _DaySet | _LastDay | _NearestWeekday | _Weekdays | _LastWeekday | _NthWeekday


@dataclass(frozen=True)
class _Plan:
    """A parsed expression: one bit mask per time field plus the day rule."""

    dialect: Dialect
    seconds: int
    minutes: int
    hours: int
    # The hours written as `*`, a range or a step: the job runs through them at its pace, so
    # a daylight-saving change is crossed by elapsed time (docs/cron.md); the other hours are
    # pinned wall-clock times.
    paced_hours: int
    months: int
    years: int | None  # bit (year - MIN_YEAR); None = every year
    day_of_month: _DayTerm | None  # None = every day
    day_of_week: _DayTerm | None
    # Standard cron: when both day fields are restricted a day matching either one fires.
    either_day: bool

    def day_mask(self, year: int, month: int) -> int:
        monday_first, length = calendar.monthrange(year, month)
        first = (monday_first + 1) % 7
        month_days = (1 << (length + 1)) - 2
        by_month = (
            month_days if self.day_of_month is None else self.day_of_month.days(length, first)
        )
        by_week = month_days if self.day_of_week is None else self.day_of_week.days(length, first)
        if self.either_day:
            return (by_month | by_week) & month_days
        return by_month & by_week & month_days

    def next_wall(self, start: datetime, horizon: int) -> datetime | None:
        """The first matching wall time at or after `start` (naive, whole seconds)."""
        year, month, day = start.year, start.month, start.day
        hour, minute, second = start.hour, start.minute, start.second
        mask_month, days = (0, 0), 0
        while year <= horizon:
            if self.years is not None:
                found = _next_bit(self.years, year - MIN_YEAR)
                if found < 0:
                    return None
                if found + MIN_YEAR != year:
                    year, month, day, hour, minute, second = found + MIN_YEAR, 1, 1, 0, 0, 0
                    continue
            found = _next_bit(self.months, month)
            if found < 0:
                year, month, day, hour, minute, second = year + 1, 1, 1, 0, 0, 0
                continue
            if found != month:
                month, day, hour, minute, second = found, 1, 0, 0, 0
            if (year, month) != mask_month:
                mask_month, days = (year, month), self.day_mask(year, month)
            found = _next_bit(days, day)
            if found < 0:
                month, day, hour, minute, second = month + 1, 1, 0, 0, 0
                continue
            if found != day:
                day, hour, minute, second = found, 0, 0, 0
            found = _next_bit(self.hours, hour)
            if found < 0:
                day, hour, minute, second = day + 1, 0, 0, 0
                continue
            if found != hour:
                hour, minute, second = found, 0, 0
            found = _next_bit(self.minutes, minute)
            if found < 0:
                hour, minute, second = hour + 1, 0, 0
                continue
            if found != minute:
                minute, second = found, 0
            found = _next_bit(self.seconds, second)
            if found < 0:
                minute, second = minute + 1, 0
                continue
            return datetime(year, month, day, hour, minute, found)
        return None


def _next_bit(mask: int, start: int) -> int:
    """The lowest set bit of `mask` at position >= start, or -1."""
    rest = mask >> start
    if not rest:
        return -1
    return start + (rest & -rest).bit_length() - 1


# Parsing


def _number(text: str, where: _Where) -> int:
    fld = where.field
    if text.upper() in fld.names:
        return fld.names[text.upper()]
    if not (text.isascii() and text.isdigit()):
        names = " or a name" if fld.names else ""
        raise where.error(f"'{text}' is not a number{names}; use {_allowed(fld)}")
    if len(text) > 4 or not fld.low <= int(text) <= fld.high:
        raise where.error(f"value {text} out of range {fld.low}-{fld.high}{fld.hint}")
    return int(text)


def _allowed(fld: _Field) -> str:
    return f"{fld.low}-{fld.high}{fld.hint}"


def _step(text: str, where: _Where) -> int:
    span = where.field.span
    if not (text.isascii() and text.isdigit()):
        raise where.error(f"step '{text}' is not a number; write e.g. '*/5'")
    if len(text) > 4 or not 1 <= int(text) < span:
        raise where.error(
            f"step {text} out of range 1-{span - 1} ({where.field.name} has {span} values)"
        )
    return int(text)


def _item_bits(item: str, where: _Where) -> int:
    """One list item (`*`, `5`, `1-5`, `*/15`, `0/15`, `10-50/10`, names) as a bit mask."""
    fld = where.field
    if not item:
        raise where.error("empty list item (two commas in a row, or a comma at an end)")
    base, slash, step_text = item.partition("/")
    step = _step(step_text, where) if slash else 1
    if base == "*":
        low, high = fld.low, fld.top
    elif "-" in base:
        low_text, _, high_text = base.partition("-")
        if not low_text or not high_text:
            raise where.error(f"'{base}' is not a range; write low-high, e.g. {_example(fld)}")
        low, high = _number(low_text, where), _number(high_text, where)
        if high < low and not fld.wraps:
            raise where.error(f"range {base} runs backwards; write it low-high")
    else:
        low = _number(base, where)
        high = max(low, fld.top) if slash else low
    if high < low:
        high += fld.span
    bits = 0
    for value in range(low, high + 1, step):
        bits |= 1 << (fld.low + (value - fld.low) % fld.span if value > fld.high else value)
    return bits


def _example(fld: _Field) -> str:
    return {"month": "JAN-MAR", "day-of-week": "MON-FRI"}.get(fld.name, f"{fld.low}-{fld.low + 5}")


def _bits(text: str, where: _Where) -> int:
    bits = 0
    for item in text.split(","):
        bits |= _item_bits(item, where)
    return bits


def _paced_bits(text: str, where: _Where) -> int:
    """The values a valid field covers with `*`, range or step items (not single values)."""
    bits = 0
    for item in text.split(","):
        if item == "*" or "-" in item or "/" in item:
            bits |= _item_bits(item, where)
    return bits


def _week_bits(bits: int, dialect: Dialect) -> int:
    """Day-of-week values as bits 0=SUN .. 6=SAT."""
    if dialect == "quartz":
        return bits >> 1
    return (bits | bits >> 7) & 0x7F


def _quartz_day_of_month(text: str, where: _Where) -> _DayTerm | None:
    if text == "*":
        return None
    upper = text.upper()
    if "L" not in upper and "W" not in upper:
        return _DaySet(_bits(text, where))
    if "," in text:
        raise where.error(f"'{text}': L and W cannot be combined with other days in a list")
    body, nearest = (upper[:-1], True) if upper.endswith("W") else (upper, False)
    if body == "L" or body.startswith("L-"):
        offset = 0
        if body != "L":
            digits = body[2:]
            if not (digits.isascii() and digits.isdigit()) or len(digits) > 2 or int(digits) > 30:
                raise where.error(
                    f"'{text}': the offset in L-n must be a number 0-30 (days before the last)"
                )
            offset = int(digits)
        return _NearestWeekday(None, offset) if nearest else _LastDay(offset)
    if nearest and body.isascii() and body.isdigit():
        return _NearestWeekday(_number(body, where))
    raise where.error(
        f"'{text}' is not a day-of-month; use days 1-31, L (last day), L-3 (3 days before it), "
        "15W (weekday nearest the 15th) or LW (last weekday)"
    )


def _quartz_day_of_week(text: str, where: _Where) -> _DayTerm | None:
    if text == "*":
        return None
    upper = text.upper()
    if "L" not in upper and "#" not in upper:
        return _Weekdays.of(_week_bits(_bits(text, where), "quartz"))
    if "," in text:
        raise where.error(f"'{text}': L and # cannot be combined with other days in a list")
    if upper == "L":
        return _Weekdays.of(1 << 6)
    if upper.endswith("L"):
        return _LastWeekday(_number(text[:-1], where) - 1)
    day, hash_sign, nth = text.partition("#")
    if hash_sign:
        if not (nth.isascii() and nth.isdigit()) or len(nth) > 1 or not 1 <= int(nth) <= 5:
            raise where.error(f"'{text}': the n in weekday#n must be 1-5 (e.g. 6#3 = 3rd FRI)")
        return _NthWeekday(_number(day, where) - 1, int(nth))
    raise where.error(
        f"'{text}' is not a day-of-week; use 1-7 or SUN-SAT, 6L (last FRI of the month) "
        "or 6#3 (3rd FRI)"
    )


def _quartz_plan(expression: str, fields: list[str]) -> _Plan:
    domains = (_SECOND, _MINUTE, _HOUR, _DAY_OF_MONTH, _MONTH, _QUARTZ_DAY_OF_WEEK, _YEAR)
    where = [_Where(expression, fld, position) for position, fld in enumerate(domains)]
    for position, text in enumerate(fields):
        if "?" in text and (text != "?" or position not in (3, 5)):
            raise where[position].error("'?' stands alone and only in day-of-month or day-of-week")
    dom_text, dow_text = fields[3], fields[5]
    plan = _Plan(
        dialect="quartz",
        seconds=_bits(fields[0], where[0]),
        minutes=_bits(fields[1], where[1]),
        hours=_bits(fields[2], where[2]),
        paced_hours=_paced_bits(fields[2], where[2]),
        months=_bits(fields[4], where[4]),
        years=(
            _bits(fields[6], where[6]) >> MIN_YEAR
            if len(fields) == 7 and fields[6] != "*"
            else None
        ),
        day_of_month=None if dom_text == "?" else _quartz_day_of_month(dom_text, where[3]),
        day_of_week=None if dow_text == "?" else _quartz_day_of_week(dow_text, where[5]),
        either_day=False,
    )
    if (dom_text == "?") == (dow_text == "?"):
        raise _day_fields_error(expression, fields)
    return plan


def _day_fields_error(expression: str, fields: list[str]) -> CronError:
    prefix = "cron fields 'day-of-month' (4th) and 'day-of-week' (6th)"
    if fields[3] == "?":
        return CronError(
            f"{prefix}: both are '?' in '{expression}'; a Quartz expression needs exactly one "
            "'?': write '*' or days in one of them"
        )
    if fields[5] == "*":
        fix = [*fields[:5], "?", *fields[6:]]
    elif fields[3] == "*":
        fix = [*fields[:3], "?", *fields[4:]]
    else:
        return CronError(
            f"{prefix}: both are set in '{expression}'; a Quartz expression needs '?' in exactly "
            "one of them, so write '?' in the one you do not mean"
        )
    return CronError(
        f"{prefix}: neither is '?' in '{expression}'; a Quartz expression needs '?' in exactly "
        f"one of them: write '{' '.join(fix)}'"
    )


def _unix_plan(expression: str, fields: list[str]) -> _Plan:
    domains = (_UNIX_MINUTE, _UNIX_HOUR, _UNIX_DAY_OF_MONTH, _UNIX_MONTH, _UNIX_DAY_OF_WEEK)
    quartz_only = ("?", "?", "?LW", "?", "?L#")
    for position, (text, fld, marks) in enumerate(zip(fields, domains, quartz_only, strict=True)):
        for mark in marks:
            if mark in text.upper():
                raise _Where(expression, fld, position).error(
                    f"'{mark}' belongs to the Quartz dialect; write the expression with 6 fields "
                    f"({_QUARTZ_FORM}) to use it"
                )
    bits = [
        _bits(text, _Where(expression, fld, position))
        for position, (text, fld) in enumerate(zip(fields, domains, strict=True))
    ]
    dom_text, dow_text = fields[2], fields[4]
    return _Plan(
        dialect="unix",
        seconds=1,
        minutes=bits[0],
        hours=bits[1],
        paced_hours=_paced_bits(fields[1], _Where(expression, domains[1], 1)),
        months=bits[3],
        years=None,
        day_of_month=None if dom_text == "*" else _DaySet(bits[2]),
        day_of_week=None if dow_text == "*" else _Weekdays.of(_week_bits(bits[4], "unix")),
        either_day=dom_text != "*" and dow_text != "*",
    )


def _parse(expression: str) -> _Plan:
    fields = expression.split()
    if len(fields) == 5:
        plan = _unix_plan(expression, fields)
    elif len(fields) in (6, 7):
        plan = _quartz_plan(expression, fields)
    else:
        count = f"{len(fields)} field{'' if len(fields) == 1 else 's'}"
        raise CronError(
            f"cron expression '{expression}' has {count}; write 5 ({_UNIX_FORM}) "
            f"or, in the Quartz form, 6 or 7 ({_QUARTZ_FORM})"
        )
    if plan.next_wall(datetime(MIN_YEAR, 1, 1), MIN_YEAR + _CALENDAR_CYCLE_YEARS) is None:
        year = " and year" if plan.years is not None else ""
        raise CronError(
            f"cron expression '{expression}' never fires: no date matches its day-of-month, "
            f"month, day-of-week{year} fields together (e.g. day 30 of FEB)"
        )
    return plan


def _zone(name: str) -> ZoneInfo:
    problem = None
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:
        problem = "is not a known IANA time zone"
    except (ValueError, OSError):
        problem = "is not an IANA time zone name"
    raise CronError(
        f"time zone '{name}' {problem}; use a name such as 'UTC', 'Europe/Berlin' or "
        "'America/New_York'"
    )


# Daylight-saving arithmetic on whole epoch seconds.


def _offset(zone: ZoneInfo, epoch: int) -> timedelta | None:
    return datetime.fromtimestamp(epoch, zone).utcoffset()


def _transition(zone: ZoneInfo, before: int, after: int) -> int:
    """The first epoch second in (before, after] already on the UTC offset in force at `after`."""
    target = _offset(zone, after)
    while after - before > 1:
        middle = (before + after) // 2
        if _offset(zone, middle) == target:
            after = middle
        else:
            before = middle
    return after


def _wall(zone: ZoneInfo, epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, zone).replace(tzinfo=None)


def _horizon(start: datetime) -> int:
    return min(start.year + _CALENDAR_CYCLE_YEARS, 9998)


@dataclass(frozen=True)
class _Overlap:
    """The wall times [low, high) that a fall-back shows twice."""

    low: datetime
    high: datetime


def _overlap_around(local: datetime) -> _Overlap | None:
    """The repeated wall times `local` is one of, or None when its wall time is shown once."""
    other = local.replace(fold=1 - local.fold)
    if other.utcoffset() == local.utcoffset():
        return None
    first, second = local.replace(fold=0), local.replace(fold=1)
    before, after = first.utcoffset(), second.utcoffset()
    assert before is not None and after is not None and isinstance(local.tzinfo, ZoneInfo)
    turn = _transition(local.tzinfo, int(first.timestamp()), int(second.timestamp()))
    low = _wall(local.tzinfo, turn)
    return _Overlap(low, low + (before - after))


@dataclass(frozen=True)
class CronSchedule:
    """A validated cron expression in a time zone; hashable, equal by expression and zone.

    Raises CronError when constructed from a bad expression or zone (as `parse_cron` does).
    """

    expression: str
    time_zone: str = "UTC"
    _plan: _Plan = field(init=False, repr=False, compare=False)
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    # The expression split by its hours: pinned wall-clock times and paced hours (or None).
    _pinned: _Plan | None = field(init=False, repr=False, compare=False)
    _paced: _Plan | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        plan = _parse(self.expression)
        pinned_hours = plan.hours & ~plan.paced_hours
        object.__setattr__(self, "_plan", plan)
        object.__setattr__(self, "_zone", _zone(self.time_zone))
        object.__setattr__(
            self, "_pinned", replace(plan, hours=pinned_hours) if pinned_hours else None
        )
        object.__setattr__(
            self, "_paced", replace(plan, hours=plan.paced_hours) if plan.paced_hours else None
        )

    @property
    def dialect(self) -> Dialect:
        """'quartz' (6 or 7 fields, seconds first) or 'unix' (5 fields)."""
        return self._plan.dialect

    def next_fire(self, after: datetime) -> datetime | None:
        """The first fire strictly after `after` (an aware datetime), in UTC; None if none is left.

        Across a daylight-saving change a wall time in a pinned hour (written as a single
        value) fires once: a skipped one at the end of the gap, a repeated one at its first
        occurrence. A wall time in a paced hour (`*`, a range or a step) fires whenever the
        clock shows it: a skipped one never, a repeated one at both occurrences.
        """
        if after.utcoffset() is None:
            raise ValueError(f"next_fire needs a timezone-aware datetime, got {after!r}")
        local = after.astimezone(self._zone)
        # zoneinfo marks the second pass through repeated wall times with fold=1.
        overlap = _overlap_around(local) if local.fold else None
        start = local.replace(tzinfo=None, microsecond=0) + _ONE_SECOND
        pinned = None if self._pinned is None else self._next_pinned(overlap, start)
        paced = None if self._paced is None else self._next_paced(local, overlap, start)
        if pinned is None or paced is None:
            return paced if pinned is None else pinned
        return min(pinned, paced)

    def fires_between(self, start: datetime, end: datetime, limit: int = 1000) -> list[datetime]:
        """Fires after `start` and at or before `end`, in UTC, oldest first, at most `limit`."""
        fires: list[datetime] = []
        fire = self.next_fire(start)
        while fire is not None and fire <= end and len(fires) < limit:
            fires.append(fire)
            fire = self.next_fire(fire)
        return fires

    def _next_pinned(self, overlap: _Overlap | None, start: datetime) -> datetime | None:
        """Pinned wall times: each fires at the first instant the clock shows it or a later one."""
        assert self._pinned is not None
        if overlap is not None:
            # From inside the second pass: its repeated wall times have all fired already.
            start = overlap.high
        wall = self._pinned.next_wall(start, _horizon(start))
        return None if wall is None else self._first_instant(wall)

    def _next_paced(
        self, local: datetime, overlap: _Overlap | None, start: datetime
    ) -> datetime | None:
        """Paced wall times: each fires at every instant the clock shows it."""
        plan = self._paced
        assert plan is not None
        if overlap is not None:
            wall = plan.next_wall(start, _horizon(start))
            if wall is not None and wall < overlap.high:
                return self._occurrence(wall, 1)
            start = overlap.high
        while (wall := plan.next_wall(start, _horizon(start))) is not None:
            first = wall.replace(tzinfo=self._zone).astimezone(UTC)
            shown = first.astimezone(self._zone)
            if shown.replace(tzinfo=None) != wall:
                start = _wall(self._zone, self._gap_end(wall))
                continue
            if shown.utcoffset() != local.utcoffset() and not local.fold:
                # The offset changes before this fire. When `after` is in the first pass
                # through repeated wall times, the second pass comes first.
                around = _overlap_around(local)
                if around is not None:
                    repeat = plan.next_wall(around.low, _horizon(around.low))
                    if repeat is not None and repeat < around.high:
                        return self._occurrence(repeat, 1)
            return first
        return None

    def _occurrence(self, wall: datetime, fold: int) -> datetime:
        return wall.replace(tzinfo=self._zone, fold=fold).astimezone(UTC)

    def _first_instant(self, wall: datetime) -> datetime:
        """The first instant the clock shows `wall` or a later time (the gap's end if skipped)."""
        first = wall.replace(tzinfo=self._zone).astimezone(UTC)
        if first.astimezone(self._zone).replace(tzinfo=None) == wall:
            return first
        return datetime.fromtimestamp(self._gap_end(wall), UTC)

    def _gap_end(self, wall: datetime) -> int:
        """The epoch second a spring-forward gap that skips `wall` ends at."""
        low, high = sorted(int(self._occurrence(wall, fold).timestamp()) for fold in (0, 1))
        return _transition(self._zone, low, high)


def parse_cron(expression: str, time_zone: str = "UTC") -> CronSchedule:
    """Parse and validate; raises CronError naming the bad field (or zone) and the fix."""
    return CronSchedule(expression, time_zone)


def validate_cron(expression: str) -> str | None:
    """None if the expression is valid, else the error message."""
    try:
        _parse(expression)
    except CronError as error:
        return str(error)
    return None


def validate_time_zone(name: str) -> str | None:
    """None if `name` is a usable IANA time zone, else the error message."""
    try:
        _zone(name)
    except CronError as error:
        return str(error)
    return None
