"""HTTP-level rules of the Mesos v1 scheduler and executor APIs, as pure functions.

RecordIO framing (the Mesos scheduler HTTP API documentation, "RecordIO
response format"), Content-Type / Accept negotiation and the JSON-to-protobuf
conversion checks the Mesos master and agent apply before looking at a call
(`Master::Http::scheduler`, `Http::executor`). Used by the master, the agents
and the conformance suite's raw-HTTP client.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from devcluster.mesos.protocol import JSON, TASK_STATES, b64decode

APPLICATION_JSON = "application/json"
APPLICATION_PROTOBUF = "application/x-protobuf"


@dataclass(frozen=True)
class HttpError(Exception):
    """A call refused before it reaches the master or agent logic."""

    status: int
    message: str


def encode_record(event: JSON) -> bytes:
    body = json.dumps(event, separators=(",", ":")).encode("utf-8")
    return str(len(body)).encode("ascii") + b"\n" + body


class RecordIODecoder:
    """Incremental RecordIO reader: feed arbitrary byte chunks, get whole records."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[JSON]:
        self._buffer += chunk
        records: list[JSON] = []
        while True:
            newline = self._buffer.find(b"\n")
            if newline < 0:
                break
            header = self._buffer[:newline]
            if not header.isdigit():
                raise ValueError(f"RecordIO: bad length header {header!r}")
            length = int(header)
            end = newline + 1 + length
            if len(self._buffer) < end:
                break
            records.append(json.loads(self._buffer[newline + 1 : end]))
            self._buffer = self._buffer[end:]
        return records


def _media_ranges(accept: str) -> list[tuple[str, float]]:
    ranges = []
    for part in accept.split(","):
        pieces = [p.strip() for p in part.split(";")]
        if not pieces[0]:
            continue
        quality = 1.0
        for param in pieces[1:]:
            name, _, raw = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(raw)
                except ValueError:
                    quality = 0.0
        ranges.append((pieces[0].lower(), quality))
    return ranges


def accepts(accept: str | None, media_type: str) -> bool:
    """libprocess `Request::acceptsMediaType`: absent or empty Accept allows all."""
    if accept is None or not accept.strip():
        return True
    kind, _, subtype = media_type.partition("/")
    for candidate, quality in _media_ranges(accept):
        if quality <= 0:
            continue
        c_kind, _, c_sub = candidate.partition("/")
        if candidate == "*/*" or (c_kind == kind and c_sub in ("*", subtype)):
            return True
    return False


def check_method_and_type(method: str, content_type: str | None) -> None:
    if method != "POST":
        raise HttpError(405, f"Expecting one of {{ 'POST' }}, but received '{method}'")
    if content_type is None:
        raise HttpError(400, "Expecting 'Content-Type' to be present")
    if content_type == APPLICATION_PROTOBUF:
        raise HttpError(415, "This development emulator speaks JSON only; send 'application/json'")
    if content_type != APPLICATION_JSON:
        raise HttpError(
            415, f"Expecting 'Content-Type' of {APPLICATION_JSON} or {APPLICATION_PROTOBUF}"
        )


def check_accept(accept: str | None) -> None:
    if accepts(accept, APPLICATION_JSON):
        return
    if accepts(accept, APPLICATION_PROTOBUF):
        raise HttpError(
            406, "This development emulator streams JSON only; accept 'application/json'"
        )
    raise HttpError(
        406, f"Expecting 'Accept' to allow '{APPLICATION_PROTOBUF}' or '{APPLICATION_JSON}'"
    )


def parse_body(body: bytes, schema: Schema, message_name: str) -> JSON:
    """JSON text -> call dict, with the errors Mesos gives for its protobuf parse."""
    try:
        parsed = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HttpError(400, f"Failed to parse body into JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise HttpError(
            400, f"Failed to convert JSON into {message_name} protobuf: Expecting a JSON object"
        )
    problems = _check(parsed, schema, "")
    if problems.errors:
        raise HttpError(
            400, f"Failed to convert JSON into {message_name} protobuf: {problems.errors[0]}"
        )
    if problems.missing:
        raise HttpError(
            400,
            f"Failed to convert JSON into {message_name} protobuf: "
            f"Missing required fields: {', '.join(problems.missing)}",
        )
    return parsed


# A schema is a dict of field name -> spec. Specs: "string", "bytes",
# "number", "bool", ("enum", frozenset), a nested schema dict, or a list
# holding one spec (repeated field). Names starting with "!" are required.
Schema = dict[str, Any]


@dataclass
class _Problems:
    errors: list[str]
    missing: list[str]


def _check(obj: JSON, schema: Schema, prefix: str) -> _Problems:
    problems = _Problems([], [])
    for key, spec in schema.items():
        required = key.startswith("!")
        name = key.lstrip("!")
        path = f"{prefix}{name}"
        if name not in obj:
            if required:
                problems.missing.append(path)
            continue
        _check_value(obj[name], spec, path, problems)
    return problems


