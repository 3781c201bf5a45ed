"""The pure half of the soak (`bench/soak.py`, which imports it): how a sampled series is
summarised and judged flat. No I/O here; `tests/bench/test_soak_summary.py` checks it.

A series is a list of (seconds since the soak began, value), named `<source> <unit>`
(`replica-2 rss_mib`, `zookeeper znodes`, `api events objects`). A replica's series are
split by the role it had at each sample (its `<replica> leading` flag), since a leader
runs far more than a standby and a standby becomes leader when the leader is killed:
`replica-2 standby rss_mib`, `replica-2 leader rss_mib`. A series' summary keeps the
samples after the warm-up (the soak's; for a role, also some time after the replica
first had it): the first and last of them, the minimum and maximum, and the
least-squares slope scaled to an hour. It is flat when the rise that slope predicts over
the span sampled is within a tolerance of the series' median or an absolute floor
(whichever is larger): a handful of file descriptors or tasks coming and going with the
work in flight is noise, a steady climb is not.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

HOUR = 3600.0
# A rise smaller than this share of the median over the span is flat.
TOLERANCE = 0.10
LEADING = "leading"
ROLES = {1.0: "leader", 0.0: "standby"}
# The rise over the span below which a series is flat whatever its median, by unit: a
# handful of descriptors, threads or tasks come and go with the work in flight.
FLOORS = {
    "rss_mib": 20.0,
    "fds": 10.0,
    "threads": 3.0,
    "asyncio_tasks": 25.0,
    "znodes": 50.0,
    "objects": 20.0,
    "cpus": 5.0,
    "tasks": 50.0,
    "executors": 20.0,
}

Point = tuple[float, float]


@dataclass(frozen=True)
class Summary:
    samples: int
    first: float
    last: float
    low: float
    high: float
    slope_per_hour: float
    """Least-squares slope of value over time, per hour."""
    span: float
    """Seconds from the first kept sample to the last."""
    flat: bool


def slope(points: Sequence[Point]) -> float:
    """Least-squares slope (value per second); 0 for fewer than two distinct times."""
    if len(points) < 2:
        return 0.0
    mean_t = statistics.fmean(t for t, _ in points)
    mean_v = statistics.fmean(v for _, v in points)
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / spread


def summarise(
    points: Sequence[Point], *, warm_until: float, floor: float, tolerance: float = TOLERANCE
) -> Summary | None:
    """The summary of the samples at or after `warm_until`; None if there are none.
    `floor`: the rise over the span that is flat whatever the median (in the series'
    unit)."""
    kept = sorted(point for point in points if point[0] >= warm_until)
    if not kept:
        return None
    values = [v for _, v in kept]
    per_second = slope(kept)
    span = kept[-1][0] - kept[0][0]
    allowed = max(tolerance * abs(statistics.median(values)), floor)
    return Summary(
        samples=len(kept),
        first=values[0],
        last=values[-1],
        low=min(values),
        high=max(values),
        slope_per_hour=per_second * HOUR,
        span=span,
        flat=abs(per_second * span) <= allowed,
    )


def by_role(points: Mapping[str, Sequence[Point]]) -> dict[str, list[Point]]:
    """Each replica's series split by the role it had at each sample (a sample without
    its flag is dropped); other series unchanged, the flags themselves left out."""
    flags = {
        series.rsplit(" ", 1)[0]: dict(samples)
        for series, samples in points.items()
        if series.endswith(f" {LEADING}")
    }
    split: dict[str, list[Point]] = {}
    for series, samples in points.items():
        source, _, unit = series.rpartition(" ")
        if unit == LEADING:
            continue
        roles = flags.get(source)
        if roles is None:
            split[series] = list(samples)
            continue
        for moment, value in samples:
            role = ROLES.get(roles.get(moment, -1.0))
            if role is not None:
                split.setdefault(f"{source} {role} {unit}", []).append((moment, value))
    return split


def summaries(
    points: Mapping[str, Sequence[Point]], *, warmup: float, role_warmup: float
) -> dict[str, Summary]:
    """The summary of every series with a floor for its unit, by name: the stack's after
    `warmup`, a replica's role after `warmup` and `role_warmup` after it first had it."""
    result: dict[str, Summary] = {}
    for series, samples in sorted(by_role(points).items()):
        floor = FLOORS.get(series.rpartition(" ")[2])
        if floor is None or not samples:
            continue
        warm_until = warmup
        if series not in points:
            warm_until = max(warmup, min(t for t, _ in samples) + role_warmup)
        summary = summarise(samples, warm_until=warm_until, floor=floor)
        if summary is not None:
            result[series] = summary
    return result
