"""Pure patch algorithms of the Kubernetes API emulator: JSON merge patch and JSON patch.

`merge_patch` follows RFC 7386 (`application/merge-patch+json`): objects merge, `null`
removes a key, anything else (lists included) replaces. `json_patch` follows RFC 6902
(`application/json-patch+json`): add, remove, replace, move, copy, test. A failed `test`
or an impossible operation raises `PatchError`; the server answers it with 422, as a real
API server does (kopf relies on that answer for its `test /metadata/resourceVersion`
guarded finalizer patches). Inputs are never mutated.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any


class PatchError(ValueError):
    """The patch is malformed or cannot be applied to this document."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: the result of merging `patch` into `target`."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result: dict[str, Any] = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"JSON pointer {path!r} must start with '/'")
    return [token.replace("~1", "/").replace("~0", "~") for token in path[1:].split("/")]


def _index(container: list[Any], token: str, *, for_insert: bool) -> int:
    if for_insert and token == "-":
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r}")
    index = int(token)
    limit = len(container) if for_insert else len(container) - 1
    if index > limit:
        raise PatchError(f"array index {index} is out of bounds")
    return index


def _parent(doc: Any, tokens: list[str], path: str) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"path {path!r} does not exist: missing {token!r}")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, for_insert=False)]
        else:
            raise PatchError(f"path {path!r} goes through a scalar")
    return node


def _get(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path {path!r} does not exist")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, for_insert=False)]
    raise PatchError(f"path {path!r} goes through a scalar")


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, for_insert=True), value)
    else:
        raise PatchError(f"path {path!r} goes through a scalar")
    return doc


def _remove(doc: Any, path: str) -> tuple[Any, Any]:
    tokens = _pointer(path)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path {path!r} does not exist")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, last, for_insert=False))
    raise PatchError(f"path {path!r} goes through a scalar")


def _field(op: Mapping[str, Any], name: str) -> Any:
    if name not in op:
        raise PatchError(f"operation {op.get('op')!r} needs the {name!r} field")
    return op[name]


def json_patch(target: Any, ops: Any) -> Any:
    """RFC 6902: the result of applying the operations `ops` to `target`."""
    if not isinstance(ops, Sequence) or isinstance(ops, str | bytes):
        raise PatchError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, Mapping):
            raise PatchError(f"a JSON patch operation must be an object, got {op!r}")
        kind = op.get("op")
        path = _field(op, "path")
        if not isinstance(path, str):
            raise PatchError(f"'path' must be a string, got {path!r}")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(_field(op, "value")))
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            doc, _ = _remove(doc, path)
            doc = _add(doc, path, copy.deepcopy(_field(op, "value")))
        elif kind == "move":
            source = str(_field(op, "from"))
            if path.startswith(source + "/"):
                raise PatchError(f"cannot move {source!r} into its own child {path!r}")
            doc, value = _remove(doc, source)
            doc = _add(doc, path, value)
        elif kind == "copy":
            doc = _add(doc, path, copy.deepcopy(_get(doc, str(_field(op, "from")))))
        elif kind == "test":
            expected = _field(op, "value")
            actual = _get(doc, path)
            if json.dumps(actual, sort_keys=True) != json.dumps(expected, sort_keys=True):
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise PatchError(f"unknown JSON patch operation {kind!r}")
    return doc
