"""Acknowledgements, sent in the background so that handling events never waits on them.

The status pipeline hands over the acknowledgements of updates whose change is durable
(`send`); `run` sends them in order, one call each (Mesos has no batched ACKNOWLEDGE).
With a run every few milliseconds, two or three updates per task would otherwise hold
the event inbox (and the offers behind them) for as long as their calls take. An
acknowledgement that fails, or is still queued when the term ends, is not lost: the
agent resends an unacknowledged update until one arrives, to this leader or the next.
Asyncio-loop only; one per leadership term, run by the engine's background.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from controller.mesos.calls import MesosCallError, MesosCalls, refusal_level
from controller.mesos.states import Acknowledgement

log = logging.getLogger(__name__)


class Acknowledger:
    def __init__(self, mesos: MesosCalls) -> None:
        self._mesos = mesos
        self._queue: asyncio.Queue[Acknowledgement] = asyncio.Queue()

    def send(self, acks: Iterable[Acknowledgement]) -> None:
        for ack in acks:
            self._queue.put_nowait(ack)

    @property
    def waiting(self) -> int:
        return self._queue.qsize()

    async def drained(self) -> None:
        """Every acknowledgement handed over so far has been sent (or has failed)."""
        await self._queue.join()

    async def run(self) -> None:
        while True:
            ack = await self._queue.get()
            try:
                await self._mesos.acknowledge(ack)
            except MesosCallError as error:
                log.log(
                    refusal_level(error),
                    "acknowledging an update failed (Mesos will resend it): %s",
                    error,
                )
            finally:
                self._queue.task_done()
