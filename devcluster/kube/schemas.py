"""Structural-schema processing of custom resources: pruning, defaulting, validation.

A real API server decodes a custom resource by pruning the fields its CRD's
`openAPIV3Schema` does not declare (unless `x-kubernetes-preserve-unknown-fields`),
applying `default`s, and validating; a failure is a 422 naming each bad field. This module
does the same, pure, with `jsonschema`'s Draft 4 validator (OpenAPI v3.0 schemas are Draft 4
with extensions: `nullable` and `x-kubernetes-int-or-string` are translated here). Not
done: CEL rules (`x-kubernetes-validations`), list/map type uniqueness, formats.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

import jsonschema  # type: ignore[import-untyped]

from devcluster.kube.errors import FieldError

_RESOURCE_ENVELOPE = ("apiVersion", "kind", "metadata")
_PASSED_THROUGH = (
    "type",
    "required",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "multipleOf",
)


def _is_envelope(schema: Mapping[str, Any], root: bool) -> bool:
    return root or bool(schema.get("x-kubernetes-embedded-resource"))


def prune(
    value: Any, schema: Mapping[str, Any], *, root: bool = True, path: str = ""
) -> tuple[Any, list[str]]:
    """`value` without the fields `schema` does not declare, and the dropped field paths."""
    dropped: list[str] = []
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        keep_unknown = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        result: dict[str, Any] = {}
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if _is_envelope(schema, root) and key in _RESOURCE_ENVELOPE:
                result[key] = item
            elif key in properties:
                result[key], more = prune(item, properties[key], root=False, path=where)
                dropped += more
            elif isinstance(extra, Mapping):
                result[key], more = prune(item, extra, root=False, path=where)
                dropped += more
            elif extra is True or keep_unknown:
                result[key] = item
            else:
                dropped.append(where)
        return result, dropped
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        items = []
        for index, item in enumerate(value):
            pruned, more = prune(item, schema["items"], root=False, path=f"{path}[{index}]")
            items.append(pruned)
            dropped += more
        return items, dropped
    return value, dropped


def apply_defaults(value: Any, schema: Mapping[str, Any]) -> Any:
    """`value` with the schema's `default`s filled in where fields are absent (or null and
    not nullable), recursively, as a real server does when it decodes a request."""
    if isinstance(value, dict):
        result = dict(value)
        properties = schema.get("properties") or {}
        for key, subschema in properties.items():
            if result.get(key, 0) is None and not subschema.get("nullable"):
                del result[key]
            if key not in result and "default" in subschema:
                result[key] = copy.deepcopy(subschema["default"])
            if key in result:
                result[key] = apply_defaults(result[key], subschema)
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            for key in result:
                if key not in properties:
                    result[key] = apply_defaults(result[key], extra)
        return result
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [apply_defaults(item, schema["items"]) for item in value]
    return value


def to_jsonschema(schema: Mapping[str, Any], *, root: bool = True) -> dict[str, Any]:
    """The Draft 4 JSON Schema equivalent of an OpenAPI v3.0 structural schema node."""
    result: dict[str, Any] = {key: schema[key] for key in _PASSED_THROUGH if key in schema}
    if root or schema.get("x-kubernetes-embedded-resource"):
        # The envelope is validated by the server itself, not by the CRD's schema.
        result.pop("required", None)
        result["required"] = [
            key for key in schema.get("required", ()) if key not in _RESOURCE_ENVELOPE
        ]
        if not result["required"]:
            del result["required"]
    if isinstance(schema.get("properties"), Mapping):
        envelope = root or bool(schema.get("x-kubernetes-embedded-resource"))
        result["properties"] = {
            key: to_jsonschema(sub, root=False)
            for key, sub in schema["properties"].items()
            if not (envelope and key in _RESOURCE_ENVELOPE)
        }
        metadata = schema["properties"].get("metadata")
        if envelope and isinstance(metadata, Mapping):
            # A CRD may restrict only these two metadata fields; the server checks the rest.
            result["properties"]["metadata"] = {
                "properties": {
                    key: to_jsonschema(sub, root=False)
                    for key, sub in (metadata.get("properties") or {}).items()
                    if key in ("name", "generateName")
                }
            }
    if isinstance(schema.get("items"), Mapping):
        result["items"] = to_jsonschema(schema["items"], root=False)
    if isinstance(schema.get("additionalProperties"), Mapping):
        result["additionalProperties"] = to_jsonschema(schema["additionalProperties"], root=False)
    for combinator in ("allOf", "anyOf", "oneOf"):
        if combinator in schema:
            result[combinator] = [to_jsonschema(sub, root=False) for sub in schema[combinator]]
    if isinstance(schema.get("not"), Mapping):
        result["not"] = to_jsonschema(schema["not"], root=False)
    if schema.get("x-kubernetes-int-or-string"):
        result.pop("type", None)
        result.setdefault("anyOf", [])
        result["anyOf"] = [*result["anyOf"], {"type": "integer"}, {"type": "string"}]
    if schema.get("nullable"):
        if "type" in result:
            result["type"] = [result["type"], "null"]
        if "enum" in result:
            result["enum"] = [*result["enum"], None]
        for combinator in ("anyOf", "oneOf"):
            if combinator in result:
                result[combinator] = [*result[combinator], {"type": "null"}]
    return result


def _field(path: Any) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _type_name(value: Any) -> str:
    for kind, name in (
        (bool, "boolean"),
        (int, "integer"),
        (float, "number"),
        (str, "string"),
        (list, "array"),
        (dict, "object"),
    ):
        if isinstance(value, kind):
            return name
    return "null"


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return '"object"'
    if isinstance(value, list):
        return '"array"'
    return json.dumps(value)


def _cause(error: jsonschema.ValidationError) -> list[FieldError]:
    where = _field(error.absolute_path)
    keyword, expected, value = error.validator, error.validator_value, error.instance
    if keyword == "required":
        missing = [key for key in expected if isinstance(value, dict) and key not in value]
        return [
            FieldError(f"{where}.{key}" if where else key, "FieldValueRequired", "Required value")
            for key in missing
        ]
    shown = f'"{_type_name(value)}"' if keyword == "type" else _show(value)
    body = f"{where or '<root>'} in body"
    if keyword == "enum":
        supported = ", ".join(_show(option) for option in expected)
        return [
            FieldError(
                where,
                "FieldValueNotSupported",
                f"Unsupported value: {shown}: supported values: {supported}",
            )
        ]
    texts = {
        "type": f"{body} must be of type {expected}: {shown}",
        "minimum": f"{body} should be greater than or equal to {expected}",
        "maximum": f"{body} should be less than or equal to {expected}",
        "minLength": f"{body} should be at least {expected} chars long",
        "maxLength": f"{body} should be at most {expected} chars long",
        "pattern": f"{body} should match '{expected}'",
        "minItems": f"{body} should have at least {expected} items",
        "maxItems": f"{body} should have at most {expected} items",
        "oneOf": f"{body} must validate one and only one schema (oneOf)",
        "anyOf": f"{body} must validate at least one schema (anyOf)",
        "allOf": f"{body} must validate all the schemas (allOf)",
        "not": f"{body} must not validate the schema (not)",
    }
    message = texts.get(str(keyword), f"{body}: {error.message}")
    return [FieldError(where, "FieldValueInvalid", f"Invalid value: {shown}: {message}")]


def validate(value: Any, schema: Mapping[str, Any]) -> list[FieldError]:
    """Every way `value` violates the structural `schema`, as a real server words it."""
    validator = jsonschema.Draft4Validator(to_jsonschema(schema))
    errors = sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path)))
    return [cause for error in errors for cause in _cause(error)]
