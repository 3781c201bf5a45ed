"""When to give up on tasks that are unreachable or unknown: a timer, nothing more.

A task whose agent is partitioned away is reported UNREACHABLE (or UNKNOWN) and kept
as running, since it may come back. Once one is tracked, `UnreachableExpiry` arms one
timer at a quarter of the grace; when it fires it runs the sweep it was given (the
status pipeline's `expire_unreachable`, which turns tasks adrift for longer than the
grace into lost ones), and re-arms while the sweep reports tasks still adrift. A grace
of 0 turns expiry off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from controller.mesos.background import Background

Sweep = Callable[[], Awaitable[bool]]
"""Expires what is due; True while tasks are still adrift."""


class UnreachableExpiry:
    def __init__(self, grace: float, background: Background) -> None:
        self.grace = grace
        self._background = background
        self._timer: asyncio.TimerHandle | None = None

    def schedule(self, sweep: Sweep) -> None:
        """A task is adrift: make sure a sweep comes."""
        if self._timer is not None or self.grace <= 0:
            return

        def fire() -> None:
            self._timer = None
            self._background.spawn(self._run(sweep), "unreachable tasks")

        self._timer = self._background.call_later(max(1.0, self.grace / 4), fire)

    async def _run(self, sweep: Sweep) -> None:
        if await sweep():
            self.schedule(sweep)
