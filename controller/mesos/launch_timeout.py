"""Launches that never got going: which tasks are overdue, and the loop that asks.

A launch the master accepted can still be lost on its way to the agent: the master
keeps the task TASK_STAGING, reconciliation keeps saying so, and no other update ever
comes. A task whose last known state (or its launch, with no update since) has been
STAGING or STARTING for longer than `launch_timeout_seconds` is overdue: `overdue` is
the pure decision. `LaunchTimeout` (armed by the engine for the term) asks it
periodically while subscribed and hands what is due to the status pipeline's
`expire_launches`, which (once no reconciliation is open) ends those tasks as dropped
launches, their shards re-queued, and kills them
(docs/semantics.md#launches-that-never-get-going). A timeout of 0 turns it off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from controller.mesos.background import Background
from controller.mesos.states import TaskState
from controller.mesos.statuses import TrackedTask

LAUNCHING_STATES = frozenset({TaskState.STAGING, TaskState.STARTING})
# Checks per timeout at least: a task launched just after a check is ended at most a
# quarter of the timeout late.
CHECK_FRACTION = 4


@dataclass(frozen=True)
class LaunchVerdict:
    # Tasks launching for longer than the timeout.
    overdue: list[TrackedTask] = field(default_factory=list)
    # Seconds until the next launching task is overdue (None: no task is launching).
    recheck_in: float | None = None


def overdue(tasks: Iterable[TrackedTask], now: datetime, timeout: float) -> LaunchVerdict:
    """The tasks staging or starting for at least `timeout` seconds."""
    due: list[TrackedTask] = []
    recheck: float | None = None
    for task in tasks:
        if task.state not in LAUNCHING_STATES:
            continue
        left = timeout - (now - task.since).total_seconds()
        if left <= 0:
            due.append(task)
        else:
            recheck = left if recheck is None else min(recheck, left)
    return LaunchVerdict(due, recheck)


Expire = Callable[[list[TrackedTask], datetime, float], Awaitable[None]]
"""Ends the overdue tasks, given the time and the timeout (the status pipeline's
`expire_launches`)."""


class LaunchTimeout:
    def __init__(
        self,
        timeout: float,
        *,
        tasks: Callable[[], Iterable[TrackedTask]],
        subscribed: Callable[[], bool],
        expire: Expire,
    ) -> None:
        self._timeout = timeout
        self._tasks = tasks
        self._subscribed = subscribed
        self._expire = expire

    def start(self, background: Background) -> None:
        if self._timeout > 0:
            background.spawn(self._watch(), "launch timeout")

    async def _watch(self) -> None:
        longest = max(0.5, self._timeout / CHECK_FRACTION)
        while True:
            now = datetime.now(UTC)
            verdict = overdue(self._tasks(), now, self._timeout)
            # Without a subscription the KILL could not be sent: a task left running
            # would run beside its relaunch. Its turn comes once subscribed again.
            if verdict.overdue and self._subscribed():
                await self._expire(verdict.overdue, now, self._timeout)
            wait = longest if verdict.recheck_in is None else min(longest, verdict.recheck_in)
            await asyncio.sleep(max(0.1, wait))
