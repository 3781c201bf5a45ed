"""The values stored in the queue nodes, and their compact JSON encodings.

Pure data: the store keeps these in its in-memory view and writes them to the nodes
named by `Layout`; the rules compute new ones; the launch cycle builds `RunningTask`s.
Each encoding is small (a few hundred bytes) so thousands fit one transaction. The
decoders also accept the original's bare-text node data (a decimal ready count, a
bare task id) so a tree written by Elastic-Job-Cloud 2.1.5 still loads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from controller import naming
from controller.state.layout import meta_info

MAX_FIRES = 64
"""How many fire times a ready entry remembers (the oldest pending ones)."""


class RecordError(ValueError):
    """Node data that is not a record of the expected kind."""


class LaunchSource(StrEnum):
    """Which queue a launched task came from (also a field of its Mesos task id)."""

    READY = "READY"
    FAILOVER = "FAILOVER"


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: Any, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise RecordError(f"{field}: '{value}' is not an ISO-8601 time") from exc
    return parsed


def _json(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise RecordError(f"{what}: node data is not JSON: {raw[:80]!r}") from exc
    if not isinstance(value, dict):
        raise RecordError(f"{what}: node data is not a JSON object: {raw[:80]!r}")
    return value


def _dump(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


@dataclass(frozen=True)
class ReadyEntry:
    """The pending runs of one job: `count` runs, the oldest of which fired at `fires[0]`.

    `fires` holds the fire times of the oldest `len(fires)` pending runs (at most
    `MAX_FIRES`); runs beyond those have no recorded fire time.
    """

    count: int
    fires: tuple[datetime, ...] = ()

    def __post_init__(self) -> None:
        if self.count < 1:
            raise RecordError(f"a ready entry holds at least one run, not {self.count}")
        if len(self.fires) > min(self.count, MAX_FIRES):
            raise RecordError(
                f"a ready entry of {self.count} runs cannot hold {len(self.fires)} fire times"
            )

    @property
    def next_fire(self) -> datetime | None:
        """The fire time of the run a launch consumes next (None when not recorded)."""
        return self.fires[0] if self.fires else None

    def encode(self) -> bytes:
        return _dump({"count": self.count, "fires": [_time(f) for f in self.fires]})

    @classmethod
    def decode(cls, raw: bytes) -> ReadyEntry:
        text = raw.decode(errors="replace").strip()
        if text.isdigit():
            return cls(count=int(text))
        data = _json(raw, "ready entry")
        count = data.get("count")
        if not isinstance(count, int):
            raise RecordError(f"ready entry: 'count' must be an integer, got {count!r}")
        fires = tuple(
            f for f in (_parse_time(v, "ready entry fires") for v in data.get("fires", [])) if f
        )
        return cls(count=count, fires=fires[: min(count, MAX_FIRES)])


@dataclass(frozen=True)
class RunningTask:
    """One launched task (one shard of one run), persisted before it is launched."""

    task_id: str
    job_key: str
    shard: int
    source: LaunchSource
    agent_id: str
    hostname: str
    launched_at: datetime
    executor_id: str | None = None
    fire_time: datetime | None = None
    state: str = "TASK_STAGING"

    @property
    def meta_info(self) -> str:
        return meta_info(self.job_key, self.shard)

    def with_state(self, state: str) -> RunningTask:
        return replace(self, state=state)

    def encode(self) -> bytes:
        return _dump(
            {
                "task": self.task_id,
                "source": self.source.value,
                "agent": self.agent_id,
                "host": self.hostname,
                "executor": self.executor_id,
                "fire": _time(self.fire_time),
                "launched": _time(self.launched_at),
                "state": self.state,
            }
        )

    @classmethod
    def decode(cls, raw: bytes, job_key: str, shard: int, loaded_at: datetime) -> RunningTask:
        """Decode a running node; `loaded_at` stands in for the launch time of an
        original bare-task-id node."""
        text = raw.decode(errors="replace").strip()
        if not text.startswith("{"):
            return cls(
                task_id=text,
                job_key=job_key,
                shard=shard,
                source=_source_of(text),
                agent_id=_agent_of(text),
                hostname="",
                launched_at=loaded_at,
                state="TASK_RUNNING",
            )
        data = _json(raw, "running task")
        try:
            return cls(
                task_id=str(data["task"]),
                job_key=job_key,
                shard=shard,
                source=LaunchSource(data.get("source", LaunchSource.READY.value)),
                agent_id=str(data.get("agent", "")),
                hostname=str(data.get("host", "")),
                executor_id=data.get("executor"),
                fire_time=_parse_time(data.get("fire"), "running task fire"),
                launched_at=_parse_time(data.get("launched"), "running task launched") or loaded_at,
                state=str(data.get("state", "TASK_STAGING")),
            )
        except (KeyError, ValueError) as exc:
            raise RecordError(f"running task of {meta_info(job_key, shard)}: {exc}") from exc


@dataclass(frozen=True)
class FailoverEntry:
    """A shard to run again because its task `task_id` failed; keeps the run's fire time."""

    job_key: str
    shard: int
    task_id: str
    fire_time: datetime | None = None

    @property
    def meta_info(self) -> str:
        return meta_info(self.job_key, self.shard)

    def encode(self) -> bytes:
        return _dump({"task": self.task_id, "fire": _time(self.fire_time)})

    @classmethod
    def decode(cls, raw: bytes, job_key: str, shard: int) -> FailoverEntry:
        text = raw.decode(errors="replace").strip()
        if not text.startswith("{"):
            return cls(job_key=job_key, shard=shard, task_id=text)
        data = _json(raw, "failover entry")
        if "task" not in data:
            raise RecordError(f"failover entry of {meta_info(job_key, shard)}: no 'task'")
        return cls(
            job_key=job_key,
            shard=shard,
            task_id=str(data["task"]),
            fire_time=_parse_time(data.get("fire"), "failover entry fire"),
        )


def encode_trigger(token: str) -> bytes:
    """The data of `state/trigger/<jobKey>`: the last handled token as UTF-8 text."""
    return token.encode()


def decode_trigger(raw: bytes) -> str:
    try:
        token = raw.decode()
    except UnicodeDecodeError as exc:
        raise RecordError(f"trigger token is not UTF-8 text: {raw[:80]!r}") from exc
    if not token:
        raise RecordError("trigger token is empty")
    return token


def encode_fired(fire_time: datetime) -> bytes:
    """The data of `state/fired/<jobKey>`: the last fire handled, ISO-8601 text."""
    return fire_time.isoformat().encode()


def decode_fired(raw: bytes) -> datetime:
    fired = _parse_time(raw.decode(errors="replace").strip(), "last fire handled")
    if fired is None or fired.tzinfo is None:
        raise RecordError(f"last fire handled is not an ISO-8601 time with an offset: {raw!r}")
    return fired


def _field(task_id: str, index: int) -> str:
    parts = task_id.split(naming.DELIMITER)
    return parts[index] if len(parts) > index else ""


def _source_of(task_id: str) -> LaunchSource:
    value = _field(task_id, 2)
    return LaunchSource(value) if value in LaunchSource.__members__ else LaunchSource.READY


def _agent_of(task_id: str) -> str:
    return _field(task_id, 3)
