"""The pure half of the scale benchmark (`bench/scale.py`, which imports it): what the
workload expects, how the jobs' own run records are read and counted, and how the
numbers are summarised. No I/O here; `tests/bench/test_scale_measures.py` checks it.

The workload's jobs use the Quartz cron `S/30 * * * * ?` (S = 0..9): a job fires at the
UTC seconds where `epoch % 30 == S`, so its fire times in a window are plain arithmetic
and the benchmark can count the runs that never happened without asking the controller.

The probe jobs, created one at a time during the window to time a single apply while
the workload exists, use a cron whose only fire is at the start of its fixed year, far
ahead: they never run, so they add nothing to the runs counted.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

PERIOD = 30
OFFSETS = 10


def cron_of(index: int) -> str:
    """The cron of the index-th job: the ten offsets in turn, so fires spread evenly."""
    return f"{index % OFFSETS}/{PERIOD} * * * * ?"


def offset_of(index: int) -> int:
    return index % OFFSETS


# The first second of 2099 (the last year a Quartz cron may name), and never again.
PROBE_CRON = "0 0 0 1 1 ? 2099"


def probe_name(index: int) -> str:
    """Not of the workload's form (`scale-NNNNN`), so no count can take a probe for one."""
    return f"apply-probe-{index:03d}"


def probe_times(start: float, end: float, count: int) -> list[float]:
    """When to create each of `count` probes: the middles of `count` equal slices of
    [start, end), so they spread evenly and none falls on the window's edges."""
    step = (end - start) / count if count else 0.0
    return [start + (index + 0.5) * step for index in range(count)]


def probe_outcome(
    probes: int,
    created: Mapping[str, float],
    refused: int,
    seen: Mapping[str, float],
) -> dict[str, float]:
    """What became of the probes: how many were created, refused, never created (the run
    ended first) and seen Scheduled, and create-returned → first seen Scheduled of those
    seen (p50, p99, max, n; absent without any)."""
    latencies = [seen[name] - at for name, at in created.items() if name in seen]
    scheduled = len(latencies)
    return {
        "probes": probes,
        "created": len(created),
        "refused": refused,
        "not_created": probes - len(created) - refused,
        "scheduled": scheduled,
        "not_scheduled": len(created) - scheduled,
        **(spread(latencies) or {}),
    }


def fire_times(offset: int, start: float, end: float) -> list[int]:
    """The fire times (epoch seconds) in [start, end) of a job of the given offset."""
    first = math.ceil(start)
    first += (offset - first) % PERIOD
    return list(range(first, math.ceil(end), PERIOD))


@dataclass(frozen=True)
class RunRecord:
    """One line a job appended: when its process started, and its sharding context."""

    job: str
    shard: int
    task_id: str
    fire: float | None
    started: float


def parse_run_line(line: str) -> RunRecord | None:
    """`<epoch start> <sharding context JSON>`; None for a torn or foreign line."""
    stamp, _, payload = line.strip().partition(" ")
    try:
        started = float(stamp)
        context = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(context, dict) or "job_name" not in context:
        return None
    fire_text = context.get("fire_time")
    fire = datetime.fromisoformat(fire_text).timestamp() if fire_text else None
    return RunRecord(
        job=str(context["job_name"]),
        shard=int(context.get("sharding_item", 0)),
        task_id=str(context.get("task_id", "")),
        fire=fire,
        started=started,
    )


@dataclass(frozen=True)
class Tally:
    """Runs of the fires in a window, as the jobs recorded them."""

    expected: int
    ran: int
    doubled: int
    # Fires that ran, per 30-second period of the window (where losses cluster).
    by_period: tuple[int, ...]
    # Records whose fire time is no fire of their job in the window (or has none).
    stray: int

    @property
    def lost(self) -> int:
        return self.expected - self.ran


