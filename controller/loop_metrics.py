"""The replica's event-loop gauge: `cloudjob_asyncio_tasks`, the asyncio tasks not yet
done on the controller's loop, counted at each scrape.

`LoopMetrics` is a custom collector that `controller.app.Controller` registers in its
registry with a way to reach its loop (None before `run` starts it). Scrapes come from
the metrics server's thread; `asyncio.all_tasks` copies the loop's task set with
retries, so counting from there is safe. A count that keeps rising on a steady workload
is a task leak: the soak (`bench/soak.py`) samples it over an hour.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

ASYNCIO_TASKS = "cloudjob_asyncio_tasks"


class LoopMetrics(Collector):
    def __init__(self, loop: Callable[[], asyncio.AbstractEventLoop | None]) -> None:
        self._loop = loop

    def describe(self) -> list[Metric]:
        return [GaugeMetricFamily(ASYNCIO_TASKS, "")]

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            ASYNCIO_TASKS, "asyncio tasks not yet done on the controller's event loop"
        )
        loop = self._loop()
        # No series before the loop runs or after it closed: 0 would read as "no tasks".
        if loop is not None and not loop.is_closed():
            gauge.add_metric([], len(asyncio.all_tasks(loop)))
        yield gauge
