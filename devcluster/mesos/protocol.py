"""Mesos v1 vocabulary shared by the emulated master and agents.

Task states, status-update sources and reasons (Mesos's v1 mesos.proto,
`TaskState` and `TaskStatus`), ID validation (as the Mesos master does it), the
base64 and UUID rules for `bytes` fields, and the builder for `TaskStatus`
JSON. Everything here is pure; the master, the agents and the conformance
suite use it.
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from typing import Any

JSON = dict[str, Any]

TASK_STAGING = "TASK_STAGING"
TASK_STARTING = "TASK_STARTING"
TASK_RUNNING = "TASK_RUNNING"
TASK_KILLING = "TASK_KILLING"
TASK_FINISHED = "TASK_FINISHED"
TASK_FAILED = "TASK_FAILED"
TASK_KILLED = "TASK_KILLED"
TASK_ERROR = "TASK_ERROR"
TASK_LOST = "TASK_LOST"
TASK_DROPPED = "TASK_DROPPED"
TASK_UNREACHABLE = "TASK_UNREACHABLE"
TASK_GONE = "TASK_GONE"
TASK_GONE_BY_OPERATOR = "TASK_GONE_BY_OPERATOR"
TASK_UNKNOWN = "TASK_UNKNOWN"

TASK_STATES = frozenset(
    {
        TASK_STAGING,
        TASK_STARTING,
        TASK_RUNNING,
        TASK_KILLING,
        TASK_FINISHED,
        TASK_FAILED,
        TASK_KILLED,
        TASK_ERROR,
        TASK_LOST,
        TASK_DROPPED,
        TASK_UNREACHABLE,
        TASK_GONE,
        TASK_GONE_BY_OPERATOR,
        TASK_UNKNOWN,
    }
)

# `protobuf::isTerminalState` in Mesos: LOST and GONE_BY_OPERATOR count as
# terminal for resource accounting although the task may still be running.
TERMINAL_STATES = frozenset(
    {
        TASK_FINISHED,
        TASK_FAILED,
        TASK_KILLED,
        TASK_ERROR,
        TASK_LOST,
        TASK_DROPPED,
        TASK_GONE,
        TASK_GONE_BY_OPERATOR,
    }
)

# States only frameworks with the PARTITION_AWARE capability may receive;
# everyone else is told TASK_LOST instead.
PARTITION_AWARE_ONLY_STATES = frozenset(
    {TASK_UNREACHABLE, TASK_DROPPED, TASK_GONE, TASK_GONE_BY_OPERATOR, TASK_UNKNOWN}
)

SOURCE_MASTER = "SOURCE_MASTER"
SOURCE_AGENT = "SOURCE_AGENT"
SOURCE_EXECUTOR = "SOURCE_EXECUTOR"

REASON_COMMAND_EXECUTOR_FAILED = "REASON_COMMAND_EXECUTOR_FAILED"
REASON_CONTAINER_LAUNCH_FAILED = "REASON_CONTAINER_LAUNCH_FAILED"
REASON_EXECUTOR_REGISTRATION_TIMEOUT = "REASON_EXECUTOR_REGISTRATION_TIMEOUT"
REASON_EXECUTOR_REREGISTRATION_TIMEOUT = "REASON_EXECUTOR_REREGISTRATION_TIMEOUT"
REASON_EXECUTOR_TERMINATED = "REASON_EXECUTOR_TERMINATED"
REASON_FRAMEWORK_REMOVED = "REASON_FRAMEWORK_REMOVED"
REASON_INVALID_OFFERS = "REASON_INVALID_OFFERS"
REASON_RECONCILIATION = "REASON_RECONCILIATION"
REASON_AGENT_DISCONNECTED = "REASON_AGENT_DISCONNECTED"
REASON_AGENT_REMOVED = "REASON_AGENT_REMOVED"
REASON_AGENT_REMOVED_BY_OPERATOR = "REASON_AGENT_REMOVED_BY_OPERATOR"
REASON_AGENT_REREGISTERED = "REASON_AGENT_REREGISTERED"
REASON_TASK_INVALID = "REASON_TASK_INVALID"
REASON_TASK_KILLED_DURING_LAUNCH = "REASON_TASK_KILLED_DURING_LAUNCH"

# Linux NAME_MAX, the limit Mesos applies to every ID.
MAX_ID_LENGTH = 255

MESOS_VERSION = "1.11.0"


def is_terminal(state: str) -> bool:
    return state in TERMINAL_STATES


def state_for(state: str, partition_aware: bool) -> str:
    """The state a framework is told: non-partition-aware ones get TASK_LOST."""
    if not partition_aware and state in PARTITION_AWARE_ONLY_STATES:
        return TASK_LOST
    return state


def validate_id(value: str) -> str | None:
    """The error Mesos gives for a bad Task/Executor/Agent/Framework ID, or None."""
    if value == "":
        return "ID must not be empty"
    if len(value.encode()) > MAX_ID_LENGTH:  # std::string length: bytes, not characters
        return f"ID must not be greater than {MAX_ID_LENGTH} characters"
    if value in (".", ".."):
        return f"'{value}' is disallowed"
    if any(ch in "/\\" or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return f"'{value}' contains invalid characters"
    return None


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    """Decode a JSON `bytes` field; raises ValueError with Mesos's wording."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError("Failed to base64 decode bytes field") from exc


def uuid_error(encoded: str) -> str | None:
    """Mesos's `UUID::fromBytes` check for a base64 `uuid` field."""
    try:
        raw = b64decode(encoded)
    except ValueError as exc:
        return str(exc)
    if len(raw) != 16 or uuid.UUID(bytes=raw).version is None:
        return "Not a valid UUID"
    return None


def new_uuid() -> str:
    return b64encode(uuid.uuid4().bytes)


def value(obj: Any) -> str | None:
    """`{"value": "x"}` -> "x" (None when absent or malformed)."""
    if isinstance(obj, dict):
        inner = obj.get("value")
        if isinstance(inner, str):
            return inner
    return None


def ident(text: str) -> JSON:
    return {"value": text}


def make_status(
    *,
    task_id: str,
    state: str,
    source: str,
    agent_id: str | None = None,
    executor_id: str | None = None,
    reason: str | None = None,
    message: str | None = None,
    with_uuid: bool = False,
    data: str | None = None,
    timestamp: float | None = None,
    extra: JSON | None = None,
) -> JSON:
    """A TaskStatus in v1 JSON form."""
    status: JSON = {
        "task_id": ident(task_id),
        "state": state,
        "source": source,
        "timestamp": time.time() if timestamp is None else timestamp,
    }
    if agent_id is not None:
        status["agent_id"] = ident(agent_id)
    if executor_id is not None:
        status["executor_id"] = ident(executor_id)
    if reason is not None:
        status["reason"] = reason
    if message is not None:
        status["message"] = message
    if data is not None:
        status["data"] = data
    if with_uuid:
        status["uuid"] = new_uuid()
    if extra:
        status.update(extra)
    return status
