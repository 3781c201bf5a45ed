"""The kill book: KILL calls, and which tasks were killed on purpose.

A task killed by an operation (unscheduled, disabled, rescheduled, app removed) or by
a status decision (a task nobody records) must not be failed over or put back in ready
when its KILLED update comes: the status pipeline asks `on_purpose`. The book forgets a
task once its terminal update is applied, and keeps at most `limit` ids (the oldest
half goes first) for kills whose update never comes. Asyncio-loop only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from enum import StrEnum

from controller.mesos.calls import MesosCallError, MesosCalls, refusal_level
from controller.metrics import FrameworkMetrics

log = logging.getLogger(__name__)

KILL_BOOK_LIMIT = 10_000


class KillReason(StrEnum):
    """Why a task was killed (the `why` label of `cloudjob_task_kills_total`)."""

    STATUS = "status"
    APP_REMOVED = "app removed"
    UNSCHEDULED = "unscheduled"
    RESCHEDULED = "rescheduled"
    DISABLED = "disabled"


class KillBook:
    def __init__(
        self,
        mesos: MesosCalls,
        metrics: FrameworkMetrics,
        *,
        limit: int = KILL_BOOK_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._mesos = mesos
        self._metrics = metrics
        self._limit = limit
        self._clock = clock
        self._killed: dict[str, float] = {}

    async def kill(self, task_id: str, agent_id: str | None, why: KillReason) -> None:
        """Note the kill, then send it (a failed call is logged: reconciliation or the
        next update about the task brings it up again)."""
        self._killed[task_id] = self._clock()
        if len(self._killed) > self._limit:
            oldest = sorted(self._killed, key=self._killed.__getitem__)[: self._limit // 2]
            for key in oldest:
                del self._killed[key]
        self._metrics.kills.labels(why.value).inc()
        try:
            await self._mesos.kill(task_id, agent_id)
        except MesosCallError as error:
            log.log(refusal_level(error), "killing %s failed: %s", task_id, error)

    def on_purpose(self, task_id: str) -> bool:
        return task_id in self._killed

    def forget(self, task_id: str) -> None:
        self._killed.pop(task_id, None)
