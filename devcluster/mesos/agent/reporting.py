"""Task status updates of one emulated agent, from recording to acknowledgement.

Every status the agent or an executor produces is recorded on its task and
handed to the agent's status update manager (`status_updates`), which sends
it to the master, with the task's latest state, until the scheduler's
acknowledgement comes back. When the terminal update of a task is
acknowledged the task is forgotten, and so is a terminated executor once none
of its tasks has an unacknowledged update. After re-registering, the master
may list tasks the agent did not report; those the agent does not know either
are answered TASK_DROPPED (TASK_LOST without PARTITION_AWARE),
REASON_RECONCILIATION (`Slave::reregistered` in the Mesos agent). Built by
the Agent and used by every module of the agent package that changes a task.
"""

from __future__ import annotations

import asyncio

from devcluster.mesos.agent.records import (
    TERMINATED,
    AgentBooks,
    AgentFramework,
    AgentTask,
    Executor,
    capabilities,
)
from devcluster.mesos.config import EmulatorConfig
from devcluster.mesos.network import Network
from devcluster.mesos.protocol import (
    JSON,
    REASON_RECONCILIATION,
    SOURCE_AGENT,
    SOURCE_EXECUTOR,
    TASK_DROPPED,
    TASK_LOST,
    is_terminal,
    make_status,
    value,
)
from devcluster.mesos.status_updates import StatusUpdateManager


class StatusReporter:
    def __init__(
        self,
        books: AgentBooks,
        network: Network,
        config: EmulatorConfig,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._books = books
        self._network = network
        self.updates = StatusUpdateManager(
            loop, self._send_update, config.status_update_retry, config.status_update_retry_max
        )

    def _send_update(self, framework_id: str, status: JSON) -> None:
        agent_id = self._books.agent_id
        task_id = value(status["task_id"]) or ""
        latest = self._books.task_state(framework_id, task_id) or str(status["state"])
        self._network.to_master(
            agent_id, lambda m: m.status_update(agent_id, framework_id, status, latest)
        )

    @staticmethod
    def record(task: AgentTask, status: JSON) -> None:
        task.state = str(status["state"])
        task.statuses.append({"state": status["state"], "timestamp": status.get("timestamp")})

    def update(self, task: AgentTask, status: JSON) -> None:
        """A non-terminal status of a task."""
        self.record(task, status)
        self.updates.add(task.framework_id, status)

    def terminal(self, executor: Executor, task: AgentTask, status: JSON) -> None:
        """The task's terminal status: it moves to the executor's terminated tasks."""
        executor.queued.pop(task.task_id, None)
        executor.launched.pop(task.task_id, None)
        executor.terminated[task.task_id] = task
        self.record(task, status)
        self.updates.add(task.framework_id, status)

    def command_update(
        self, executor: Executor, task: AgentTask, state: str, message: str | None = None
    ) -> None:
        """A status of a command task, as the built-in command executor reports it."""
        status = make_status(
            task_id=task.task_id,
            state=state,
            source=SOURCE_EXECUTOR,
            agent_id=self._books.agent_id,
            executor_id=executor.executor_id,
            message=message,
            with_uuid=True,
        )
        if is_terminal(state):
            self.terminal(executor, task, status)
        else:
            self.update(task, status)

    def lost(
        self, framework_id: str, framework_info: JSON, task_id: str, reason: str, message: str
    ) -> None:
        """An update for a task the agent has no record of: TASK_DROPPED
        (TASK_LOST without PARTITION_AWARE), SOURCE_AGENT."""
        partition_aware = "PARTITION_AWARE" in capabilities(framework_info)
        status = make_status(
            task_id=task_id,
            state=TASK_DROPPED if partition_aware else TASK_LOST,
            source=SOURCE_AGENT,
            agent_id=self._books.agent_id,
            reason=reason,
            message=message,
            with_uuid=True,
        )
        self.updates.add(framework_id, status)

    def acknowledge(self, framework_id: str, task_id: str, status_uuid: str) -> None:
        acked = self.updates.acknowledge(framework_id, task_id, status_uuid)
        if acked is None or not is_terminal(str(acked["state"])):
            return
        framework = self._books.frameworks.get(framework_id)
        if framework is None:
            return
        for executor in framework.executors_of(task_id):
            if executor.terminated.pop(task_id, None) is not None:
                self.release_if_done(framework, executor)

    def release_if_done(self, framework: AgentFramework, executor: Executor) -> None:
        """Forget a terminated executor once its tasks' updates are all acknowledged
        (at once if its framework is being shut down)."""
        if executor.state != TERMINATED:
            return
        if not framework.terminating and any(
            self.updates.has_pending(framework.framework_id, t) for t in executor.terminated
        ):
            return
        framework.executors.pop(executor.executor_id, None)
        if not framework.executors:
            self._books.frameworks.pop(framework.framework_id, None)

    def reconcile_unknown_tasks(self, framework_info: JSON, task_ids: list[str]) -> None:
        """The master re-registered us and lists tasks we did not report (`Slave::reregistered`):
        each one still unknown here is over (its launch was lost)."""
        framework_id = value(framework_info.get("id")) or ""
        for task_id in task_ids:
            known = self._books.task_state(framework_id, task_id) is not None
            if known or self.updates.has_pending(framework_id, task_id):
                continue
            self.lost(
                framework_id,
                framework_info,
                task_id,
                REASON_RECONCILIATION,
                "Reconciliation: task unknown to the agent",
            )
