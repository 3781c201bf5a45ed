"""Benchmark: what the per-job metrics cost at 10,000 jobs — series, bytes and time
of one scrape of `controller.mesos.job_metrics.JobMetrics`.

Every job has run (so it has all its series), a third is running a shard, a tenth
has pending runs, and the jobs share eight crons. Prints the series per family and
in total, the exposition size and the median scrape time.
Run: `.venv/bin/python bench/job_metrics_cardinality.py [jobs]`.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, generate_latest

from controller.definitions import JobDefinition
from controller.mesos.job_metrics import JobMetrics
from controller.operations import JobHistory, JobRuntime, ShardRuntime

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
CRONS = [f"0 0/{m} * * * ?" for m in (1, 2, 5, 10, 15, 20, 30)] + ["0 0 * * * ?"]
ROUNDS = 5


def job(n: int) -> JobDefinition:
    return JobDefinition(
        namespace=f"team-{n % 50}",
        name=f"job-{n}",
        spec={
            "appName": "app",
            "cron": CRONS[n % len(CRONS)],
            "shardingTotalCount": 3,
            "cpuCount": 0.1,
            "memoryMB": 32,
            "script": {"commandLine": "true"},
        },
    )


def runtime(n: int, key: str) -> JobRuntime:
    shards = tuple(
        ShardRuntime(s, f"{key}@-@{s}@-@READY@-@a@-@u", "a", "host", "TASK_RUNNING", NOW)
        for s in range(3 if n % 3 == 0 else 0)
    )
    return JobRuntime(
        job_key=key,
        scheduled=True,
        active_shards=shards,
        pending_runs=1 if n % 10 == 0 else 0,
        history=JobHistory(
            succeeded=n,
            failed=n // 7,
            last_success_time=NOW - timedelta(minutes=1),
            last_run_seconds=4.2,
        ),
    )


def main(count: int) -> None:
    jobs = [job(n) for n in range(count)]
    facts = {j.key: runtime(n, j.key) for n, j in enumerate(jobs)}
    registry = CollectorRegistry()
    held = [(j, facts[j.key]) for j in jobs]
    registry.register(JobMetrics(lambda: held, now=lambda: NOW))
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        text = generate_latest(registry)
        times.append(time.perf_counter() - started)
    families: Counter[str] = Counter()
    for family in registry.collect():
        families[family.name] += len(family.samples)
    print(f"{count} jobs")
    for name, series in sorted(families.items()):
        print(f"  {name:45} {series:>8} series")
    print(f"  {'total':45} {sum(families.values()):>8} series")
    print(f"  exposition: {len(text) / 1e6:.1f} MB, scrape: {statistics.median(times):.2f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
