"""The executor registry: which executors of this framework run where, per app.

Removing an app must send STOP to each of its executors, including idle ones no task
of ours names any more. The registry learns executors from the running tasks (loaded
or launched), from offers (`executor_ids`) and from live tasks' status updates, and
forgets them when their agent or the executor is lost or STOP was sent. Asyncio-loop
only; the engine owns it, the launch cycle and the status pipeline report to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from controller.mesos.offers import HeldOffer
from controller.mesos.states import LIVE_STATES, StatusUpdate
from controller.mesos.tasks import TaskIdError, executor_id, parse_executor_id
from controller.operations import ExecutorRuntime
from controller.state import RunningTask


@dataclass(frozen=True)
class KnownExecutor:
    app_key: str
    agent_id: str
    hostname: str


def app_of(executor: str) -> str | None:
    """The app of an executor id of this framework; None for a foreign one."""
    try:
        return parse_executor_id(executor)[0]
    except TaskIdError:
        return None


class ExecutorRegistry:
    def __init__(self) -> None:
        self._executors: dict[str, KnownExecutor] = {}

    def task_recorded(self, task: RunningTask) -> None:
        if task.executor_id:
            try:
                app_key, agent_id = parse_executor_id(task.executor_id)
            except TaskIdError:
                return
            self._executors[task.executor_id] = KnownExecutor(app_key, agent_id, task.hostname)

    def offered(self, offer: HeldOffer) -> None:
        for app_key in offer.executor_apps:
            self._executors.setdefault(
                executor_id(app_key, offer.agent_id),
                KnownExecutor(app_key, offer.agent_id, offer.hostname),
            )

    def status_received(self, update: StatusUpdate) -> None:
        """A live task's update names its executor: one STOP must reach it on app removal."""
        executor, agent = update.executor_id, update.agent_id
        if not executor or not agent or update.state not in LIVE_STATES:
            return
        if (app_key := app_of(executor)) is not None:
            self._executors.setdefault(executor, KnownExecutor(app_key, agent, ""))

    def agent_lost(self, agent_id: str) -> None:
        for key in [k for k, e in self._executors.items() if e.agent_id == agent_id]:
            del self._executors[key]

    def forget(self, executor: str) -> None:
        self._executors.pop(executor, None)

    def of_app(self, app_key: str) -> dict[str, str]:
        """Executor id → agent id of the app's known executors."""
        return {k: e.agent_id for k, e in self._executors.items() if e.app_key == app_key}

    def runtime(self, app_key: str, running: Iterable[RunningTask]) -> list[ExecutorRuntime]:
        """The app's known executors with how many recorded tasks each runs."""
        counts: dict[str, int] = {}
        for task in running:
            if task.executor_id:
                counts[task.executor_id] = counts.get(task.executor_id, 0) + 1
        found = sorted(
            (e.agent_id, e.hostname, key, counts.get(key, 0))
            for key, e in self._executors.items()
            if e.app_key == app_key
        )
        return [
            ExecutorRuntime(agent_id=agent, hostname=host, executor_id=executor, tasks=tasks)
            for agent, host, executor, tasks in found
        ]
