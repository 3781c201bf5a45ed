"""The kill book: KILL calls, and which tasks were killed on purpose.

A task killed by an operation (unscheduled, disabled, rescheduled, app removed), by
a status decision (a task nobody records) or by the launch timeout (whose end is
applied before the kill) must not be failed over or put back in ready when its KILLED
update comes: the status pipeline asks `on_purpose`. A daemon task
replaced by the roll-out of a new app version is killed *to be launched again*
(`replace`): it is not on purpose, and the roll-out counts it down until its end is
applied (`replacing`). The book forgets a task once its terminal update is applied,
and keeps at most `limit` ids of each kind (the oldest half goes first) for kills
whose update never comes. Asyncio-loop only.
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
    ROLLOUT = "rollout"
    LAUNCH_TIMEOUT = "launch_timeout"


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
        self._replacing: dict[str, float] = {}

    async def kill(self, task_id: str, agent_id: str | None, why: KillReason) -> None:
        """Note the kill, then send it (a failed call is logged: reconciliation or the
        next update about the task brings it up again)."""
        self._note(self._killed, task_id)
        self._metrics.kills.labels(why.value).inc()
        try:
            await self._mesos.kill(task_id, agent_id)
        except MesosCallError as error:
            log.log(refusal_level(error), "killing %s failed: %s", task_id, error)

    async def replace(self, task_id: str, agent_id: str | None) -> None:
        """Kill a task so that it is launched again; a failed call is forgotten, so the
        roll-out tries again on its next step."""
        self._note(self._replacing, task_id)
        self._metrics.kills.labels(KillReason.ROLLOUT.value).inc()
        try:
            await self._mesos.kill(task_id, agent_id)
        except MesosCallError as error:
            log.warning("replacing %s failed: %s", task_id, error)
            self._replacing.pop(task_id, None)

    def _note(self, book: dict[str, float], task_id: str) -> None:
        book[task_id] = self._clock()
        if len(book) > self._limit:
            for key in sorted(book, key=book.__getitem__)[: self._limit // 2]:
                del book[key]

    def on_purpose(self, task_id: str) -> bool:
        return task_id in self._killed

    def is_replacing(self, task_id: str) -> bool:
        return task_id in self._replacing

    def replacing(self) -> frozenset[str]:
        """Tasks killed to be launched again whose end is not applied yet."""
        return frozenset(self._replacing)

    def forget(self, task_id: str) -> None:
        self._killed.pop(task_id, None)
        self._replacing.pop(task_id, None)
