"""Pure label and field selectors of the Kubernetes API emulator (`labelSelector=`, ...).

Label selectors support the real grammar's operators: `a=b`, `a==b`, `a!=b`, `a`, `!a`,
`a in (x,y)`, `a notin (x,y)`, comma-separated (all must hold). Field selectors support
`path=value`, `path==value`, `path!=value` on any dotted field (`metadata.name`,
`involvedObject.uid`, `status.phase`); a real server allows only a per-resource list of
fields, this emulator allows every field. Malformed selectors raise `SelectorError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Predicate = Callable[[Mapping[str, Any]], bool]


class SelectorError(ValueError):
    """The selector text does not parse."""


_SET = re.compile(r"^\s*(!?)\s*([^\s!=,()]+)\s*(?:(in|notin)\s*\(([^)]*)\))?\s*$")
_CMP = re.compile(r"^\s*([^\s!=,()]+)\s*(==|=|!=)\s*([^\s,()]*)\s*$")


def _split(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part for part in parts if part.strip()]


def _label_requirement(term: str) -> Predicate:
    compared = _CMP.match(term)
    if compared:
        key, op, value = compared.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    matched = _SET.match(term)
    if not matched:
        raise SelectorError(f"unable to parse requirement: {term.strip()!r}")
    negated, key, op, values_text = matched.groups()
    if op is None:
        if negated:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    if negated:
        raise SelectorError(f"unable to parse requirement: {term.strip()!r}")
    values = {value.strip() for value in values_text.split(",") if value.strip()}
    if op == "in":
        return lambda labels: labels.get(key) in values
    return lambda labels: key not in labels or labels[key] not in values


def label_selector(text: str) -> Predicate:
    """A predicate over an object that is true when its labels match `text`."""
    requirements = [_label_requirement(term) for term in _split(text)]

    def matches(obj: Mapping[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(requirement(labels) for requirement in requirements)

    return matches


def field_value(obj: Mapping[str, Any], path: str) -> str | None:
    """The value at a dotted `path` rendered as a field selector compares it, or None."""
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    if isinstance(node, bool):
        return "true" if node else "false"
    return None if node is None else str(node)


def _field_requirement(term: str) -> Predicate:
    compared = _CMP.match(term)
    if not compared:
        raise SelectorError(f"invalid field selector: {term.strip()!r}")
    path, op, value = compared.groups()
    if op == "!=":
        return lambda obj: (field_value(obj, path) or "") != value
    return lambda obj: (field_value(obj, path) or "") == value


def field_selector(text: str) -> Predicate:
    """A predicate over an object that is true when its fields match `text`."""
    requirements = [_field_requirement(term) for term in _split(text)]
    return lambda obj: all(requirement(obj) for requirement in requirements)
