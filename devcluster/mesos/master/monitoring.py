"""Agent health at the emulated master: pings, disconnections, unreachable and gone agents.

The master pings every agent each `agent_ping_timeout`; after
`max_agent_ping_timeouts` pings without a pong the agent is marked
unreachable: its tasks become TASK_UNREACHABLE (TASK_LOST without
PARTITION_AWARE), SOURCE_MASTER, REASON_AGENT_REMOVED, with
`unreachable_time`; its offers are rescinded and every framework gets
`FAILURE {agent_id}`. An agent of the registry that does not re-register within
`agent_reregister_timeout` of a master failover is recorded unreachable and
every framework gets `FAILURE {agent_id}` (the new master never knew its
tasks, so there are no task updates). When an
agent's socket closes, tasks of frameworks without checkpointing become
TASK_LOST (REASON_AGENT_DISCONNECTED) at once. The operator's "mark gone"
turns tasks TASK_GONE_BY_OPERATOR (TASK_LOST / REASON_AGENT_REMOVED without
PARTITION_AWARE) and tells the agent to shut down. Follows the Mesos master's
`SlaveObserver`, `markUnreachable`, `_markUnreachable`, `disconnect` and
`markGone`. Built by the Master; LocalMesos reaches it through the Master.
"""

from __future__ import annotations

import asyncio
import time

from devcluster.mesos.config import EmulatorConfig
from devcluster.mesos.master.allocating import Allocator
from devcluster.mesos.master.forwarding import EventForwarder
from devcluster.mesos.master.records import Framework, MasterBooks, MasterTask, record_status
from devcluster.mesos.network import Network
from devcluster.mesos.protocol import (
    REASON_AGENT_DISCONNECTED,
    REASON_AGENT_REMOVED,
    REASON_AGENT_REMOVED_BY_OPERATOR,
    SOURCE_MASTER,
    TASK_GONE_BY_OPERATOR,
    TASK_LOST,
    TASK_UNREACHABLE,
    ident,
    make_status,
    state_for,
)


