"""The messages the framework and the executor exchange besides task states.

Framework → executor (the `data` of a Mesos framework MESSAGE):

- `STOP` — the five ASCII bytes, as in the original: kill every task of this
  executor (each reports TASK_KILLED), then stop the executor.
- `{"type": "TRIGGER", "jobName": "<job key>"}` — UTF-8 JSON: run every daemon
  task of that job on this executor once, now. An optional `"taskId"` narrows it
  to one task.

Executor → framework: a daemon task reports TASK_RUNNING with message `BEGIN`
before a run and `COMPLETE` after it; the `data` of a `COMPLETE` update is a
`RunReport` (JSON) saying how the run ended.

Pure: the framework (`controller.mesos`) imports this module to build and read
these messages without importing pymesos; the executor decodes them.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

STOP_BYTES = b"STOP"
TRIGGER = "TRIGGER"
BEGIN = "BEGIN"
COMPLETE = "COMPLETE"


class MessageError(ValueError):
    """A framework message or run report that cannot be understood."""


@dataclass(frozen=True)
class Stop:
    """Shut the executor down cleanly."""


@dataclass(frozen=True)
class Trigger:
    """Run the daemon tasks of `job_name` (or only `task_id`) once now."""

    job_name: str
    task_id: str | None = None


FrameworkMessage = Stop | Trigger


def encode(message: FrameworkMessage) -> bytes:
    """The bytes to send as the MESSAGE data."""
    if isinstance(message, Stop):
        return STOP_BYTES
    document: dict[str, str] = {"type": TRIGGER, "jobName": message.job_name}
    if message.task_id is not None:
        document["taskId"] = message.task_id
    return json.dumps(document, separators=(",", ":")).encode()


def encode_base64(message: FrameworkMessage) -> str:
    """As the Mesos JSON API (and pymesos's `sendFrameworkMessage`) carries bytes."""
    return base64.b64encode(encode(message)).decode()


def decode(raw: bytes) -> FrameworkMessage:
    if raw.strip() == STOP_BYTES:
        return Stop()
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MessageError(
            f"framework message {_preview(raw)} is neither STOP nor a JSON object"
        ) from None
    if not isinstance(document, dict):
        raise MessageError(f"framework message {_preview(raw)} must be a JSON object")
    kind = document.get("type")
    if kind == "STOP":
        return Stop()
    if kind != TRIGGER:
        raise MessageError(
            f"framework message type {kind!r} is unknown; expected 'STOP' or '{TRIGGER}'"
        )
    job_name = document.get("jobName")
    if not isinstance(job_name, str) or not job_name:
        raise MessageError("TRIGGER message needs a non-empty string 'jobName' (the job key)")
    task_id = document.get("taskId")
    if task_id is not None and (not isinstance(task_id, str) or not task_id):
        raise MessageError("TRIGGER message field 'taskId' must be a non-empty string if given")
    return Trigger(job_name=job_name, task_id=task_id)


def decode_base64(data: str) -> FrameworkMessage:
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise MessageError("framework message data is not valid base64") from None
    return decode(raw)


Outcome = Literal["succeeded", "failed"]


@dataclass(frozen=True)
class RunReport:
    """How one daemon run ended; the data of its `COMPLETE` update. `started_at` (when
    the run began, its `BEGIN`) travels with the end, so the scheduler needs no memory
    of the `BEGIN` to know how long the run took."""

    outcome: Outcome
    detail: str = ""
    fire_time: datetime | None = None
    triggered: bool = False
    started_at: datetime | None = None

    def encode(self) -> bytes:
        document: dict[str, Any] = {
            "outcome": self.outcome,
            "detail": self.detail,
            "fireTime": self.fire_time.isoformat() if self.fire_time else None,
            "triggered": self.triggered,
            "startedAt": self.started_at.isoformat() if self.started_at else None,
        }
        return json.dumps(document, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> RunReport:
        try:
            document = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise MessageError(f"run report {_preview(raw)} is not JSON") from None
        if not isinstance(document, dict):
            raise MessageError("run report must be a JSON object")
        outcome = document.get("outcome")
        if outcome not in ("succeeded", "failed"):
            raise MessageError(
                f"run report field 'outcome' is {outcome!r}; expected 'succeeded' or 'failed'"
            )
        return cls(
            outcome=outcome,
            detail=str(document.get("detail", "")),
            fire_time=_time_field(document, "fireTime"),
            triggered=bool(document.get("triggered", False)),
            started_at=_time_field(document, "startedAt"),
        )


def _time_field(document: dict[str, Any], name: str) -> datetime | None:
    value = document.get(name)
    try:
        return datetime.fromisoformat(value) if value is not None else None
    except (TypeError, ValueError):
        raise MessageError(
            f"run report field '{name}' is {value!r}; expected an ISO 8601 time or null"
        ) from None


def _preview(raw: bytes) -> str:
    text = raw[:40].decode("utf-8", errors="replace")
    return repr(text + ("…" if len(raw) > 40 else ""))
