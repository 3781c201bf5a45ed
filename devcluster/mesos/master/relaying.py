"""What the emulated master passes between schedulers and agents.

Scheduler to agent: KILL (an unknown task is answered as an explicit
reconciliation would; a KILL naming another agent than the task's is
ignored; the kill is remembered and sent again when the agent re-registers),
SHUTDOWN of an executor, ACKNOWLEDGE (the master drops a task once its
terminal update is acknowledged) and MESSAGE. Agent to scheduler: status
updates (the task's latest state is recorded, then the UPDATE is forwarded),
executor messages and executor exits (`FAILURE {agent_id, executor_id,
status}`). Messages to an agent that is not connected are dropped, as Mesos
drops them. Follows `Master::kill`, `acknowledge`, `message`, `shutdown`,
`statusUpdate` and `exitedExecutor` in the Mesos master. Built by the Master,
which routes those scheduler calls and agent messages here.
"""

from __future__ import annotations

import logging

from devcluster.mesos.master.forwarding import EventForwarder
from devcluster.mesos.master.reconciling import Reconciler
from devcluster.mesos.master.records import Framework, MasterBooks
from devcluster.mesos.network import Network
from devcluster.mesos.protocol import JSON, ident, is_terminal, value

log = logging.getLogger(__name__)


class Relay:
    def __init__(
        self,
        books: MasterBooks,
        events: EventForwarder,
        reconciler: Reconciler,
        network: Network,
    ) -> None:
        self._books = books
        self._events = events
        self._reconciler = reconciler
        self._network = network

    # ------------------------------------------------- scheduler -> agent

    def kill(self, framework: Framework, call: JSON) -> None:
        kill = call["kill"]
        task_id = value(kill["task_id"]) or ""
        agent_id = value(kill.get("agent_id"))
        task = framework.tasks.get(task_id)
        if task is None:
            self._reconciler.answer(framework, [(task_id, agent_id)])
            return
        agent = self._books.agents.get(task.agent_id)
        if agent is None:
            return
        if agent_id is not None and agent_id != task.agent_id:
            log.warning(
                "not killing task %s: it runs on agent %s, not %s", task_id, task.agent_id, agent_id
            )
            return
        agent.killed_tasks.add((framework.framework_id, task_id))
        if agent.connected:
            self.kill_on(agent.agent_id, framework.framework_id, task_id, kill.get("kill_policy"))

    def kill_on(
        self, agent_id: str, framework_id: str, task_id: str, kill_policy: JSON | None
    ) -> None:
        self._network.to_agent(agent_id, lambda a: a.kill_task(framework_id, task_id, kill_policy))

    def shutdown_executor(self, framework: Framework, call: JSON) -> None:
        shutdown = call["shutdown"]
        agent_id = value(shutdown["agent_id"]) or ""
        executor_id = value(shutdown["executor_id"]) or ""
        if agent_id not in self._books.agents:
            return
        framework_id = framework.framework_id
        self._network.to_agent(agent_id, lambda a: a.shutdown_executor(framework_id, executor_id))

    def acknowledge(self, framework: Framework, call: JSON) -> None:
        ack = call["acknowledge"]
        agent_id = value(ack["agent_id"]) or ""
        task_id = value(ack["task_id"]) or ""
        status_uuid = str(ack["uuid"])
        agent = self._books.agents.get(agent_id)
        if agent is None or not agent.connected:
            return
        task = framework.tasks.get(task_id)
        if (
            task is not None
            and task.status_update_uuid == status_uuid
            and task.status_update_state is not None
            and is_terminal(task.status_update_state)
        ):
            self._books.remove_task(framework, task)
        framework_id = framework.framework_id
        self._network.to_agent(
            agent_id, lambda a: a.acknowledge(framework_id, task_id, status_uuid)
        )

    def message(self, framework: Framework, call: JSON) -> None:
        message = call["message"]
        agent_id = value(message["agent_id"]) or ""
        executor_id = value(message["executor_id"]) or ""
        data = str(message["data"])
        agent = self._books.agents.get(agent_id)
        if agent is None or not agent.connected:
            return
        framework_id = framework.framework_id
        self._network.to_agent(
            agent_id, lambda a: a.framework_message(framework_id, executor_id, data)
        )

    # ------------------------------------------------- agent -> scheduler

    def status_update(
        self, agent_id: str, framework_id: str, status: JSON, latest_state: str
    ) -> None:
        if agent_id not in self._books.agents:
            return
        framework = self._books.frameworks.get(framework_id)
        if framework is None:
            return
        task = framework.tasks.get(value(status["task_id"]) or "")
        if task is not None:
            task.state = latest_state
            task.status_update_state = str(status["state"])
            task.status_update_uuid = status.get("uuid")
            task.statuses.append({"state": status["state"], "timestamp": status.get("timestamp")})
        self._events.forward(framework, status)

    def executor_message(
        self, agent_id: str, framework_id: str, executor_id: str, data: str
    ) -> None:
        framework = self._books.frameworks.get(framework_id)
        if framework is None or agent_id not in self._books.agents:
            return
        self._events.send(
            framework,
            {
                "type": "MESSAGE",
                "message": {
                    "agent_id": ident(agent_id),
                    "executor_id": ident(executor_id),
                    "data": data,
                },
            },
        )

    def exited_executor(
        self, agent_id: str, framework_id: str, executor_id: str, status: int | None
    ) -> None:
        agent = self._books.agents.get(agent_id)
        if agent is not None:
            agent.executors.get(framework_id, {}).pop(executor_id, None)
        framework = self._books.frameworks.get(framework_id)
        if framework is None:
            return
        framework.executors.get(agent_id, {}).pop(executor_id, None)
        # pymesos reads `status` whenever `executor_id` is present.
        failure = {
            "agent_id": ident(agent_id),
            "executor_id": ident(executor_id),
            "status": status if status is not None else 1 << 8,
        }
        self._events.send(framework, {"type": "FAILURE", "failure": failure})
