"""The driver events waiting to be handled, in arrival order.

The driver (through the loop) puts events in; the engine takes them out one at a
time. A status update comes out together with the status updates right behind it
(after a short batching window, at most `STATUS_BATCH_LIMIT`), so the status pipeline
persists them in one transaction; the first other event behind them is handed out
next, so order is kept. The inbox also tells how long it has been since an event came
out, which is what the heartbeat watchdog watches.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from controller.mesos.events import DriverEvent, StatusReceived
from controller.mesos.states import StatusUpdate

# Status updates decided and persisted together at most (one transaction: ~1 op each).
STATUS_BATCH_LIMIT = 500


class Inbox:
    def __init__(
        self,
        *,
        batch_seconds: float,
        limit: int = STATUS_BATCH_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._queue: asyncio.Queue[DriverEvent] = asyncio.Queue()
        self._batch_seconds = batch_seconds
        self._limit = limit
        self._clock = clock
        self._last = clock()
        self._closed = False

    def put(self, event: DriverEvent) -> None:
        if not self._closed:
            self._queue.put_nowait(event)

    def close(self) -> None:
        """Take no more events (the term is over)."""
        self._closed = True

    async def get(self) -> DriverEvent:
        event = await self._queue.get()
        self._last = self._clock()
        return event

    async def statuses_behind(
        self, first: StatusReceived
    ) -> tuple[list[StatusUpdate], DriverEvent | None]:
        """`first` and the status updates waiting right behind it (after the batching
        window), and the next other event, which is to be handled after them."""
        if self._batch_seconds > 0:
            await asyncio.sleep(self._batch_seconds)
        batch = [first.update]
        while len(batch) < self._limit:
            try:
                event = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            self._last = self._clock()
            if not isinstance(event, StatusReceived):
                return batch, event
            batch.append(event.update)
        return batch, None

    def silent_for(self) -> float:
        """Seconds since an event last came out."""
        return self._clock() - self._last
