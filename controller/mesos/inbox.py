"""The driver events waiting to be handled, in arrival order.

The driver (through the loop) puts events in; the engine takes them out one at a
time. A status update comes out together with the status updates right behind it
(after a short batching window, at most `STATUS_BATCH_LIMIT`), so the status pipeline
persists them in one transaction; the first other event behind them is handed out
next, so order is kept. The inbox also tells how long it has been since an event came
out, which is what the heartbeat watchdog watches.

An agent sends an update again while it is not acknowledged (after 10 s, doubling).
A controller that far behind would hold each update two or three times, and decide
each copy, just when it can least afford to: a copy of an update still waiting here
is dropped (the waiting one is handled and acknowledged) and counted.
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
        on_resent: Callable[[], None] = lambda: None,
    ) -> None:
        self._queue: asyncio.Queue[DriverEvent] = asyncio.Queue()
        # (task id, uuid) of the status updates waiting in the queue.
        self._waiting: set[tuple[str, str]] = set()
        self._on_resent = on_resent
        self._batch_seconds = batch_seconds
        self._limit = limit
        self._clock = clock
        self._last = clock()
        self._closed = False

    def put(self, event: DriverEvent) -> None:
        if self._closed:
            return
        key = _waiting_key(event)
        if key is not None:
            if key in self._waiting:
                self._on_resent()
                return
            self._waiting.add(key)
        self._queue.put_nowait(event)

    def _took(self, event: DriverEvent) -> None:
        self._last = self._clock()
        key = _waiting_key(event)
        if key is not None:
            self._waiting.discard(key)

    def close(self) -> None:
        """Take no more events (the term is over)."""
        self._closed = True

    async def get(self) -> DriverEvent:
        event = await self._queue.get()
        self._took(event)
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
            self._took(event)
            if not isinstance(event, StatusReceived):
                return batch, event
            batch.append(event.update)
        return batch, None

    def silent_for(self) -> float:
        """Seconds since an event last came out."""
        return self._clock() - self._last


def _waiting_key(event: DriverEvent) -> tuple[str, str] | None:
    """What tells a resent status update from another; None for other events and for
    the master's own updates (no uuid: never resent, never acknowledged)."""
    if isinstance(event, StatusReceived) and event.update.uuid is not None:
        return event.update.task_id, event.update.uuid
    return None
