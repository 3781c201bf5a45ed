"""The drift sweep: every object is refreshed, and its desired state re-applied, once per
period — spread evenly over the period, never all at once.

Status follows changes (`controller.dirty`), but some drift has no change to follow:
ZooKeeper state wiped while the controller runs, a status edited by hand, a write that
was lost. The sweep repairs those at a low, steady rate: with N objects and a period
of P seconds it marks about N/P objects per second, in small batches, each with a
re-apply request; the refresher does the rest (and writes only what differs). A new
round takes the objects kopf knows then, so objects created meanwhile join the next
round. `spread` is the pure arithmetic. Built per term by `controller.app`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from controller.dirty import ObjectKind
from controller.reconcilers.refreshing import wait_any

SHORTEST_TICK = 0.2
"""Seconds: batches are at least this far apart (fewer wake-ups with many objects)."""

Objects = Callable[[], Sequence[tuple[ObjectKind, str]]]
Reapply = Callable[[ObjectKind, str], None]


def spread(count: int, period: float, shortest_tick: float = SHORTEST_TICK) -> tuple[int, float]:
    """(objects per batch, seconds between batches) to go through `count` objects in
    `period` seconds, batches at least `shortest_tick` apart."""
    if count <= 0:
        return 0, period
    batches = max(1, min(count, math.floor(period / shortest_tick)))
    return math.ceil(count / batches), period / batches


@dataclass
class DriftSweep:
    """See the module docstring. `reapply` requests a re-apply and marks the object."""

    objects: Objects
    reapply: Reapply
    period: float

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if not await self.round(stop):
                return

    async def round(self, stop: asyncio.Event) -> bool:
        """One round over every object known now; False once `stop` is set."""
        items = list(self.objects())
        batch, tick = spread(len(items), self.period)
        if not items:
            return not await wait_any(stop, None, tick)
        for start in range(0, len(items), batch):
            if await wait_any(stop, None, tick):
                return False
            for kind, key in items[start : start + batch]:
                self.reapply(kind, key)
        return True
