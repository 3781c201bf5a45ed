"""Per-object coordination for one leadership term: locks, wake-ups and event inboxes.

The kopf handlers of one object (change handlers, its refresh timer) and the app
handlers that touch the app's jobs share these through the operator memo:
- `locks` serialises every reconciliation of one key, so a delete never interleaves
  with a schedule of the same job;
- `wake` cuts a refresh timer's wait short (a runtime event arrived, the job's app
  changed) — the timer still runs at most once per its interval, so status writes stay
  rate-bounded however many wake-ups arrive;
- `inbox` holds the scheduling core's `RuntimeEvent`s of each job until that job's
  refresh posts them as Kubernetes Events (bounded: the oldest are dropped first).

Keys are opaque strings (the reconcilers use `CloudJob/<key>` and `CloudApp/<key>`).
Everything here lives on the operator's event loop; nothing is shared across terms.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass, field

from controller.operations import RuntimeEvent

INBOX_LIMIT = 200


@dataclass
class Mailboxes:
    inbox_limit: int = INBOX_LIMIT
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _wakers: dict[str, asyncio.Event] = field(default_factory=dict)
    _inboxes: dict[str, deque[RuntimeEvent]] = field(default_factory=dict)
    _reapply: set[str] = field(default_factory=set)
    dropped: int = 0

    def lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def wake(self, key: str) -> None:
        self._wakers.setdefault(key, asyncio.Event()).set()

    def request_reapply(self, key: str) -> None:
        """Something `key` depends on changed: its next refresh re-applies it, soon."""
        self._reapply.add(key)
        self.wake(key)

    def take_reapply(self, key: str) -> bool:
        if key in self._reapply:
            self._reapply.discard(key)
            return True
        return False

    async def wait(self, key: str, longest: float, stopped: Awaitable[object]) -> bool:
        """Until `key` is woken, `stopped` completes or `longest` seconds pass; True if
        `stopped` completed. `stopped` is cancelled when not done: pass a fresh awaitable
        (a coroutine, or kopf's `stopped.wait()`), never a shared future."""
        waker = self._wakers.setdefault(key, asyncio.Event())
        woken = asyncio.ensure_future(waker.wait())
        stopping = asyncio.ensure_future(stopped)
        try:
            await asyncio.wait({woken, stopping}, timeout=longest, return_when="FIRST_COMPLETED")
            return stopping.done()
        finally:
            for waiter in (woken, stopping):
                waiter.cancel()
            waker.clear()

    def post(self, key: str, event: RuntimeEvent) -> None:
        """Keep `event` for the next refresh of `key`, and wake that refresh."""
        inbox = self._inboxes.setdefault(key, deque())
        if len(inbox) >= self.inbox_limit:
            inbox.popleft()
            self.dropped += 1
        inbox.append(event)
        self.wake(key)

    def take(self, key: str) -> list[RuntimeEvent]:
        """Every event kept for `key`, oldest first, removing them."""
        inbox = self._inboxes.pop(key, None)
        return list(inbox) if inbox else []

    def forget(self, key: str) -> None:
        """Drop what is kept for an object that is gone (its lock stays: it may be held)."""
        self._inboxes.pop(key, None)
        self._wakers.pop(key, None)
        self._reapply.discard(key)