class AgentMonitor:
    def __init__(
        self,
        books: MasterBooks,
        events: EventForwarder,
        allocator: Allocator,
        network: Network,
        config: EmulatorConfig,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._books = books
        self._events = events
        self._allocator = allocator
        self._network = network
        self._config = config
        self._loop = loop

    def expect_reregistrations(self) -> None:
        """A new master waits for the registry's agents to re-register (or time out)."""
        registry = self._books.registry
        for agent_id in registry.agents:
            if agent_id in registry.unreachable or agent_id in registry.gone:
                continue
            self._books.recovered[agent_id] = self._loop.call_later(
                self._config.agent_reregister_timeout, self._recovery_timed_out, agent_id
            )

    async def run(self) -> None:
        """The ping loop (the master runs it as a task until it stops)."""
        while True:
            await asyncio.sleep(self._config.agent_ping_timeout)
            for agent in list(self._books.agents.values()):
                if agent.pong:
                    agent.missed_pings = 0
                else:
                    agent.missed_pings += 1
                if agent.missed_pings >= self._config.max_agent_ping_timeouts:
                    self.mark_unreachable(agent.agent_id, "health check timed out")
                    continue
                agent.pong = False
                self._network.to_agent(agent.agent_id, lambda a: a.on_ping())

    def pong(self, agent_id: str) -> None:
        agent = self._books.agents.get(agent_id)
        if agent is not None:
            agent.pong = True

    def _recovery_timed_out(self, agent_id: str) -> None:
        if self._books.recovered.pop(agent_id, None) is None:
            return
        self._books.registry.unreachable[agent_id] = time.time()
        self._agent_lost(agent_id)

    def _agent_lost(self, agent_id: str) -> None:
        for framework in self._books.frameworks.values():
            self._events.send(
                framework, {"type": "FAILURE", "failure": {"agent_id": ident(agent_id)}}
            )

    def agent_exited(self, agent_id: str) -> None:
        """The agent's socket closed (its process died)."""
        books = self._books
        agent = books.agents.get(agent_id)
        if agent is None or not agent.connected:
            return
        agent.connected = False
        agent.active = False
        for offer_id in list(agent.offers):
            self._allocator.rescind_offer(offer_id)
        for framework_id in list({*agent.tasks, *agent.executors}):
            framework = books.frameworks.get(framework_id)
            if framework is None or framework.info.get("checkpoint"):
                continue
            for task in list(agent.tasks.get(framework_id, {}).values()):
                status = make_status(
                    task_id=task.task_id,
                    state=TASK_LOST,
                    source=SOURCE_MASTER,
                    agent_id=agent_id,
                    executor_id=task.executor_id,
                    reason=REASON_AGENT_DISCONNECTED,
                    message=f"Agent {agent.hostname} disconnected",
                )
                record_status(task, status)
                books.remove_task(framework, task)
                self._events.forward(framework, status)
            agent.executors.pop(framework_id, None)
            framework.executors.pop(agent_id, None)

    def mark_unreachable(self, agent_id: str, message: str) -> None:
        books = self._books
        agent = books.agents.pop(agent_id, None)
        if agent is None:
            return
        unreachable_time = time.time()
        books.registry.unreachable[agent_id] = unreachable_time
        nanos = {"nanoseconds": int(unreachable_time * 1e9)}
        for framework_id, tasks in agent.tasks.items():
            framework = books.frameworks.get(framework_id)
            if framework is None:
                continue
            for task in list(tasks.values()):
                status = make_status(
                    task_id=task.task_id,
                    state=state_for(TASK_UNREACHABLE, framework.partition_aware),
                    source=SOURCE_MASTER,
                    agent_id=agent_id,
                    executor_id=task.executor_id,
                    reason=REASON_AGENT_REMOVED,
                    message=message,
                    extra={"unreachable_time": nanos},
                )
                record_status(task, status)
                framework.tasks.pop(task.task_id, None)
                framework.unreachable_tasks[task.task_id] = task
                self._events.forward(framework, status)
        books.forget_executors_on(agent_id, agent.executors)
        for offer_id in list(agent.offers):
            self._allocator.rescind_offer(offer_id)
        self._agent_lost(agent_id)

    def mark_gone(self, agent_id: str) -> None:
        books = self._books
        message = "Agent has been marked gone"
        now = time.time()
        agent = books.agents.pop(agent_id, None)
        if agent is not None:
            for framework_id, tasks in agent.tasks.items():
                framework = books.frameworks.get(framework_id)
                if framework is None:
                    continue
                for task in list(tasks.values()):
                    self._gone_by_operator(framework, task, message)
            books.forget_executors_on(agent_id, agent.executors)
            for offer_id in list(agent.offers):
                self._allocator.rescind_offer(offer_id)
            self._network.to_agent(agent_id, lambda a: a.on_shutdown(message))
            self._agent_lost(agent_id)
        elif agent_id in books.registry.unreachable:
            del books.registry.unreachable[agent_id]
            for framework in books.frameworks.values():
                for task in [
                    t for t in framework.unreachable_tasks.values() if t.agent_id == agent_id
                ]:
                    framework.unreachable_tasks.pop(task.task_id)
                    self._gone_by_operator(framework, task, message)
        elif agent_id in books.recovered:
            books.recovered.pop(agent_id).cancel()
        elif agent_id not in books.registry.gone:
            raise KeyError(f"agent {agent_id} is not known to the master")
        books.registry.gone[agent_id] = now

    def _gone_by_operator(self, framework: Framework, task: MasterTask, message: str) -> None:
        if framework.partition_aware:
            state, reason = TASK_GONE_BY_OPERATOR, REASON_AGENT_REMOVED_BY_OPERATOR
        else:
            state, reason = TASK_LOST, REASON_AGENT_REMOVED
        status = make_status(
            task_id=task.task_id,
            state=state,
            source=SOURCE_MASTER,
            agent_id=task.agent_id,
            executor_id=task.executor_id,
            reason=reason,
            message=message,
        )
        record_status(task, status)
        self._books.remove_task(framework, task)
        self._events.forward(framework, status)
