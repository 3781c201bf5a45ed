"""Agent (re-)registration at the emulated master.

An agent registers with a report of its frameworks, executors and tasks. An
agent marked gone is told to shut down. A known agent (back after a short
partition or an agent restart) is reconciled (`Master::reconcileKnownSlave`):
tasks the master has on it that it did not report are reconciled through the
agent (which answers TASK_DROPPED, or TASK_LOST without PARTITION_AWARE, for
those it does not know), executors it did not report are removed and their
resources released, and KILLs it may have missed are sent again. An unknown
agent (new, unreachable before, or one of the registry's agents after a
master failover) is added with what it reports: frameworks the master does
not know come back as `recovered`, and — except after a master failover —
each task is announced with an UPDATE (SOURCE_MASTER,
REASON_AGENT_REREGISTERED). Built by the Master, which routes agents'
registrations here.
"""

from __future__ import annotations

import logging
import time

from devcluster.mesos.master.allocating import Allocator
from devcluster.mesos.master.forwarding import EventForwarder
from devcluster.mesos.master.records import AgentRecord, Framework, MasterBooks, MasterTask
from devcluster.mesos.master.relaying import Relay
from devcluster.mesos.network import Network
from devcluster.mesos.protocol import (
    JSON,
    REASON_AGENT_REREGISTERED,
    SOURCE_MASTER,
    is_terminal,
    make_status,
    value,
)
from devcluster.mesos.resources import Resources

log = logging.getLogger(__name__)


class AgentRegistrar:
    def __init__(
        self,
        books: MasterBooks,
        events: EventForwarder,
        allocator: Allocator,
        relay: Relay,
        network: Network,
    ) -> None:
        self._books = books
        self._events = events
        self._allocator = allocator
        self._relay = relay
        self._network = network

    def register_agent(self, report: JSON) -> None:
        books = self._books
        agent_id = str(report["agent_id"])
        if agent_id in books.registry.gone:
            self._network.to_agent(agent_id, lambda a: a.on_shutdown("Agent has been marked gone"))
            return
        existing = books.agents.get(agent_id)
        if existing is not None:
            existing.connected = True
            existing.active = True
            existing.missed_pings = 0
            existing.pong = True
            self._reconcile_known_agent(existing, report)
            self._network.to_agent(agent_id, lambda a: a.on_registered())
            self._allocator.allocate_soon()
            return
        was_unreachable = agent_id in books.registry.unreachable
        was_recovering = agent_id in books.recovered
        now = time.time()
        agent = AgentRecord(
            agent_id, str(report["hostname"]), int(report["port"]), report["spec"], now
        )
        if was_unreachable or was_recovering:
            agent.reregistered_time = now
        books.agents[agent_id] = agent
        timer = books.recovered.pop(agent_id, None)
        if timer is not None:
            timer.cancel()
        books.registry.unreachable.pop(agent_id, None)
        books.registry.agents[agent_id] = {"hostname": agent.hostname}
        self._adopt_frameworks(agent_id, report, now)
        self._adopt_executors(agent, report)
        for reported in report["tasks"]:
            framework = books.frameworks.get(str(reported["framework_id"]))
            if framework is None:
                continue
            task = self._adopt_task(framework, agent, reported)
            if not was_recovering:
                message = (
                    "Unreachable agent re-reregistered"
                    if was_unreachable
                    else "Unknown agent reregistered"
                )
                self._events.forward(
                    framework,
                    make_status(
                        task_id=task.task_id,
                        state=task.state,
                        source=SOURCE_MASTER,
                        agent_id=agent_id,
                        executor_id=task.executor_id,
                        reason=REASON_AGENT_REREGISTERED,
                        message=message,
                    ),
                )
        self._network.to_agent(agent_id, lambda a: a.on_registered())
        self._allocator.allocate_soon()

    def _adopt_frameworks(self, agent_id: str, report: JSON, now: float) -> None:
        books = self._books
        for framework_info in report["frameworks"]:
            framework_id = value(framework_info.get("id")) or ""
            if framework_id in books.completed_frameworks:
                self._shutdown_framework_on(agent_id, framework_id)
            elif framework_id not in books.frameworks:
                books.frameworks[framework_id] = Framework(
                    framework_id, framework_info, now, recovered=True
                )

    def _adopt_executors(self, agent: AgentRecord, report: JSON) -> None:
        for executor in report["executors"]:
            framework_id = value(executor.get("framework_id")) or ""
            framework = self._books.frameworks.get(framework_id)
            if framework is None:
                continue
            executor_id = value(executor["executor_id"]) or ""
            framework.executors.setdefault(agent.agent_id, {})[executor_id] = executor
            agent.executors.setdefault(framework_id, {})[executor_id] = executor

    @staticmethod
    def _adopt_task(framework: Framework, agent: AgentRecord, reported: JSON) -> MasterTask:
        task = MasterTask(
            reported["info"],
            framework.framework_id,
            agent.agent_id,
            reported["executor_id"],
            Resources.parse(reported["info"].get("resources")),
            state=str(reported["state"]),
            status_update_state=str(reported["status_update_state"]),
            statuses=list(reported["statuses"]),
        )
        framework.unreachable_tasks.pop(task.task_id, None)
        framework.tasks[task.task_id] = task
        agent.tasks.setdefault(framework.framework_id, {})[task.task_id] = task
        return task

    def _reconcile_known_agent(self, agent: AgentRecord, report: JSON) -> None:
        """A known agent re-registered (after a disconnection or a restart);
        `Master::reconcileKnownSlave`. Tasks it did not report are reconciled
        through it (it answers TASK_DROPPED/TASK_LOST for those it does not
        know), executors it did not report are removed (their resources
        released), and KILLs it may have missed are sent again."""
        agent_id = agent.agent_id
        reported = {
            (str(t["framework_id"]), value(t["info"].get("task_id")) or ""): str(t["state"])
            for t in report["tasks"]
        }
        for framework_id, tasks in agent.tasks.items():
            framework = self._books.frameworks.get(framework_id)
            missing = [task_id for task_id in tasks if (framework_id, task_id) not in reported]
            if framework is not None and missing:
                self._reconcile_through_agent(agent_id, framework.info, missing)
        executors = {
            (value(e.get("framework_id")) or "", value(e.get("executor_id")) or "")
            for e in report["executors"]
        }
        for framework_id, known in agent.executors.items():
            for executor_id in [e for e in known if (framework_id, e) not in executors]:
                log.warning(
                    "executor %s of framework %s is unknown to re-registered agent %s",
                    executor_id,
                    framework_id,
                    agent_id,
                )
                del known[executor_id]
                framework = self._books.frameworks.get(framework_id)
                if framework is not None:
                    framework.executors.get(agent_id, {}).pop(executor_id, None)
        for framework_id, task_id in sorted(agent.killed_tasks):
            state = reported.get((framework_id, task_id))
            if state is not None and not is_terminal(state):
                self._relay.kill_on(agent_id, framework_id, task_id, None)

    def _reconcile_through_agent(
        self, agent_id: str, framework_info: JSON, task_ids: list[str]
    ) -> None:
        self._network.to_agent(
            agent_id, lambda a: a.reconcile_unknown_tasks(framework_info, task_ids)
        )

    def _shutdown_framework_on(self, agent_id: str, framework_id: str) -> None:
        self._network.to_agent(agent_id, lambda a: a.shutdown_framework(framework_id))
