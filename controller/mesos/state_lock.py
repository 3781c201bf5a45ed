"""The engine's state lock: one holder at a time, cron fires first, bulk work last.

Everything that reads and changes the framework's state together (the status
pipeline's batches, launch cycles, schedule and unschedule, a cron fire's record)
takes the one lock, so each sees the state whole. An `asyncio.Lock` hands it over in
arrival order, but the work is not alike:

- a cron fire has a deadline: at 3,000 jobs a fire's plan and record queued behind up
  to two seconds of status batches, launch cycles and schedules, and their runs reached
  the master that late. It takes the lock with `first()`;
- a user's change (an apply, a delete, an app enabled) is waited for by whoever made
  it: at 5,000 jobs the slowest single apply spent 2.8 s of its 3.9 s in its handler,
  where its schedule waits for the lock behind launch cycles and status batches. It
  takes the lock plainly;
- bulk work (status batches, launch cycles, rollouts, expiry groups) comes back on its
  own and nobody waits on one turn of it. It takes the lock with `last()`.

Each lane goes ahead of the lanes after it; a holder is never interrupted. So that
no lane is shut out, a lane whose waiter has seen `PASSED_AT_MOST` grants to lanes
ahead of it goes next (the earliest such lane first).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import IntEnum
from types import TracebackType

# Grants to lanes ahead that a waiting lane lets go before its own turn. With 8, fires
# in a row made the slowest single apply 5.7 s at 3,000 jobs and 9.2 s at 5,000 (2.1
# and 2.6 s with the lock in arrival order; one run each).
PASSED_AT_MOST = 2


class Lane(IntEnum):
    """The lanes in the order they go: a lower value goes first."""

    FIRE = 0
    CHANGE = 1
    BULK = 2


class StateLock:
    """`async with lock.first():` a fire; `async with lock:` a change; `async with
    lock.last():` bulk work."""

    def __init__(self, passed_at_most: int = PASSED_AT_MOST) -> None:
        if passed_at_most < 1:
            raise ValueError(f"passed_at_most must be at least 1, not {passed_at_most}")
        self._held = False
        self._waiters: dict[Lane, deque[asyncio.Future[None]]] = {lane: deque() for lane in Lane}
        self._passed = dict.fromkeys(Lane, 0)
        self._passed_at_most = passed_at_most

    def locked(self) -> bool:
        return self._held

    async def __aenter__(self) -> None:
        await self._acquire(Lane.CHANGE)

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._release()

    @asynccontextmanager
    async def first(self) -> AsyncIterator[None]:
        """Hold the lock, taken ahead of changes and bulk work."""
        async with self._in(Lane.FIRE):
            yield

    @asynccontextmanager
    async def last(self) -> AsyncIterator[None]:
        """Hold the lock, taken after fires and changes."""
        async with self._in(Lane.BULK):
            yield

    @asynccontextmanager
    async def _in(self, lane: Lane) -> AsyncIterator[None]:
        await self._acquire(lane)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, lane: Lane) -> None:
        if not self._held and not self._waiting():
            self._granted(lane)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not self._has_waiter(lane):
            self._passed[lane] = 0  # counted from when the lane began to wait
        queue = self._waiters[lane]
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

    def _has_waiter(self, lane: Lane) -> bool:
        return any(not w.done() for w in self._waiters[lane])

    def _waiting(self) -> bool:
        return any(self._has_waiter(lane) for lane in Lane)

    def _granted(self, lane: Lane) -> None:
        self._held = True
        self._passed[lane] = 0
        for later in Lane:
            if later > lane and self._has_waiter(later):
                self._passed[later] += 1

    def _release(self) -> None:
        if not self._held:
            raise RuntimeError("the state lock is released but not held")
        self._held = False
        while (lane := self._next_lane()) is not None:
            waiter = self._waiters[lane].popleft()
            if waiter.done():  # cancelled while it waited
                continue
            self._granted(lane)
            waiter.set_result(None)
            return

    def _next_lane(self) -> Lane | None:
        waiting = [lane for lane in Lane if self._waiters[lane]]
        if not waiting:
            return None
        passed_over = [lane for lane in waiting if self._passed[lane] >= self._passed_at_most]
        return min(passed_over or waiting)
