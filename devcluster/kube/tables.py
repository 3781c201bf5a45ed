"""Server-side `Table` rendering, what `kubectl get` asks for with
`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`.

Columns are a resource's printer columns (a CRD's `additionalPrinterColumns`, or the
emulator's own for built-ins) after `Name`; a CRD without columns gets `Age`, as on a
real server. Cells are evaluated with the JSONPath subset CRDs use: `.a.b`, `[0]`, `[*]`,
`['key']` and filters `[?(@.type=="Ready")]`; `date` cells are shown as an age ("5m").
Pure; `serving` calls `table` for lists, gets and watch events.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence
from typing import Any

from devcluster.kube.resources import EVENTS, EVENTS_K8S_IO, PrinterColumn, ResourceType

_TOKEN = re.compile(
    r"""\.(?P<field>[A-Za-z0-9_\-]+)
      | \[(?P<index>-?\d+)\]
      | \[(?P<star>\*)\]
      | \[['"](?P<quoted>[^'"]+)['"]\]
      | \[\?\(@\.(?P<filter>[A-Za-z0-9_.\-]+)\s*(?P<op>==|!=)\s*
          (?P<value>"[^"]*"|'[^']*'|[^)\s]+)\)\]
    """,
    re.VERBOSE,
)
AGE = PrinterColumn("Age", "date", ".metadata.creationTimestamp")


class JsonPathError(ValueError):
    """The printer column's path is outside the supported JSONPath subset."""


def _dig(node: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def _filter_value(text: str) -> Any:
    if text[:1] in "\"'":
        return text[1:-1]
    try:
        return int(text)
    except ValueError:
        return {"true": True, "false": False}.get(text, text)


def evaluate(obj: Any, path: str) -> list[Any]:
    """All values `path` selects in `obj` (empty when nothing matches)."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    path = path.removeprefix("$")
    nodes: list[Any] = [obj]
    position = 0
    while position < len(path):
        match = _TOKEN.match(path, position)
        if match is None:
            raise JsonPathError(f"unsupported JSONPath {path!r} at {path[position:]!r}")
        position = match.end()
        found: list[Any] = []
        for node in nodes:
            if match["field"] is not None or match["quoted"] is not None:
                key = match["field"] if match["field"] is not None else match["quoted"]
                if isinstance(node, Mapping) and key in node:
                    found.append(node[key])
            elif match["index"] is not None:
                index = int(match["index"])
                if isinstance(node, list) and -len(node) <= index < len(node):
                    found.append(node[index])
            elif match["star"] is not None:
                if isinstance(node, list):
                    found.extend(node)
                elif isinstance(node, Mapping):
                    found.extend(node.values())
            elif isinstance(node, list):
                wanted = _filter_value(match["value"])
                for item in node:
                    equal = _dig(item, match["filter"]) == wanted
                    if equal == (match["op"] == "=="):
                        found.append(item)
        nodes = found
    return nodes


def human_age(seconds: float) -> str:
    """A duration as kubectl's AGE column shows it (the server's HumanDuration)."""
    total = int(seconds)
    if seconds < -1:
        return "<invalid>"
    if total < 0:
        return "0s"
    if total < 120:
        return f"{total}s"
    minutes = total // 60
    if minutes < 10:
        return f"{minutes}m{total % 60}s" if total % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    years = days // 365
    if years < 8:
        return f"{years}y{days % 365}d" if days % 365 else f"{years}y"
    return f"{years}y"


def _age(stamp: Any, now: datetime.datetime) -> str | None:
    if not isinstance(stamp, str):
        return None
    try:
        moment = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    return human_age((now - moment).total_seconds())


def _cell(obj: Mapping[str, Any], column: PrinterColumn, now: datetime.datetime) -> Any:
    values = evaluate(obj, column.json_path)
    if not values:
        return None
    if column.type == "date":
        return _age(values[0], now)
    if len(values) == 1:
        return values[0]
    return ",".join(str(value) for value in values)


def _event_cells(obj: Mapping[str, Any], now: datetime.datetime) -> list[Any]:
    involved = obj.get("involvedObject") or obj.get("regarding") or {}
    seen = (
        obj.get("lastTimestamp")
        or obj.get("deprecatedLastTimestamp")
        or obj.get("eventTime")
        or obj.get("metadata", {}).get("creationTimestamp")
    )
    return [
        _age(seen, now),
        obj.get("type"),
        obj.get("reason"),
        f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
        obj.get("message", obj.get("note")),
    ]


def columns(rt: ResourceType) -> list[PrinterColumn]:
    if rt in (EVENTS, EVENTS_K8S_IO):
        return [
            PrinterColumn("Last Seen", "string", ""),
            PrinterColumn("Type", "string", ""),
            PrinterColumn("Reason", "string", ""),
            PrinterColumn("Object", "string", ""),
            PrinterColumn("Message", "string", ""),
        ]
    if rt.tracks_generation and rt.group and rt.printer_columns:
        return [PrinterColumn("Name", "string", ".metadata.name"), *rt.printer_columns]
    return [PrinterColumn("Name", "string", ".metadata.name"), *rt.printer_columns, AGE]


def _definition(column: PrinterColumn) -> dict[str, Any]:
    return {
        "name": column.name,
        "type": "string" if column.type == "date" else column.type,
        "format": "name" if column.name == "Name" else column.format,
        "description": column.description,
        "priority": column.priority,
    }


def row(
    rt: ResourceType,
    obj: Mapping[str, Any],
    *,
    now: datetime.datetime,
    include_object: str = "Metadata",
) -> dict[str, Any]:
    if rt in (EVENTS, EVENTS_K8S_IO):
        cells = _event_cells(obj, now)
    else:
        cells = [_cell(obj, column, now) for column in columns(rt)]
    result: dict[str, Any] = {"cells": cells}
    if include_object == "Object":
        result["object"] = obj
    elif include_object != "None":
        result["object"] = {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata", {}),
        }
    return result


def table(
    rt: ResourceType,
    objects: Sequence[Mapping[str, Any]],
    *,
    resource_version: str,
    now: datetime.datetime,
    include_object: str = "Metadata",
) -> dict[str, Any]:
    """A `meta.k8s.io/v1 Table` of `objects`."""
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [_definition(column) for column in columns(rt)],
        "rows": [row(rt, obj, now=now, include_object=include_object) for obj in objects],
    }
