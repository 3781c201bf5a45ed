"""The queue gauges, set from the state store and the job statistics after a change.

The status pipeline, the launch cycle and the operations call `update` once their
change is applied; the values are always read afresh, never counted along. Reading
them costs time in proportion to the queues (thousands of ready jobs), and updates are
asked for after every fire, flush and cycle (hundreds a second at scale: 8% of the
controller's time at 10,000 jobs). So with an `interval`, the gauges are set at most
once per interval: an update asked for sooner is made when the interval has passed,
once, with the sizes of that moment, so the gauges always end on the latest values.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from controller.mesos.statistics import JobStatistics
from controller.metrics import FrameworkMetrics
from controller.state import StateStore

GAUGE_INTERVAL = 0.5
"""Seconds between two settings of the gauges in a running controller (a scrape
interval is 15 s or more)."""

Later = Callable[[float, Callable[[], None]], object]
"""Run a callback after some seconds (`Background.call_later`)."""


class QueueGauges:
    def __init__(
        self,
        store: StateStore,
        stats: JobStatistics,
        metrics: FrameworkMetrics,
        *,
        interval: float = 0.0,
        later: Later | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._stats = stats
        self._metrics = metrics
        self._interval = interval
        self._later = later
        self._clock = clock
        self._last = -math.inf
        self._deferred = False

    def update(self) -> None:
        if self._deferred:
            return
        wait = self._last + self._interval - self._clock()
        if wait > 0 and self._later is not None:
            self._deferred = True
            self._later(wait, self._deferred_update)
            return
        self._set()

    def _deferred_update(self) -> None:
        self._deferred = False
        self._set()

    def _set(self) -> None:
        self._last = self._clock()
        sizes, metrics = self._store.queue_sizes(), self._metrics
        metrics.ready_jobs.set(sizes.ready_jobs)
        metrics.ready_runs.set(sizes.ready_runs)
        metrics.failover_shards.set(sizes.failover_shards)
        metrics.running_tasks.set(sizes.running_tasks)
        metrics.unplaceable_jobs.set(self._stats.unplaceable_jobs())
