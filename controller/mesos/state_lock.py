"""The engine's state lock: one holder at a time, cron fires first.

Everything that reads and changes the framework's state together (the status
pipeline's batches, launch cycles, schedule and unschedule, a fire's plan and its
record) takes the one lock, so each sees the state whole. An `asyncio.Lock` hands it
over in arrival order, and a cron fire has a deadline the rest have not: at 3,000 jobs
a fire's plan and record queued behind up to two seconds of status batches, launch
cycles and schedules, and their runs reached the master that late. Work taken with
`first()` goes ahead of every ordinary waiter; it still waits for the holder. So that
a steady stream of fires cannot shut the rest out, at most `FIRST_IN_A_ROW`
acquisitions of `first()` are granted in a row while ordinary work waits.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType

# Grants to `first()` in a row before one waiting ordinary acquisition goes: a fire's
# plan and its record, then a turn for a status batch or a user's apply. With 8, the
# slowest single apply took 5.7 s at 3,000 jobs and 9.2 s at 5,000 (2.1 and 2.6 s with
# the lock in arrival order; one run each).
FIRST_IN_A_ROW = 2


class StateLock:
    """`async with lock:` waits its turn; `async with lock.first():` goes ahead."""

    def __init__(self, first_in_a_row: int = FIRST_IN_A_ROW) -> None:
        if first_in_a_row < 1:
            raise ValueError(f"first_in_a_row must be at least 1, not {first_in_a_row}")
        self._held = False
        self._first: deque[asyncio.Future[None]] = deque()
        self._ordinary: deque[asyncio.Future[None]] = deque()
        self._first_in_a_row = first_in_a_row
        self._firsts_granted = 0

    def locked(self) -> bool:
        return self._held

    async def __aenter__(self) -> None:
        await self._acquire(self._ordinary)

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._release()

    @asynccontextmanager
    async def first(self) -> AsyncIterator[None]:
        """Hold the lock, taken ahead of the ordinary waiters."""
        await self._acquire(self._first)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, queue: deque[asyncio.Future[None]]) -> None:
        if not self._held and not self._waiting():
            self._granted(queue)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Handed the lock just as it was cancelled: pass it on.
                self._release()
            elif waiter in queue:
                queue.remove(waiter)
            raise

    def _waiting(self) -> bool:
        return any(not w.done() for w in self._first) or any(not w.done() for w in self._ordinary)

    def _granted(self, queue: deque[asyncio.Future[None]]) -> None:
        self._held = True
        self._firsts_granted = self._firsts_granted + 1 if queue is self._first else 0

    def _release(self) -> None:
        if not self._held:
            raise RuntimeError("the state lock is released but not held")
        self._held = False
        while (queue := self._next_queue()) is not None:
            waiter = queue.popleft()
            if waiter.done():  # cancelled while it waited
                continue
            self._granted(queue)
            waiter.set_result(None)
            return

    def _next_queue(self) -> deque[asyncio.Future[None]] | None:
        ordinary_turn = self._ordinary and self._firsts_granted >= self._first_in_a_row
        if self._first and not ordinary_turn:
            return self._first
        if self._ordinary:
            return self._ordinary
        return None