def _check_value(item: Any, spec: Any, path: str, problems: _Problems) -> None:
    if isinstance(spec, list):
        if not isinstance(item, list):
            problems.errors.append(f"Not expecting a JSON {_kind(item)} for field '{path}'")
            return
        for index, element in enumerate(item):
            _check_value(element, spec[0], f"{path}[{index}]", problems)
        return
    if isinstance(spec, dict):
        if not isinstance(item, dict):
            problems.errors.append(f"Not expecting a JSON {_kind(item)} for field '{path}'")
            return
        nested = _check(item, spec, f"{path}.")
        problems.errors.extend(nested.errors)
        problems.missing.extend(nested.missing)
        return
    if isinstance(spec, tuple):
        if not isinstance(item, str) or item not in spec[1]:
            problems.errors.append(f"Failed to find enum for '{item}'")
        return
    if spec in ("string", "bytes"):
        if not isinstance(item, str):
            problems.errors.append(f"Not expecting a JSON {_kind(item)} for field '{path}'")
        elif spec == "bytes":
            try:
                b64decode(item)
            except ValueError as exc:
                problems.errors.append(f"{exc} for field '{path}'")
        return
    if spec == "number":
        if isinstance(item, bool) or not isinstance(item, int | float | str):
            problems.errors.append(f"Not expecting a JSON {_kind(item)} for field '{path}'")
        return
    if spec == "bool" and not isinstance(item, bool):
        problems.errors.append(f"Not expecting a JSON {_kind(item)} for field '{path}'")


def _kind(item: Any) -> str:
    if isinstance(item, bool):
        return "boolean"
    if isinstance(item, dict):
        return "object"
    if isinstance(item, list):
        return "array"
    if isinstance(item, str):
        return "string"
    if item is None:
        return "null"
    return "number"


ID: Schema = {"!value": "string"}
VALUE_SCALAR: Schema = {"!value": "number"}
RESOURCE: Schema = {
    "!name": "string",
    "type": ("enum", frozenset({"SCALAR", "RANGES", "SET", "TEXT"})),
    "scalar": VALUE_SCALAR,
    "ranges": {"range": [{"!begin": "number", "!end": "number"}]},
    "set": {"item": ["string"]},
    "role": "string",
}
ENVIRONMENT: Schema = {"variables": [{"!name": "string", "value": "string"}]}
COMMAND: Schema = {
    "uris": [
        {
            "!value": "string",
            "executable": "bool",
            "extract": "bool",
            "cache": "bool",
            "output_file": "string",
        }
    ],
    "environment": ENVIRONMENT,
    "shell": "bool",
    "value": "string",
    "arguments": ["string"],
    "user": "string",
}
EXECUTOR_INFO: Schema = {
    "type": ("enum", frozenset({"DEFAULT", "CUSTOM", "UNKNOWN"})),
    "!executor_id": ID,
    "framework_id": ID,
    "command": COMMAND,
    "resources": [RESOURCE],
    "name": "string",
    "data": "bytes",
}
TASK_INFO: Schema = {
    "!name": "string",
    "!task_id": ID,
    "!agent_id": ID,
    "resources": [RESOURCE],
    "executor": EXECUTOR_INFO,
    "command": COMMAND,
    "data": "bytes",
}
FRAMEWORK_INFO: Schema = {
    "!user": "string",
    "!name": "string",
    "id": ID,
    "failover_timeout": "number",
    "checkpoint": "bool",
    "role": "string",
    "roles": ["string"],
    "hostname": "string",
    "principal": "string",
    "capabilities": [{"type": "string"}],
}
FILTERS: Schema = {"refuse_seconds": "number"}
SCHEDULER_CALL_TYPES = frozenset(
    {
        "UNKNOWN",
        "SUBSCRIBE",
        "TEARDOWN",
        "ACCEPT",
        "DECLINE",
        "ACCEPT_INVERSE_OFFERS",
        "DECLINE_INVERSE_OFFERS",
        "REVIVE",
        "KILL",
        "SHUTDOWN",
        "ACKNOWLEDGE",
        "ACKNOWLEDGE_OPERATION_STATUS",
        "RECONCILE",
        "RECONCILE_OPERATIONS",
        "MESSAGE",
        "REQUEST",
        "SUPPRESS",
        "UPDATE_FRAMEWORK",
    }
)
SCHEDULER_CALL: Schema = {
    "framework_id": ID,
    "type": ("enum", SCHEDULER_CALL_TYPES),
    "subscribe": {"!framework_info": FRAMEWORK_INFO, "force": "bool"},
    "accept": {
        "offer_ids": [ID],
        "operations": [
            {
                "type": "string",
                "launch": {"task_infos": [TASK_INFO]},
            }
        ],
        "filters": FILTERS,
    },
    "decline": {"offer_ids": [ID], "filters": FILTERS},
    "revive": {"roles": ["string"]},
    "suppress": {"roles": ["string"]},
    "kill": {"!task_id": ID, "agent_id": ID},
    "shutdown": {"!executor_id": ID, "!agent_id": ID},
    "acknowledge": {"!agent_id": ID, "!task_id": ID, "!uuid": "bytes"},
    "reconcile": {"tasks": [{"!task_id": ID, "agent_id": ID}]},
    "message": {"!agent_id": ID, "!executor_id": ID, "!data": "bytes"},
}
TASK_STATUS: Schema = {
    "!task_id": ID,
    "!state": ("enum", TASK_STATES),
    "message": "string",
    "source": ("enum", frozenset({"SOURCE_MASTER", "SOURCE_AGENT", "SOURCE_EXECUTOR"})),
    "reason": "string",
    "data": "bytes",
    "agent_id": ID,
    "executor_id": ID,
    "timestamp": "number",
    "uuid": "bytes",
    "healthy": "bool",
}
EXECUTOR_CALL: Schema = {
    "!executor_id": ID,
    "!framework_id": ID,
    "type": ("enum", frozenset({"UNKNOWN", "SUBSCRIBE", "UPDATE", "MESSAGE", "HEARTBEAT"})),
    "subscribe": {
        "unacknowledged_tasks": [TASK_INFO],
        "unacknowledged_updates": [{"!status": TASK_STATUS}],
    },
    "update": {"!status": TASK_STATUS},
    "message": {"!data": "bytes"},
}
