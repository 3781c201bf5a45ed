"""The executor registry: which executors of this framework run where, per app version.

Removing an app must send STOP to each of its executors, including idle ones no task
of ours names any more, and an executor of an outdated app version is shut down once
it has no task (`rollout`). The registry learns executors from the running tasks
(loaded or launched), from offers (`executor_ids`), from live tasks' status updates and
from the master's list after each subscription,
and forgets them when their agent or the executor is lost, or STOP or SHUTDOWN was
sent. Asyncio-loop only; the engine owns it, the launch cycle and the status pipeline
report to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from controller.mesos.offers import HeldOffer
from controller.mesos.states import LIVE_STATES, StatusUpdate
from controller.mesos.tasks import AppVersion, ExecutorId, TaskIdError
from controller.operations import ExecutorRuntime
from controller.state import RunningTask


@dataclass(frozen=True)
class KnownExecutor:
    executor: ExecutorId
    hostname: str

    @property
    def app_key(self) -> str:
        return self.executor.app_key

    @property
    def agent_id(self) -> str:
        return self.executor.agent_id


def parsed(executor: str) -> ExecutorId | None:
    """An executor id of this framework, parsed; None for a foreign one."""
    try:
        return ExecutorId.parse(executor)
    except TaskIdError:
        return None


def app_of(executor: str) -> str | None:
    """The app of an executor id of this framework; None for a foreign one."""
    found = parsed(executor)
    return found.app_key if found is not None else None


class ExecutorRegistry:
    def __init__(self) -> None:
        self._executors: dict[str, KnownExecutor] = {}

    def task_recorded(self, task: RunningTask) -> None:
        if task.executor_id and (executor := parsed(task.executor_id)) is not None:
            self._executors[task.executor_id] = KnownExecutor(executor, task.hostname)

    def offered(self, offer: HeldOffer) -> None:
        for executor in offer.executors:
            self._executors.setdefault(executor.value, KnownExecutor(executor, offer.hostname))

    def status_received(self, update: StatusUpdate) -> None:
        """A live task's update names its executor: one STOP must reach it on app removal."""
        executor, agent = update.executor_id, update.agent_id
        if not executor or not agent or update.state not in LIVE_STATES:
            return
        if (known := parsed(executor)) is not None:
            self._executors.setdefault(executor, KnownExecutor(known, ""))

    def listed(self, executor: str) -> None:
        """The master lists the executor for this framework (an idle one an earlier
        leader started may be named nowhere else)."""
        if (known := parsed(executor)) is not None:
            self._executors.setdefault(executor, KnownExecutor(known, ""))

    def agent_lost(self, agent_id: str) -> None:
        for key in [k for k, e in self._executors.items() if e.agent_id == agent_id]:
            del self._executors[key]

    def forget(self, executor: str) -> None:
        self._executors.pop(executor, None)

    def known(self) -> list[ExecutorId]:
        return sorted((e.executor for e in self._executors.values()), key=str)

    def versions(self) -> set[AppVersion]:
        """The app versions of the known executors (one per app per agent: few)."""
        return {e.executor.version for e in self._executors.values()}

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
