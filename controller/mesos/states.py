"""Mesos task states and the status updates that carry them, as typed values.

Pure. `StatusUpdate.from_mesos` reads the TaskStatus of an UPDATE event (Mesos v1 JSON)
once, at the pymesos edge (`driver`); the status pipeline, the state machine in
`statuses` and the acknowledgement all work on the typed update from there on.
`TaskState` and `StatusSource` are str-valued, so the values written to ZooKeeper, put
in metric labels and runtime events are the wire values.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class TaskState(StrEnum):
    """Mesos's TaskState."""

    STAGING = "TASK_STAGING"
    STARTING = "TASK_STARTING"
    RUNNING = "TASK_RUNNING"
    KILLING = "TASK_KILLING"
    FINISHED = "TASK_FINISHED"
    FAILED = "TASK_FAILED"
    KILLED = "TASK_KILLED"
    ERROR = "TASK_ERROR"
    LOST = "TASK_LOST"
    DROPPED = "TASK_DROPPED"
    UNREACHABLE = "TASK_UNREACHABLE"
    GONE = "TASK_GONE"
    GONE_BY_OPERATOR = "TASK_GONE_BY_OPERATOR"
    UNKNOWN = "TASK_UNKNOWN"

    @classmethod
    def parse(cls, text: str) -> TaskState | None:
        """The state named by `text`, None for anything else."""
        try:
            return cls(text)
        except ValueError:
            return None

    @property
    def words(self) -> str:
        """'gone by operator' for TASK_GONE_BY_OPERATOR: for messages."""
        return self.value.removeprefix("TASK_").lower().replace("_", " ")


class StatusSource(StrEnum):
    """Who produced a status update: Mesos's three sources, and this framework itself
    for the updates it makes up (an unreachable task given up as lost)."""

    MASTER = "SOURCE_MASTER"
    AGENT = "SOURCE_AGENT"
    EXECUTOR = "SOURCE_EXECUTOR"
    SCHEDULER = "SOURCE_SCHEDULER"


_SOURCES = frozenset(StatusSource)

TERMINAL_STATES = frozenset(
    {
        TaskState.FINISHED,
        TaskState.FAILED,
        TaskState.KILLED,
        TaskState.ERROR,
        TaskState.DROPPED,
        TaskState.GONE,
        TaskState.LOST,
        TaskState.GONE_BY_OPERATOR,
    }
)
ADRIFT_STATES = frozenset({TaskState.UNREACHABLE, TaskState.UNKNOWN})
LIVE_STATES = frozenset({TaskState.STAGING, TaskState.STARTING, TaskState.RUNNING})
# States that prove the task reached its agent.
STARTED_STATES = frozenset(
    {
        TaskState.STARTING,
        TaskState.RUNNING,
        TaskState.KILLING,
        TaskState.FINISHED,
        TaskState.FAILED,
    }
)
# The reason the master gives for a task it answers a reconciliation about but never saw.
REASON_RECONCILIATION = "REASON_RECONCILIATION"


class MalformedStatus(ValueError):
    """A TaskStatus without a task id or with a state Mesos does not have."""


@dataclass(frozen=True)
class Acknowledgement:
    """What an ACKNOWLEDGE call names: the update's agent, task and uuid."""

    agent_id: str
    task_id: str
    uuid: str


@dataclass(frozen=True)
class StatusUpdate:
    """A TaskStatus of an UPDATE event, reduced to what decisions need."""

    task_id: str
    state: TaskState
    agent_id: str | None = None
    executor_id: str | None = None
    message: str = ""
    reason: str | None = None
    source: StatusSource | None = None
    uuid: str | None = None
    timestamp: float | None = None
    data: str | None = None

    @classmethod
    def from_mesos(cls, status: Mapping[str, Any]) -> StatusUpdate:
        """Read a TaskStatus (Mesos v1 JSON); raises MalformedStatus."""

        def value(key: str) -> str | None:
            inner = status.get(key)
            return str(inner["value"]) if isinstance(inner, Mapping) and "value" in inner else None

        state = TaskState.parse(str(status.get("state", "")))
        if state is None:
            raise MalformedStatus(f"unknown task state {status.get('state')!r}")
        task_id = value("task_id")
        if not task_id:
            raise MalformedStatus("a status update without a task id")
        source = status.get("source")
        uuid = status.get("uuid")
        timestamp = status.get("timestamp")
        reason = status.get("reason")
        return cls(
            task_id=task_id,
            state=state,
            agent_id=value("agent_id"),
            executor_id=value("executor_id"),
            message=str(status.get("message", "") or ""),
            reason=str(reason) if reason else None,
            source=StatusSource(source) if source in _SOURCES else None,
            uuid=str(uuid) if uuid else None,
            timestamp=float(timestamp) if timestamp is not None else None,
            data=str(status["data"]) if status.get("data") else None,
        )

    @property
    def acknowledgeable(self) -> bool:
        """Only updates with a uuid come from an agent and wait for an acknowledgement."""
        if not self.uuid:
            return False
        try:
            return len(base64.b64decode(self.uuid, validate=True)) == 16
        except ValueError:
            return False

    @property
    def acknowledgement(self) -> Acknowledgement | None:
        """The ACKNOWLEDGE this update waits for; None when it waits for none."""
        if not self.acknowledgeable or not self.agent_id or not self.uuid:
            return None
        return Acknowledgement(self.agent_id, self.task_id, self.uuid)

    @property
    def at(self) -> datetime:
        if self.timestamp is not None:
            return datetime.fromtimestamp(self.timestamp, UTC)
        return datetime.now(UTC)