def tally(
    records: Iterable[RunRecord], offsets: Mapping[str, int], start: float, end: float
) -> Tally:
    """Count, per job (key → cron offset), its fires in [start, end): how many ran at
    least once, and how many extra runs a fire got (a second run of one fire)."""
    runs: Counter[tuple[str, int]] = Counter()
    stray = 0
    for record in records:
        if record.fire is None or not start <= record.fire < end:
            continue
        fire = round(record.fire)
        offset = offsets.get(record.job)
        if offset is None or fire % PERIOD != offset:
            stray += 1
            continue
        runs[(record.job, fire)] += 1
    expected = sum(len(fire_times(offset, start, end)) for offset in offsets.values())
    doubled = sum(count - 1 for count in runs.values() if count > 1)
    periods = Counter(int((fire - start) // PERIOD) for _, fire in runs)
    by_period = tuple(periods[n] for n in range(math.ceil((end - start) / PERIOD)))
    return Tally(expected, len(runs), doubled, by_period, stray)


MISFIRE = re.compile(r"cron (.+?) \[[^\]\n]*\] misfired at (\S+) \(noticed")


def misfires(log: str, start: float, end: float) -> list[tuple[str, float]]:
    """The cron fires in [start, end) a controller's log says it skipped as noticed too
    late: (cron, fire time). A diagnosis of lost runs, not a count of them: one skipped
    fire of a cron is a lost run for every job on it."""
    skipped = []
    for match in MISFIRE.finditer(log):
        fire = datetime.fromisoformat(match.group(2)).timestamp()
        if start <= fire < end:
            skipped.append((match.group(1), fire))
    return skipped


FIRE_RUNS = re.compile(r'^cloudjob_cron_fire_runs_total\{outcome="([^"]+)"\}$')


def fire_run_outcomes(scraped: Iterable[Mapping[str, float]]) -> dict[str, int]:
    """What became of the runs cron fires asked for, summed over the replicas' scraped
    metrics (`cloudjob_cron_fire_runs_total` by outcome), the most frequent first."""
    counted: Counter[str] = Counter()
    for metrics in scraped:
        for key, value in metrics.items():
            if match := FIRE_RUNS.match(key):
                counted[match.group(1)] += int(value)
    return {outcome: n for outcome, n in counted.most_common() if n}


def unsuccessful(rows: Iterable[tuple[str | None, str | None]], width: int = 90) -> Counter[str]:
    """Runs of the history that ended other than succeeded, as (state, message) rows,
    counted by state and the start of the message: why runs failed, at a glance."""
    counted: Counter[str] = Counter()
    for state, message in rows:
        text = " ".join((message or "").split())
        if len(text) > width:
            text = text[: width - 1] + "…"
        counted[f"{state or 'no state'}: {text}" if text else state or "no state"] += 1
    return counted


def json_key(label: str) -> str:
    """A printed label as a key of the JSON results: `fire→ACCEPT` → `fire_to_accept`."""
    words = re.sub(r"[^a-z0-9]+", " ", label.lower().replace("→", " to ")).split()
    return "_".join(words)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 1]) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def spread(values: Sequence[float]) -> dict[str, float] | None:
    """p50, p99 and max of the samples, or None without samples."""
    if not values:
        return None
    return {
        "n": len(values),
        "p50": percentile(values, 0.50),
        "p99": percentile(values, 0.99),
        "max": max(values),
    }


def delays(
    fires: Mapping[str, float], stamps: Mapping[str, float], *, after: float = 0.0
) -> list[float]:
    """Per task id known to both: its stamp minus its fire time, for fires at or after
    `after`."""
    return [stamps[task] - fire for task, fire in fires.items() if task in stamps and fire >= after]


def first_after(stamps: Iterable[float], moment: float) -> float | None:
    """The earliest stamp later than `moment`."""
    later = [stamp for stamp in stamps if stamp > moment]
    return min(later) if later else None


def cpu_seconds(stat: str, ticks_per_second: float) -> float:
    """utime + stime of a `/proc/<pid>/stat` line, in seconds."""
    # The command name is in parentheses and may hold spaces: split after it.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / ticks_per_second


def rss_mib(status: str) -> float:
    """VmRSS of a `/proc/<pid>/status` text, in MiB (0 for a zombie, which has none)."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def scheduled_at(job: Mapping[str, object]) -> bool:
    """Whether a CloudJob object carries the condition Scheduled=True."""
    status = job.get("status")
    if not isinstance(status, dict):
        return False
    conditions = status.get("conditions") or []
    return any(
        isinstance(c, dict) and c.get("type") == "Scheduled" and c.get("status") == "True"
        for c in conditions
    )
