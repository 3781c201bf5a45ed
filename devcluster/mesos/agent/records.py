"""What one emulated agent knows: its identity, frameworks, executors and tasks.

`AgentBooks` holds the agent's identity (id, hostname, spec, port, work dir)
and its frameworks; each `AgentFramework` holds its executors, each
`Executor` its tasks: `queued` (not yet handed to the executor, which has not
subscribed), `launched`, and `terminated` (until their terminal update is
acknowledged). An executor is REGISTERING until it subscribes, RUNNING, then
TERMINATING and TERMINATED. Command tasks have an `Executor` of their own
(`is_command`) whose id is the task id. Every module of the agent package
works on one `AgentBooks`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from devcluster.mesos.config import AgentSpec
from devcluster.mesos.processes import Child
from devcluster.mesos.protocol import JSON, TASK_STAGING, ident, value
from devcluster.mesos.streams import EventStream

REGISTERING, RUNNING, TERMINATING, TERMINATED = (
    "REGISTERING",
    "RUNNING",
    "TERMINATING",
    "TERMINATED",
)


def capabilities(framework_info: JSON) -> set[str]:
    return {
        str(c.get("type")) for c in framework_info.get("capabilities", []) if isinstance(c, dict)
    }


@dataclass
class AgentTask:
    info: JSON
    framework_id: str
    executor_id: str
    is_command: bool
    state: str = TASK_STAGING
    statuses: list[JSON] = field(default_factory=list)

    @property
    def task_id(self) -> str:
        return value(self.info["task_id"]) or ""


@dataclass
class Executor:
    executor_id: str
    framework_id: str
    info: JSON
    is_command: bool
    directory: Path
    container_id: str
    state: str = REGISTERING
    child: Child | None = None
    stream: EventStream | None = None
    queued: dict[str, AgentTask] = field(default_factory=dict)
    launched: dict[str, AgentTask] = field(default_factory=dict)
    terminated: dict[str, AgentTask] = field(default_factory=dict)
    registration_timer: asyncio.TimerHandle | None = None
    # (state, reason, message) for its live tasks when it terminates, when
    # the cause is known before it goes (a failed launch, a timeout).
    pending_termination: tuple[str, str, str] | None = None
    killing: set[str] = field(default_factory=set)
    # The grace of a kill that came while the command's process was starting.
    kill_grace: float = 0.0

    def live_tasks(self) -> list[AgentTask]:
        return [*self.queued.values(), *self.launched.values()]


@dataclass
class AgentFramework:
    framework_id: str
    info: JSON
    executors: dict[str, Executor] = field(default_factory=dict)
    terminating: bool = False

    def executors_of(self, task_id: str) -> list[Executor]:
        """The executors that may hold the task. A command task's executor has the task's
        id, so it is found without a scan: a busy agent keeps thousands of finished command
        executors until their updates are acknowledged, and looked through them all for
        every update and acknowledgement."""
        own = self.executors.get(task_id)
        if own is not None and own.is_command:
            return [own]
        return list(self.executors.values())


@dataclass
class AgentBooks:
    agent_id: str
    hostname: str
    spec: AgentSpec
    work_dir: Path
    port: int = 0
    frameworks: dict[str, AgentFramework] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def task_state(self, framework_id: str, task_id: str) -> str | None:
        framework = self.frameworks.get(framework_id)
        if framework is None:
            return None
        for executor in framework.executors_of(task_id):
            for group in (executor.queued, executor.launched, executor.terminated):
                if task_id in group:
                    return group[task_id].state
        return None

    def agent_info(self) -> JSON:
        """The `AgentInfo` an executor is given when it subscribes."""
        return {
            "id": ident(self.agent_id),
            "hostname": self.hostname,
            "port": self.port,
            "resources": self.spec.resources().to_json(),
            "attributes": self.spec.attributes_json(),
        }
