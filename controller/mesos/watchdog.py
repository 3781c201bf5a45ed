"""The heartbeat watchdog: notices when the master has gone quiet.

The master sends a HEARTBEAT every `heartbeat_interval_seconds` (it says how often
when the framework subscribes). pymesos does not notice a connection that stays open
but carries nothing, so after `heartbeat_missed_limit` intervals without any event
the engine is told (`on_silence`), and it subscribes again. Restarted on every
subscription with the interval the master gave.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from controller.mesos.background import Background


class HeartbeatWatchdog:
    def __init__(
        self,
        background: Background,
        *,
        missed_limit: int,
        silent_for: Callable[[], float],
        on_silence: Callable[[float, float], Awaitable[None]],
    ) -> None:
        self._background = background
        self._missed_limit = missed_limit
        self._silent_for = silent_for
        self._on_silence = on_silence
        self._task: asyncio.Task[None] | None = None

    def restart(self, interval: float) -> None:
        if self._task is not None:
            self._task.cancel()
        self._task = self._background.spawn(self._watch(interval), "heartbeat watchdog")

    async def _watch(self, interval: float) -> None:
        limit = self._missed_limit * interval
        while True:
            silent = self._silent_for()
            if silent <= limit:
                await asyncio.sleep(limit - silent + interval / 10)
                continue
            await self._on_silence(silent, interval)
            return
