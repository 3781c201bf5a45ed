"""The per-job metrics: what one scrape shows for the jobs a term holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from controller.definitions import JobDefinition
from controller.mesos.job_metrics import JobMetrics, cron_period
from controller.operations import JobHistory, JobRuntime, ShardRuntime

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)


def job(name: str, *, daemon: bool = False) -> JobDefinition:
    return JobDefinition(
        namespace="team-a",
        name=name,
        spec={
            "appName": "app",
            "cron": "0 0/5 * * * ?",
            "shardingTotalCount": 2,
            "cpuCount": 0.1,
            "memoryMB": 32,
            "executionType": "DAEMON" if daemon else "TRANSIENT",
            "script": {"commandLine": "true"},
        },
    )


def scrape(held: list[tuple[JobDefinition, JobRuntime]]) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(JobMetrics(lambda: held, now=lambda: NOW))
    return registry


def test_a_job_with_history_has_every_series() -> None:
    report = job("report")
    facts = JobRuntime(
        job_key=report.key,
        scheduled=True,
        pending_runs=2,
        active_shards=(
            ShardRuntime(0, "t0", "a1", "host-1", "TASK_RUNNING", NOW - timedelta(seconds=90)),
        ),
        history=JobHistory(succeeded=7, failed=2, last_success_time=NOW, last_run_seconds=4.5),
    )
    registry = scrape([(report, facts)])
    labels = {"job_namespace": "team-a", "job_name": "report"}

    def value(name: str, **extra: str) -> float | None:
        return registry.get_sample_value(name, {**labels, **extra})

    assert value("cloudjob_job_runs_total", outcome="succeeded") == 7
    assert value("cloudjob_job_runs_total", outcome="failed") == 2
    assert value("cloudjob_job_last_success_timestamp_seconds") == NOW.timestamp()
    assert value("cloudjob_job_last_run_duration_seconds") == 4.5
    assert value("cloudjob_job_pending_runs") == 2
    assert value("cloudjob_job_running_shards") == 1
    assert value("cloudjob_job_longest_running_shard_seconds") == 90
    assert value("cloudjob_job_cron_period_seconds") == 300


def test_no_history_no_run_counters_and_a_daemon_has_no_cron_period() -> None:
    resident = job("resident", daemon=True)
    registry = scrape([(resident, JobRuntime(job_key=resident.key, scheduled=True))])
    labels = {"job_namespace": "team-a", "job_name": "resident"}
    assert (
        registry.get_sample_value("cloudjob_job_runs_total", {**labels, "outcome": "succeeded"})
        is None
    )
    assert registry.get_sample_value("cloudjob_job_cron_period_seconds", labels) is None
    assert registry.get_sample_value("cloudjob_job_running_shards", labels) == 0


def test_the_cron_period_is_the_longest_gap_between_the_next_fires() -> None:
    assert cron_period("0 0 9,17 * * ?", "UTC", NOW) == 16 * 3600
    assert cron_period("not a cron", "UTC", NOW) is None
