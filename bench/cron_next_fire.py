"""Benchmark: median microseconds per `CronSchedule.next_fire` for typical expressions.

Each case walks a chain of consecutive fires (so every call starts from the previous fire)
several times and prints the median per-call cost; croniter's cost for the same walk is
printed alongside for scale. Run: `.venv/bin/python bench/cron_next_fire.py`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from croniter import croniter

from controller.cron import CronSchedule, parse_cron

CALLS = 2000
ROUNDS = 7
START = datetime(2024, 1, 1, tzinfo=UTC)

# (expression, time zone, the same schedule for croniter with seconds first, or None)
CASES: list[tuple[str, str, str | None]] = [
    ("0 * * * * ?", "UTC", "0 * * * * *"),
    ("0/15 * * * * ?", "UTC", "*/15 * * * * *"),
    ("0 0/5 * * * ?", "Asia/Shanghai", "0 */5 * * * *"),
    ("0 0/20 * * * ?", "Europe/Berlin", "0 */20 * * * *"),
    ("0 0 2 ? * MON-FRI", "America/New_York", "0 0 2 * * 1-5"),
    ("0 30 1 * * ?", "Europe/Berlin", "0 30 1 * * *"),
    ("0 0 12 L * ?", "UTC", "0 0 12 L * *"),
    ("0 15 10 ? * 6#3", "UTC", "0 15 10 * * 5#3"),
    ("0 0 9 15W * ?", "UTC", "0 0 9 15W * *"),
    ("0 0 0 29 2 ?", "UTC", "0 0 0 29 2 *"),
    ("*/5 * * * *", "UTC", "0 */5 * * * *"),
    ("*/5 * * * *", "America/New_York", "0 */5 * * * *"),
    ("0 9 1,15 * MON", "Europe/Berlin", "0 0 9 1,15 * 1"),
]


def per_call_micros(walk: Callable[[], None], calls: int) -> float:
    started = time.perf_counter()
    walk()
    return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    print(f"median µs per next_fire over {ROUNDS} rounds of {CALLS} chained calls")
    print(f"{'expression':<22} {'zone':<17} {'cron.py':>9} {'croniter':>9}")
    for expression, zone, croniter_expression in CASES:
        schedule = parse_cron(expression, zone)
        calls = CALLS // 10 if "29 2" in expression else CALLS

        def ours(schedule: CronSchedule = schedule, calls: int = calls) -> None:
            fire: datetime | None = START
            for _ in range(calls):
                assert fire is not None
                fire = schedule.next_fire(fire)

        ours_median = statistics.median(per_call_micros(ours, calls) for _ in range(ROUNDS))
        theirs = "-"
        if croniter_expression is not None:
            local_start = START.astimezone(ZoneInfo(zone))

            def oracle(
                text: str = croniter_expression, start: datetime = local_start, calls: int = calls
            ) -> None:
                walker = croniter(text, start, second_at_beginning=True)
                for _ in range(calls):
                    walker.get_next(datetime)

            theirs = f"{statistics.median(per_call_micros(oracle, calls) for _ in range(3)):9.1f}"
        print(f"{expression:<22} {zone:<17} {ours_median:9.1f} {theirs:>9}")


if __name__ == "__main__":
    main()
