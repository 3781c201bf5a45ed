"""The run history's spool: records packed in units that outlive the process.

The scheduling core packs the records of one state change into a `SpoolUnit` and
writes the unit's bytes (`encode`) into ZooKeeper in the same transaction as the
change itself (`controller.mesos.history_spool`), so a record exists exactly when
the change it describes does. The writer deletes a unit once its records are
committed to the database (or dropped), and a new leader adopts the units it finds
(`Spool.read`, oldest first) — records a leader killed before writing them are not
lost. Writing a unit twice is harmless: every record is keyed (`records`).

Pure: the unit, its compact encoding (zlib-compressed JSON) and the `Spool` port the
writer reads and deletes through.
"""

from __future__ import annotations

import json
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Protocol

from controller.history.records import (
    HistoryRecord,
    JobRemoved,
    Outcome,
    RunAbandoned,
    RunEnded,
    RunLaunched,
    RunPlace,
    Transition,
)

FORMAT = 1
_KINDS: dict[str, type[HistoryRecord]] = {
    "launched": RunLaunched,
    "ended": RunEnded,
    "abandoned": RunAbandoned,
    "transition": Transition,
    "removed": JobRemoved,
}
_KIND_OF = {kind: name for name, kind in _KINDS.items()}
_TIMES = frozenset({"fire_time", "launched_at", "started_at", "ended_at", "at"})
# Field names per record type, looked up once (thousands of records are spooled a second).
_NAMES = {kind: tuple(f.name for f in fields(kind)) for kind in (*_KINDS.values(), RunPlace)}


class SpoolError(ValueError):
    """A spooled unit that cannot be read back."""


@dataclass(frozen=True)
class SpoolUnit:
    """The records of one state change; `name` is its node in the spool."""

    name: str
    records: tuple[HistoryRecord, ...]

    @classmethod
    def of(cls, records: Sequence[HistoryRecord]) -> SpoolUnit:
        # 64 random bits: unique among the units waiting, and short, so that listing a
        # full spool stays within ZooKeeper's 1 MiB reply.
        return cls(uuid.uuid4().hex[:16], tuple(records))


class Spool(Protocol):
    """Where units wait for the database: ZooKeeper, beside the scheduling state."""

    def read(self) -> list[SpoolUnit]:
        """Every unit spooled, oldest first (a unit that cannot be read has no records)."""

    def delete(self, names: Sequence[str]) -> None:
        """Delete units (already gone: fine)."""


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, RunPlace):
        return {name: _plain(getattr(value, name)) for name in _NAMES[RunPlace]}
    return value


def _fields(document: dict[str, Any]) -> dict[str, Any]:
    values = dict(document)
    for name in _TIMES & values.keys():
        if values[name] is not None:
            values[name] = datetime.fromisoformat(values[name])
    if "place" in values:
        values["place"] = RunPlace(**_fields(values["place"]))
    if "outcome" in values:
        values["outcome"] = Outcome(values["outcome"])
    return values


def encode(records: Sequence[HistoryRecord]) -> bytes:
    """The bytes of a unit's node."""
    document = {
        "format": FORMAT,
        "records": [
            {"kind": _KIND_OF[type(r)], **{n: _plain(getattr(r, n)) for n in _NAMES[type(r)]}}
            for r in records
        ],
    }
    return zlib.compress(json.dumps(document, separators=(",", ":")).encode())


def decode(raw: bytes) -> tuple[HistoryRecord, ...]:
    """The records of a unit's node; raises SpoolError for anything else."""
    try:
        document = json.loads(zlib.decompress(raw))
        if document.get("format") != FORMAT:
            raise SpoolError(f"unknown spool format {document.get('format')!r}")
        records = []
        for item in document["records"]:
            values = dict(item)
            kind = _KINDS[values.pop("kind")]
            records.append(kind(**_fields(values)))
        return tuple(records)
    except SpoolError:
        raise
    except (zlib.error, ValueError, KeyError, TypeError, AttributeError) as error:
        raise SpoolError(f"unreadable spool unit: {type(error).__name__}: {error}") from None
