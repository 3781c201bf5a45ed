"""Per-job Prometheus metrics, read at scrape time from the leader's term and the run
history.

`JobMetrics` is a custom collector (registered by `SchedulingService` in the
controller's registry): on each scrape it walks the jobs the current term holds and
yields, labelled `job_namespace` and `job_name` (not `namespace` and `job`, which the
scrape itself adds for the controller's pod):

- `cloudjob_job_runs_total{outcome}`: runs by outcome, the run history's counters —
  exact across leader changes and restarts;
- `cloudjob_job_last_success_timestamp_seconds`, `cloudjob_job_last_run_duration_seconds`;
- `cloudjob_job_pending_runs`, `cloudjob_job_running_shards`,
  `cloudjob_job_longest_running_shard_seconds` (the active shard longest in its state);
- `cloudjob_job_cron_period_seconds` (transient jobs: the longest gap between their next
  fires, what "no success within N periods" is measured in).

Nothing is kept between scrapes, so a deleted job's series go with it, and a standby
(no term) exports none: only the leader's series describe the jobs.
docs/history.md has the cardinality this costs.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from controller.cron import CronError, parse_cron
from controller.definitions import JobDefinition
from controller.naming import split_key
from controller.operations import JobRuntime

LABELS = ("job_namespace", "job_name")
_PERIOD_FIRES = 8


def cron_period(cron: str, time_zone: str, now: datetime) -> float | None:
    """The longest gap between the next few fires of a cron, in seconds."""
    try:
        schedule = parse_cron(cron, time_zone)
    except CronError:
        return None
    fires = schedule.fires_between(now, datetime.max.replace(tzinfo=UTC), _PERIOD_FIRES + 1)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(fires)]
    return max(gaps) if gaps else None


class JobMetrics(Collector):
    def __init__(
        self,
        facts: Callable[[], list[tuple[JobDefinition, JobRuntime]]],
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`facts`: every held job with its runtime, read consistently (the service
        reads them on its event loop, since scrapes come from another thread)."""
        self._facts = facts
        self._now = now
        # (cron, time zone) → period: thousands of jobs share a handful of crons.
        self._periods: dict[tuple[str, str], float | None] = {}

    def describe(self) -> list[Metric]:
        """Nothing up front: the series exist only while jobs do."""
        return []

    def collect(self) -> Iterator[Metric]:
        now = self._now()
        runs = CounterMetricFamily(
            "cloudjob_job_runs",
            "runs of the job by outcome (run history)",
            labels=[*LABELS, "outcome"],
        )

        def gauge(name: str, doc: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"cloudjob_job_{name}", doc, labels=list(LABELS))

        success = gauge("last_success_timestamp_seconds", "when a run last succeeded")
        duration = gauge("last_run_duration_seconds", "how long the last finished run took")
        pending = gauge("pending_runs", "runs waiting in the ready queue")
        running = gauge("running_shards", "shards with a task launched or running")
        longest = gauge(
            "longest_running_shard_seconds",
            "how long the oldest active shard has been in its state",
        )
        period = gauge("cron_period_seconds", "the longest gap between the job's next cron fires")
        for job, facts in self._facts():
            labels = list(split_key(job.key))
            pending.add_metric(labels, facts.pending_runs)
            running.add_metric(labels, len(facts.active_shards))
            if facts.active_shards:
                oldest = min(s.since for s in facts.active_shards)
                longest.add_metric(labels, max(0.0, (now - oldest).total_seconds()))
            if (history := facts.history) is not None:
                runs.add_metric([*labels, "succeeded"], history.succeeded)
                runs.add_metric([*labels, "failed"], history.failed)
                runs.add_metric([*labels, "killed"], history.killed)
                if history.last_success_time is not None:
                    success.add_metric(labels, history.last_success_time.timestamp())
                if history.last_run_seconds is not None:
                    duration.add_metric(labels, history.last_run_seconds)
            if not job.is_daemon:
                key = (job.spec.cron, job.spec.time_zone)
                if key not in self._periods:
                    self._periods[key] = cron_period(*key, now)
                if (seconds := self._periods[key]) is not None:
                    period.add_metric(labels, seconds)
        yield from (runs, success, duration, pending, running, longest, period)
