"""One emulated agent's link to the master: (re-)registration and pings.

The agent registers with a report of what it runs (frameworks, executors, and
tasks with their latest and unacknowledged states), as a Mesos agent's
(re)registration message does. Once registered it resends its unacknowledged
status updates. It answers the master's pings, and re-registers whenever it
is not registered, or has not been pinged for `agent_ping_timeout` x
`max_agent_ping_timeouts` (a partition) — checked every ping timeout. Built
by the Agent, which routes the master's replies here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from devcluster.mesos.agent.records import TERMINATED, AgentBooks
from devcluster.mesos.agent.reporting import StatusReporter
from devcluster.mesos.config import EmulatorConfig
from devcluster.mesos.network import Network
from devcluster.mesos.protocol import JSON


class MasterLink:
    def __init__(
        self,
        books: AgentBooks,
        reporter: StatusReporter,
        network: Network,
        config: EmulatorConfig,
        loop: asyncio.AbstractEventLoop,
        running: Callable[[], bool],
    ) -> None:
        self._books = books
        self._reporter = reporter
        self._network = network
        self._config = config
        self._loop = loop
        self._running = running
        self.registered = False
        self._last_ping = loop.time()
        self._waiters: list[asyncio.Future[None]] = []

    def report(self) -> JSON:
        """What an agent tells a master when it (re-)registers."""
        books = self._books
        updates = self._reporter.updates
        tasks: list[JSON] = []
        executors: list[JSON] = []
        frameworks: list[JSON] = []
        for framework in books.frameworks.values():
            if framework.terminating:
                continue
            frameworks.append(framework.info)
            for executor in framework.executors.values():
                if not executor.is_command and executor.state != TERMINATED:
                    executors.append(executor.info)
                for task in [*executor.live_tasks(), *executor.terminated.values()]:
                    outstanding = updates.outstanding_state(framework.framework_id, task.task_id)
                    tasks.append(
                        {
                            "info": task.info,
                            "framework_id": framework.framework_id,
                            "executor_id": None if task.is_command else task.executor_id,
                            "state": task.state,
                            "status_update_state": outstanding or task.state,
                            "statuses": task.statuses,
                        }
                    )
        return {
            "agent_id": books.agent_id,
            "hostname": books.hostname,
            "port": books.port,
            "spec": books.spec,
            "tasks": tasks,
            "executors": executors,
            "frameworks": frameworks,
        }

    def register(self) -> None:
        report = self.report()
        self._network.to_master(self._books.agent_id, lambda m: m.register_agent(report))

    def master_changed(self) -> None:
        self.registered = False
        self.register()

    def registration(self) -> asyncio.Future[None]:
        """Resolves once the agent is registered with the current master."""
        waiter: asyncio.Future[None] = self._loop.create_future()
        if self.registered:
            waiter.set_result(None)
        else:
            self._waiters.append(waiter)
        return waiter

    def on_registered(self) -> None:
        self.registered = True
        self._last_ping = self._loop.time()
        self._reporter.updates.flush()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    def refused(self, message: str) -> None:
        """The master will not have the agent: whoever waits for registration fails."""
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(RuntimeError(message))
        self._waiters.clear()

    def on_ping(self) -> None:
        self._last_ping = self._loop.time()
        agent_id = self._books.agent_id
        self._network.to_master(agent_id, lambda m: m.pong(agent_id))

    async def watch(self) -> None:
        """Re-register when the master stops pinging (partition) or a new one appears."""
        silence = self._config.agent_ping_timeout * self._config.max_agent_ping_timeouts
        while self._running():
            await asyncio.sleep(self._config.agent_ping_timeout)
            if self._loop.time() - self._last_ping > silence:
                self.registered = False
            if not self.registered:
                self.register()
