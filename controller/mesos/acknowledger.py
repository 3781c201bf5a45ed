"""Acknowledgements, sent in the background so that handling events never waits on them.

The status pipeline hands over the acknowledgements of updates whose change is durable
(`send`); `run` sends them in the order they came, a few calls in flight at once (Mesos
has no batched ACKNOWLEDGE, and the order of acknowledgements does not matter: each
names its task and update).
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

from controller.mesos.calls import (
    ACKNOWLEDGEMENTS_IN_FLIGHT,
    MesosCallError,
    MesosCalls,
    refusal_level,
)
from controller.mesos.states import Acknowledgement
from controller.metrics import FrameworkMetrics

log = logging.getLogger(__name__)


class Acknowledger:
    def __init__(
        self,
        mesos: MesosCalls,
        metrics: FrameworkMetrics,
        in_flight: int = ACKNOWLEDGEMENTS_IN_FLIGHT,
    ) -> None:
        self._mesos = mesos
        self._metrics = metrics
        self._in_flight = in_flight
        self._queue: asyncio.Queue[Acknowledgement] = asyncio.Queue()

    def send(self, acks: Iterable[Acknowledgement]) -> None:
        for ack in acks:
            self._queue.put_nowait(ack)
        self._metrics.acks_waiting.set(self._queue.qsize())

    @property
    def waiting(self) -> int:
        return self._queue.qsize()

    async def drained(self) -> None:
        """Every acknowledgement handed over so far has been sent (or has failed)."""
        await self._queue.join()

    async def run(self) -> None:
        await asyncio.gather(*(self._sender() for _ in range(self._in_flight)))

    async def _sender(self) -> None:
        while True:
            ack = await self._queue.get()
            self._metrics.acks_waiting.set(self._queue.qsize())
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
