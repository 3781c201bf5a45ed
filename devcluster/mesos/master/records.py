"""What the emulated master knows: frameworks, agents, offers and tasks.

`MasterBooks` holds the master's in-memory tables (lost when it crashes) and
the agent `Registry` it was handed (kept across master restarts, as Mesos's
replicated log keeps it), plus the bookkeeping every part of the master
shares: recording a status on a task, moving a task to the completed ones,
withdrawing an offer. Nothing here sends events or talks to agents. Every
module of the master package works on one `MasterBooks`; `devcluster.mesos.state`
renders it as `GET /state`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from devcluster.mesos.config import AgentSpec
from devcluster.mesos.protocol import JSON, TASK_STAGING, is_terminal, value
from devcluster.mesos.resources import Resources
from devcluster.mesos.streams import EventStream


@dataclass
class MasterTask:
    info: JSON
    framework_id: str
    agent_id: str
    executor_id: str | None
    resources: Resources
    state: str = TASK_STAGING
    status_update_state: str | None = None
    status_update_uuid: str | None = None
    statuses: list[JSON] = field(default_factory=list)

    @property
    def task_id(self) -> str:
        return value(self.info.get("task_id")) or ""

    def reported_state(self) -> str:
        return self.status_update_state or self.state


@dataclass
class Offer:
    offer_id: str
    framework_id: str
    agent_id: str
    resources: Resources


@dataclass
class Framework:
    framework_id: str
    info: JSON
    registered_time: float
    stream: EventStream | None = None
    active: bool = False
    recovered: bool = False
    tasks: dict[str, MasterTask] = field(default_factory=dict)
    unreachable_tasks: dict[str, MasterTask] = field(default_factory=dict)
    completed_tasks: deque[MasterTask] = field(default_factory=lambda: deque(maxlen=1000))
    executors: dict[str, dict[str, JSON]] = field(default_factory=dict)
    offers: set[str] = field(default_factory=set)
    filters: dict[str, tuple[float, Resources]] = field(default_factory=dict)
    suppressed: bool = False
    failover_timer: asyncio.TimerHandle | None = None
    heartbeat: asyncio.Task[None] | None = None
    unregistered_time: float | None = None
    held_update: JSON | None = None
    held_timer: asyncio.TimerHandle | None = None

    @property
    def connected(self) -> bool:
        return self.stream is not None and not self.stream.closed

    @property
    def capabilities(self) -> set[str]:
        return {
            str(c.get("type")) for c in self.info.get("capabilities", []) if isinstance(c, dict)
        }

    @property
    def partition_aware(self) -> bool:
        return "PARTITION_AWARE" in self.capabilities

    @property
    def role(self) -> str:
        roles = self.info.get("roles") or []
        return str(roles[0]) if roles else str(self.info.get("role", "*"))

    @property
    def failover_timeout(self) -> float:
        return float(self.info.get("failover_timeout", 0.0))


@dataclass
class AgentRecord:
    agent_id: str
    hostname: str
    port: int
    spec: AgentSpec
    registered_time: float
    connected: bool = True
    active: bool = True
    tasks: dict[str, dict[str, MasterTask]] = field(default_factory=dict)
    executors: dict[str, dict[str, JSON]] = field(default_factory=dict)
    offers: set[str] = field(default_factory=set)
    # KILLs sent to the agent, resent when it re-registers (it may have missed them).
    killed_tasks: set[tuple[str, str]] = field(default_factory=set)
    missed_pings: int = 0
    pong: bool = True
    reregistered_time: float | None = None

    @property
    def total(self) -> Resources:
        return self.spec.resources()

    def used(self) -> Resources:
        used = Resources()
        for tasks in self.tasks.values():
            for task in tasks.values():
                if not is_terminal(task.state):
                    used = used + task.resources
        for executors in self.executors.values():
            for info in executors.values():
                used = used + Resources.parse(info.get("resources"))
        return used


@dataclass
class Registry:
    """What a Mesos master keeps durably about agents (survives master failover), and,
    for tests, every SUBSCRIBE it accepted: (time, framework id, FrameworkInfo.hostname),
    which tells which scheduler took a framework over when, and every other call it
    accepted: (time, framework id, the hostname of the subscription the call came on,
    call type), which tells which scheduler acted when."""

    agents: dict[str, JSON] = field(default_factory=dict)
    unreachable: dict[str, float] = field(default_factory=dict)
    gone: dict[str, float] = field(default_factory=dict)
    subscriptions: list[tuple[float, str, str]] = field(default_factory=list)
    calls: list[tuple[float, str, str, str]] = field(default_factory=list)


@dataclass
class MasterBooks:
    registry: Registry
    frameworks: dict[str, Framework] = field(default_factory=dict)
    completed_frameworks: dict[str, Framework] = field(default_factory=dict)
    agents: dict[str, AgentRecord] = field(default_factory=dict)
    # Agents of the registry that have not re-registered since this master
    # started, each with the timer that declares it unreachable.
    recovered: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    offers: dict[str, Offer] = field(default_factory=dict)

    def remove_offer(self, offer_id: str) -> Offer | None:
        offer = self.offers.pop(offer_id, None)
        if offer is None:
            return None
        framework = self.frameworks.get(offer.framework_id)
        if framework is not None:
            framework.offers.discard(offer_id)
        agent = self.agents.get(offer.agent_id)
        if agent is not None:
            agent.offers.discard(offer_id)
        return offer

    def withdraw_offers(self, framework: Framework) -> None:
        for offer_id in list(framework.offers):
            self.remove_offer(offer_id)

    def remove_task(self, framework: Framework, task: MasterTask) -> None:
        framework.tasks.pop(task.task_id, None)
        agent = self.agents.get(task.agent_id)
        if agent is not None:
            agent.tasks.get(framework.framework_id, {}).pop(task.task_id, None)
            agent.killed_tasks.discard((framework.framework_id, task.task_id))
        framework.completed_tasks.append(task)

    def forget_executors_on(self, agent_id: str, framework_ids: Iterable[str]) -> None:
        """The frameworks' executors on a removed agent are gone with it."""
        for framework_id in framework_ids:
            framework = self.frameworks.get(framework_id)
            if framework is not None:
                framework.executors.pop(agent_id, None)


def record_status(task: MasterTask, status: JSON) -> None:
    """A status the master made up itself becomes the task's latest state."""
    task.state = str(status["state"])
    task.status_update_state = task.state
    task.statuses.append({"state": task.state, "timestamp": status.get("timestamp")})
