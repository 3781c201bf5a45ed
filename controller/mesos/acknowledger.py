"""Acknowledgements, sent in the background so that handling events never waits on them.

The status pipeline hands over the acknowledgements of updates whose change is durable
(`send`); `run` sends what is waiting in batches of up to `BATCH`, each pipelined on
one connection (Mesos has no batched ACKNOWLEDGE call, and an agent sends a task's next
update only once the last is acknowledged, so at hundreds of updates a second one call
at a time falls behind), `ACKNOWLEDGEMENT_PIPELINES` batches in flight at once. An
update resent by its agent before its first acknowledgement went out is acknowledged
once. An acknowledgement that fails, or is still waiting when the term ends, is not
lost: the agent resends an unacknowledged update until one arrives, to this leader or
the next. Asyncio-loop only; one per leadership term, run by the engine's background.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from controller.mesos.calls import (
    ACKNOWLEDGEMENT_PIPELINES,
    MesosCallError,
    MesosCalls,
    refusal_level,
)
from controller.mesos.states import Acknowledgement
from controller.metrics import FrameworkMetrics

log = logging.getLogger(__name__)

# Acknowledgements written back to back on one connection at most (small enough that
# the requests and answers of a batch never fill the sockets' buffers).
BATCH = 100


class Acknowledger:
    def __init__(self, mesos: MesosCalls, metrics: FrameworkMetrics) -> None:
        self._mesos = mesos
        self._metrics = metrics
        self._waiting: dict[Acknowledgement, None] = {}
        self._more = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._sending = 0

    def send(self, acks: Iterable[Acknowledgement]) -> None:
        for ack in acks:
            self._waiting[ack] = None
        if self._waiting:
            self._idle.clear()
            self._more.set()
        self._metrics.acks_waiting.set(len(self._waiting))

    async def drained(self) -> None:
        """Every acknowledgement handed over so far has been sent (or has failed)."""
        await self._idle.wait()

    async def run(self) -> None:
        await asyncio.gather(*(self._sender() for _ in range(ACKNOWLEDGEMENT_PIPELINES)))

    async def _sender(self) -> None:
        while True:
            await self._more.wait()
            batch = list(self._waiting)[:BATCH]
            for ack in batch:
                del self._waiting[ack]
            if not self._waiting:
                self._more.clear()
            self._metrics.acks_waiting.set(len(self._waiting))
            if not batch:
                continue
            self._sending += 1
            try:
                await self._mesos.acknowledge(batch)
            except MesosCallError as error:
                log.log(
                    refusal_level(error),
                    "acknowledging %d update(s) failed (Mesos will resend them): %s",
                    len(batch),
                    error,
                )
            finally:
                self._sending -= 1
                if not self._sending and not self._waiting:
                    self._idle.set()
