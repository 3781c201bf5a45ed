"""Tables as kubectl prints them, and the few value formats they use (pure).

Used by `controller.plugin.views` to render what each command shows: upper-case
headers, columns padded to their widest cell and three spaces apart, `<none>` for a
missing value, and ages and durations in kubectl's short form (`45s`, `3m12s`, `5h`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

NONE = "<none>"
GAP = "   "


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.headers):
                raise ValueError(f"row {row!r} has {len(row)} cells for {len(self.headers)}")


def render(table: Table, *, headers: bool = True) -> str:
    """The table as lines of text, each ending in a newline; no lines for no rows."""
    if not table.rows:
        return ""
    lines = [tuple(h.upper() for h in table.headers)] if headers else []
    lines += table.rows
    widths = [max(len(line[i]) for line in lines) for i in range(len(table.headers))]
    out = []
    for line in lines:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=True)]
        out.append(GAP.join(cells).rstrip() + "\n")
    return "".join(out)


def render_all(tables: Sequence[Table], *, headers: bool = True) -> str:
    """Several tables, a blank line between two (kubectl's `get a,b`); empty ones left out."""
    parts = [render(t, headers=headers) for t in tables if t.rows]
    return "\n".join(parts)


def cell(value: object) -> str:
    """A value as one table cell: `<none>` when missing, whitespace runs made one space."""
    if value is None or value == "":
        return NONE
    return " ".join(str(value).split())


def shortened(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 time of the API; naive ones are UTC."""
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def timestamp(value: str | None) -> str:
    """A time as `2026-01-31T12:00:05Z` (UTC, whole seconds), `<none>` when missing."""
    moment = parse_time(value)
    if moment is None:
        return NONE
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def human_duration(seconds: float) -> str:
    """kubectl's short duration: exact seconds below two minutes, then coarser units
    (`3m12s`, `42m`, `5h7m`, `20h`, `3d4h`, `40d`, `2y10d`, `9y`), each step keeping
    the precision that still tells two values apart at a glance. Below ten seconds a
    tenth of a second is kept: runs are often that short."""
    if seconds < 0:
        return "0s"
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 120:
        return f"{whole}s"
    minutes, hours, days = whole // 60, whole // 3600, whole // 86400
    if minutes < 10:
        return _pair(minutes, "m", whole % 60, "s")
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return _pair(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    if days < 8:
        return _pair(days, "d", hours % 24, "h")
    if days < 2 * 365:
        return f"{days}d"
    if days < 8 * 365:
        return _pair(days // 365, "y", days % 365, "d")
    return f"{days // 365}y"


def _pair(big: int, big_unit: str, small: int, small_unit: str) -> str:
    return f"{big}{big_unit}" if small == 0 else f"{big}{big_unit}{small}{small_unit}"


def between(start: str | None, end: str | None, now: datetime) -> str:
    """How long from `start` to `end` (to `now` while there is no end)."""
    began = parse_time(start)
    if began is None:
        return NONE
    ended = parse_time(end) or now
    return human_duration((ended - began).total_seconds())


def pairs(counts: dict[str, int]) -> str:
    """`{"b": 2, "a": 1}` as `a=1,b=2`, as kubectl shows labels."""
    return ",".join(f"{key}={value}" for key, value in sorted(counts.items())) or NONE
