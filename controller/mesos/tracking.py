"""What the framework remembers, in memory, of the tasks it records as running.

ZooKeeper holds each running task's last state; `TrackedTasks` holds the rest the
status state machine needs (when the state began, whether the task ever started, a
daemon's idleness, the last update's uuid). It is filled from the store when a term
starts and from every launch, changed by the status pipeline (and restored when a
batch could not be persisted), and read by the unreachable-task sweep, the launch
timeout and the runtime facts. Asyncio-loop only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from controller.mesos.states import ADRIFT_STATES, STARTED_STATES, TaskState
from controller.mesos.statuses import TrackedTask
from controller.mesos.tasks import TaskId, TaskIdError
from controller.state import RunningTask

log = logging.getLogger(__name__)


def tracked_from(task: RunningTask) -> TrackedTask | None:
    """What memory starts from for a recorded task; None for a foreign task id."""
    try:
        task_id = TaskId.parse(task.task_id)
    except TaskIdError:
        log.warning("running task %s has a foreign id; it is not tracked", task.task_id)
        return None
    state = TaskState.parse(task.state) or TaskState.STAGING
    return TrackedTask(
        task_id=task_id,
        hostname=task.hostname,
        state=state,
        since=task.launched_at,
        started=state in STARTED_STATES,
    )


class TrackedTasks:
    def __init__(self) -> None:
        self._tasks: dict[str, TrackedTask] = {}

    def adopt(self, task: RunningTask) -> None:
        """Start tracking a task recorded as running (loaded or just launched)."""
        if (tracked := tracked_from(task)) is not None:
            self._tasks[task.task_id] = tracked

    def get(self, task_id: str) -> TrackedTask | None:
        return self._tasks.get(task_id)

    def of(self, task: RunningTask) -> TrackedTask | None:
        """Memory of a recorded task, or what it starts from."""
        return self._tasks.get(task.task_id) or tracked_from(task)

    def put(self, task: TrackedTask) -> None:
        self._tasks[task.task_id.value] = task

    def restore(self, previous: Mapping[str, TrackedTask | None]) -> None:
        """Put back what memory held before (None: nothing)."""
        for task_id, task in previous.items():
            if task is None:
                self._tasks.pop(task_id, None)
            else:
                self._tasks[task_id] = task

    def forget(self, task_id: str) -> None:
        self._tasks.pop(task_id, None)

    def adrift(self) -> list[TrackedTask]:
        """Tasks last known unreachable or unknown."""
        return [t for t in self._tasks.values() if t.state in ADRIFT_STATES]

    def all(self) -> list[TrackedTask]:
        return list(self._tasks.values())
