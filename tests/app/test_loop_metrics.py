"""The event-loop gauge `cloudjob_asyncio_tasks` (controller/loop_metrics.py): scraped
from another thread, it counts the tasks not yet done on a running loop, and says
nothing before the loop exists or after it closed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from controller.loop_metrics import ASYNCIO_TASKS, LoopMetrics

pytestmark = pytest.mark.unit


class LoopThread:
    """An event loop running in a thread, as the controller's does."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> LoopThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=30)
        self.loop.close()


@pytest.fixture
def running() -> Iterator[LoopThread]:
    with LoopThread() as thread:
        yield thread


def scrape(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value(ASYNCIO_TASKS)


def test_the_gauge_counts_the_tasks_not_yet_done(running: LoopThread) -> None:
    registry = CollectorRegistry()
    registry.register(LoopMetrics(lambda: running.loop))
    release = asyncio.Event()
    started = threading.Semaphore(0)

    async def waiting() -> None:
        started.release()
        await release.wait()

    async def spawn(count: int) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(waiting()) for _ in range(count)]

    assert scrape(registry) == 0.0
    tasks = asyncio.run_coroutine_threadsafe(spawn(5), running.loop).result(30)
    for _ in tasks:
        assert started.acquire(timeout=30)
    assert scrape(registry) == 5.0

    async def finish() -> None:
        release.set()
        await asyncio.gather(*tasks)

    asyncio.run_coroutine_threadsafe(finish(), running.loop).result(30)
    # The coroutine that awaited them ran as a task of its own, and is done too.
    assert scrape(registry) == 0.0


def test_no_series_before_the_loop_runs_or_after_it_closed() -> None:
    holder: list[asyncio.AbstractEventLoop] = []
    registry = CollectorRegistry()
    registry.register(LoopMetrics(lambda: holder[0] if holder else None))
    assert scrape(registry) is None
    with LoopThread() as thread:
        holder.append(thread.loop)
        assert scrape(registry) == 0.0
    assert scrape(registry) is None
