"""The queue gauges, set from the state store and the job statistics after a change.

The status pipeline, the launch cycle and the operations call `update` once their
change is applied; the values are always read afresh, never counted along.
"""

from __future__ import annotations

from controller.mesos.statistics import JobStatistics
from controller.metrics import FrameworkMetrics
from controller.state import StateStore


class QueueGauges:
    def __init__(self, store: StateStore, stats: JobStatistics, metrics: FrameworkMetrics) -> None:
        self._store = store
        self._stats = stats
        self._metrics = metrics

    def update(self) -> None:
        sizes, metrics = self._store.queue_sizes(), self._metrics
        metrics.ready_jobs.set(sizes.ready_jobs)
        metrics.ready_runs.set(sizes.ready_runs)
        metrics.failover_shards.set(sizes.failover_shards)
        metrics.running_tasks.set(sizes.running_tasks)
        metrics.unplaceable_jobs.set(self._stats.unplaceable_jobs())
