"""The CRDs in crds/ are structural apiextensions.k8s.io/v1 definitions that accept and
reject the same CloudApp/CloudJob documents as the models in controller.resources.

No API server runs here, so the parts of its behaviour the comparison depends on are
reproduced: the structural-schema rules a CRD must obey, the admission of an object
(unknown fields pruned, nulls of non-nullable fields dropped, defaults applied, whole
floats stored as integers by Go's JSON encoding) and Go's regular expressions (`$`
matches only at the very end). The corpus of documents is generated from the schemas
themselves: valid values, boundary numbers and lengths, near-miss patterns and enums,
values of other JSON types, missing required fields and unknown extra fields.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import available_timezones

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from controller import cron, naming, resources
from controller.resources import (
    CloudAppSpec,
    CloudAppStatus,
    CloudJobSpec,
    CloudJobStatus,
    app_semantic_errors,
    job_semantic_errors,
    parse_original_item_parameters,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CRD_FILES = {
    "CloudApp": ROOT / "crds/cloudapps.cloudjob.io.yaml",
    "CloudJob": ROOT / "crds/cloudjobs.cloudjob.io.yaml",
}
EXAMPLES = ROOT / "examples/manifests"
SPEC_MODELS: dict[str, type[BaseModel]] = {"CloudApp": CloudAppSpec, "CloudJob": CloudJobSpec}
STATUS_MODELS: dict[str, type[BaseModel]] = {
    "CloudApp": CloudAppStatus,
    "CloudJob": CloudJobStatus,
}

Schema = dict[str, Any]


@cache
def _load(kind: str) -> Schema:
    crd: Schema = yaml.safe_load(CRD_FILES[kind].read_text())
    return crd


def crd(kind: str) -> Schema:
    """A fresh copy of the CRD of `kind`, free to modify."""
    return copy.deepcopy(_load(kind))


def root_schema(crd_doc: Schema) -> Schema:
    schema: Schema = crd_doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def spec_schema(kind: str) -> Schema:
    schema: Schema = root_schema(_load(kind))["properties"]["spec"]
    return schema


def status_schema(kind: str) -> Schema:
    schema: Schema = root_schema(_load(kind))["properties"]["status"]
    return schema


# The API server's side: Go regexps, JSON numbers, admission, validation.


def go_regex(pattern: str) -> re.Pattern[str]:
    """`pattern` as Go (and ECMA-262) read it: `$` is the end of the text, never the
    position before a final newline as in Python."""
    return re.compile(re.sub(r"(?<!\\)\$", r"\\Z", pattern))


def go_json(value: Any) -> Any:
    """`value` as it reads back after the API server stored it: Go writes a whole
    float64 without a fraction, which then reads as an integer."""
    if isinstance(value, dict):
        return {key: go_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [go_json(item) for item in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    return value


def admit(node: Schema, value: Any) -> Any:
    """What the API server stores for `value` under schema `node`: unknown fields pruned,
    nulls of non-nullable fields dropped, then defaults applied."""
    if isinstance(value, dict) and node.get("type") == "object":
        known = node.get("properties")
        result: dict[str, Any] = {}
        for key, item in value.items():
            child = known.get(key) if known is not None else node.get("additionalProperties")
            if child is None or (item is None and not child.get("nullable")):
                continue
            result[key] = admit(child, item)
        for key, child in (known or {}).items():
            if key not in result and "default" in child:
                result[key] = copy.deepcopy(child["default"])
        return result
    if isinstance(value, list) and node.get("type") == "array":
        return [admit(node["items"], item) for item in value]
    return go_json(value)


def to_json_schema(node: Schema) -> Schema:
    """An OpenAPI v3 (Kubernetes) schema node as JSON Schema draft 4."""
    out: Schema = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in ("nullable", "description", "default"):
            continue
        if key == "properties":
            out[key] = {name: to_json_schema(child) for name, child in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = to_json_schema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [to_json_schema(part) for part in value]
        else:
            out[key] = value
    if node.get("nullable"):
        out["type"] = [node["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def _go_pattern(
    validator: Any, pattern: str, instance: Any, schema: Schema
) -> Iterator[jsonschema.ValidationError]:
    if validator.is_type(instance, "string") and not go_regex(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})\Z")
FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        return False
    datetime.fromisoformat(value.upper())
    return True


KubeValidator = jsonschema.validators.extend(jsonschema.Draft4Validator, {"pattern": _go_pattern})


def validator(node: Schema) -> Any:
    """A validator that judges documents as the API server does against `node`."""
    return KubeValidator(to_json_schema(node), format_checker=FORMATS)


@cache
def _spec_validator(kind: str) -> Any:
    return validator(spec_schema(kind))


def _one_job_kind(spec: dict[str, Any]) -> bool:
    return sum(kind in spec for kind in ("script", "python", "dataflow")) == 1


def _shard_keys(spec: dict[str, Any]) -> bool:
    return all(
        re.fullmatch(r"0|[1-9][0-9]{0,4}", key) is not None
        and int(key) < spec["shardingTotalCount"]
        for key in spec.get("shardingItemParameters", {})
    )


# The CRDs' CEL rules (x-kubernetes-validations) as the API server evaluates them, by
# message; tests/kubernetes/test_kubectl.py puts the same cases to the real server.
CEL_RULES: dict[str, Callable[[dict[str, Any]], bool]] = {
    "set exactly one of spec.script": _one_job_kind,
    "every key of spec.shardingItemParameters": _shard_keys,
}


def cel_rules(kind: str) -> list[Callable[[dict[str, Any]], bool]]:
    """The Python reading of each CEL rule on the spec of `kind`."""
    return [
        next(check for prefix, check in CEL_RULES.items() if rule["message"].startswith(prefix))
        for rule in spec_schema(kind).get("x-kubernetes-validations", [])
    ]


def schema_errors(kind: str, admitted: Any) -> list[jsonschema.ValidationError]:
    errors = list(_spec_validator(kind).iter_errors(admitted))
    # The server also runs the CEL rules; on a structurally valid spec they cannot fail
    # for a type error.
    if not errors:
        errors = [
            jsonschema.ValidationError(f"CEL rule {rule.__name__} refuses it")
            for rule in cel_rules(kind)
            if not rule(admitted)
        ]
    return errors


def model_accepts(model: type[BaseModel], doc: Any) -> bool:
    try:
        model.model_validate(doc)
    except ValidationError:
        return False
    return True


# Structural-schema rules of apiextensions.k8s.io/v1.

SCHEMA_KEYS = {
    "type", "format", "title", "description", "default", "maximum", "exclusiveMaximum",
    "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems",
    "minItems", "uniqueItems", "multipleOf", "enum", "maxProperties", "minProperties",
    "required", "items", "allOf", "oneOf", "anyOf", "not", "properties",
    "additionalProperties", "nullable", "example", "externalDocs",
    "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string", "x-kubernetes-list-map-keys", "x-kubernetes-list-type",
    "x-kubernetes-map-type", "x-kubernetes-validations",
}  # fmt: skip
OPENAPI_TYPES = {"object", "array", "string", "integer", "number", "boolean"}
NOT_IN_JUNCTORS = {"type", "description", "default", "additionalProperties", "nullable"}
PRINTER_TYPES = {"integer", "number", "string", "boolean", "date"}
PRINTER_COLUMN_KEYS = {"name", "type", "format", "description", "priority", "jsonPath"}
# The ObjectMeta fields a printer column may show; the API server provides them.
OBJECT_META: dict[str, Schema] = {
    "name": {"type": "string"},
    "namespace": {"type": "string"},
    "uid": {"type": "string"},
    "generation": {"type": "integer"},
    "creationTimestamp": {"type": "string", "format": "date-time"},
    "deletionTimestamp": {"type": "string", "format": "date-time"},
}


def crd_errors(doc: Schema) -> list[str]:
    """Why `doc` is not a valid structural apiextensions.k8s.io/v1 CRD (empty if it is)."""
    errors: list[str] = []
    if doc.get("apiVersion") != "apiextensions.k8s.io/v1":
        errors.append("apiVersion: must be apiextensions.k8s.io/v1")
    if doc.get("kind") != "CustomResourceDefinition":
        errors.append("kind: must be CustomResourceDefinition")
    spec = doc.get("spec", {})
    names = spec.get("names", {})
    if doc.get("metadata", {}).get("name") != f"{names.get('plural')}.{spec.get('group')}":
        errors.append("metadata.name: must be <plural>.<group>")
    errors += [f"spec.names.{key}: required" for key in ("kind", "plural") if not names.get(key)]
    for key in ("plural", "singular", "listKind"):
        if key in names and not re.fullmatch(naming.DNS_LABEL_PATTERN, names[key].lower()):
            errors.append(f"spec.names.{key}: must be a DNS label")
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        errors.append("spec.scope: must be Namespaced or Cluster")
    versions = spec.get("versions", [])
    if sum(1 for version in versions if version.get("storage")) != 1:
        errors.append("spec.versions: exactly one version must be the storage version")
    for version in versions:
        where = f"spec.versions[{version.get('name')}]"
        schema = version.get("schema", {}).get("openAPIV3Schema")
        if schema is None:
            errors.append(f"{where}.schema.openAPIV3Schema: required")
            continue
        errors += node_errors(schema, f"{where}.schema.openAPIV3Schema", root=True)
        if "status" in version.get("subresources", {}) and "status" not in schema.get(
            "properties", {}
        ):
            errors.append(f"{where}.subresources.status: the schema has no status")
        for column in version.get("additionalPrinterColumns", []):
            errors += column_errors(schema, column, f"{where}.additionalPrinterColumns")
    return errors


def node_errors(
    node: Any,
    path: str,
    *,
    outer: Schema | None = None,
    root: bool = False,
    no_default: bool = False,
) -> list[str]:
    """The structural rules for one schema node and everything below it. `outer` is the
    node that a junctor part (in allOf/anyOf/oneOf/not) belongs to; None elsewhere."""
    if not isinstance(node, dict):
        return [f"{path}: must be a schema object"]
    errors = [
        f"{path}.{key}: not supported in a CRD schema" for key in node if key not in SCHEMA_KEYS
    ]
    if outer is not None:
        errors += [
            f"{path}.{key}: must not be set in a junctor" for key in NOT_IN_JUNCTORS & node.keys()
        ]
    elif "type" not in node and not (
        node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields")
    ):
        errors.append(f"{path}.type: must not be empty")
    if "type" in node and node["type"] not in OPENAPI_TYPES:
        errors.append(f"{path}.type: {node['type']!r} is not one of {sorted(OPENAPI_TYPES)}")
    if root and node.get("type") != "object":
        errors.append(f"{path}.type: the root must be an object")
    if "properties" in node and "additionalProperties" in node:
        errors.append(f"{path}: additionalProperties and properties are mutually exclusive")
    if "additionalProperties" in node and not isinstance(node["additionalProperties"], dict):
        errors.append(f"{path}.additionalProperties: must be a schema")
    if node.get("uniqueItems") is True:
        errors.append(f"{path}.uniqueItems: cannot be true")
    if node.get("x-kubernetes-preserve-unknown-fields") is False:
        errors.append(f"{path}.x-kubernetes-preserve-unknown-fields: must be true or undefined")
    if "items" in node and not isinstance(node["items"], dict):
        errors.append(f"{path}.items: must be a single schema, not a list")
    owner = node if outer is None else outer
    errors += [
        f"{path}.required: {name!r} is not a property"
        for name in node.get("required", [])
        if name not in owner.get("properties", {})
    ]
    if "default" in node and outer is None:
        if no_default:
            errors.append(f"{path}.default: not allowed in top-level metadata, apiVersion, kind")
        errors += default_errors(node, path)
    if "enum" in node and outer is None:
        probe = validator({key: value for key, value in node.items() if key != "enum"})
        errors += [
            f"{path}.enum: {v!r} is not of its type" for v in node["enum"] if not probe.is_valid(v)
        ]
    if root and "metadata" in node.get("properties", {}):
        errors += metadata_errors(node["properties"]["metadata"], f"{path}.properties.metadata")

    for key, child in node.get("properties", {}).items():
        child_path = f"{path}.properties.{key}"
        if outer is not None:
            counterpart = outer.get("properties", {}).get(key)
            if counterpart is None:
                errors.append(f"{child_path}: must also be specified outside the junctor")
            else:
                errors += node_errors(child, child_path, outer=counterpart)
        elif not (root and key == "metadata"):
            errors += node_errors(
                child, child_path, no_default=root and key in ("apiVersion", "kind")
            )
    for key in ("items", "additionalProperties"):
        child = node.get(key)
        if not isinstance(child, dict):
            continue
        if outer is None:
            errors += node_errors(child, f"{path}.{key}")
        elif isinstance(outer.get(key), dict):
            errors += node_errors(child, f"{path}.{key}", outer=outer[key])
        else:
            errors.append(f"{path}.{key}: must also be specified outside the junctor")
    for junctor in ("allOf", "anyOf", "oneOf"):
        for index, part in enumerate(node.get(junctor, [])):
            errors += node_errors(part, f"{path}.{junctor}[{index}]", outer=owner)
    if "not" in node:
        errors += node_errors(node["not"], f"{path}.not", outer=owner)
    return errors


def metadata_errors(node: Schema, path: str) -> list[str]:
    """At the root, metadata may restrict only name and generateName, both strings."""
    errors = [
        f"{path}.{key}: not allowed on metadata"
        for key in node
        if key not in ("type", "properties")
    ]
    if node.get("type") != "object":
        errors.append(f"{path}.type: must be object")
    for key, child in node.get("properties", {}).items():
        if key not in ("name", "generateName"):
            errors.append(f"{path}.properties.{key}: only name and generateName may be restricted")
        elif child.get("type") != "string":
            errors.append(f"{path}.properties.{key}.type: must be string")
        elif "default" in child:
            errors.append(f"{path}.properties.{key}.default: not allowed in metadata")
    return errors


def default_errors(node: Schema, path: str) -> list[str]:
    """A default must be valid against its own schema and already pruned."""
    default = node["default"]
    errors = [f"{path}.default: {error.message}" for error in validator(node).iter_errors(default)]
    if admit(node, default) != default:
        errors.append(f"{path}.default: holds fields the schema prunes")
    return errors


_SEGMENT = re.compile(r'\.([A-Za-z0-9_-]+)|\[\?\(@\.([A-Za-z0-9_-]+)=="[^"]*"\)\]')


def resolve_json_path(schema: Schema, json_path: str) -> Schema:
    """The schema node a printer column's JSONPath points to (ValueError if none)."""
    node, position = schema, 0
    while position < len(json_path):
        match = _SEGMENT.match(json_path, position)
        if not match:
            raise ValueError(f"cannot read {json_path!r} at position {position}")
        field, filter_field = match.groups()
        if field is not None and node is schema and field == "metadata":
            node = {"type": "object", "properties": OBJECT_META}
        elif field is not None:
            if field not in node.get("properties", {}):
                raise ValueError(f"{json_path!r}: no field {field!r}")
            node = node["properties"][field]
        else:
            if node.get("type") != "array":
                raise ValueError(f"{json_path!r}: a filter needs an array")
            node = node["items"]
            if filter_field not in node.get("properties", {}):
                raise ValueError(f"{json_path!r}: the items have no field {filter_field!r}")
        position = match.end()
    return node


def column_errors(schema: Schema, column: Schema, path: str) -> list[str]:
    where = f"{path}[{column.get('name')}]"
    errors = [f"{where}.{key}: unknown field" for key in column if key not in PRINTER_COLUMN_KEYS]
    errors += [
        f"{where}.{key}: required" for key in ("name", "type", "jsonPath") if not column.get(key)
    ]
    if column.get("type") not in PRINTER_TYPES:
        errors.append(f"{where}.type: must be one of {sorted(PRINTER_TYPES)}")
    priority = column.get("priority", 0)
    if not isinstance(priority, int) or priority < 0:
        errors.append(f"{where}.priority: must be a non-negative integer")
    try:
        target = resolve_json_path(schema, str(column.get("jsonPath", "")))
    except ValueError as error:
        return [*errors, f"{where}.jsonPath: {error}"]
    type_, format_ = target.get("type"), target.get("format")
    fits = {
        "date": type_ == "string" and format_ == "date-time",
        "integer": type_ == "integer",
        "number": type_ in ("number", "integer"),
        "boolean": type_ == "boolean",
        "string": type_ == "string",
    }
    if not fits.get(str(column.get("type")), False):
        errors.append(f"{where}.type: a {column.get('type')} column cannot show {type_}")
    return errors


def walk(node: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    """Every schema node below `node` with its path (`[]` for items and map values)."""
    for key, child in node.get("properties", {}).items():
        yield f"{path}.{key}", child
        yield from walk(child, f"{path}.{key}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield f"{path}[]", node[key]
            yield from walk(node[key], f"{path}[]")


# (a) The CRDs are valid structural apiextensions.k8s.io/v1 CRDs.


@pytest.mark.parametrize("kind", CRD_FILES)
def test_crd_is_a_valid_structural_v1_crd(kind: str) -> None:
    doc = crd(kind)
    assert crd_errors(doc) == []
    assert doc["spec"]["group"] == resources.GROUP
    assert doc["spec"]["scope"] == "Namespaced"
    assert doc["spec"]["names"]["kind"] == kind
    assert doc["spec"]["names"]["plural"] == f"{kind.lower()}s"
    assert doc["spec"]["names"]["categories"] == ["cloudjob-all"]
    assert doc["spec"]["names"]["shortNames"][0] in ("capp", "cjob")
    [version] = doc["spec"]["versions"]
    assert (version["name"], version["served"], version["storage"]) == (
        resources.VERSION,
        True,
        True,
    )
    assert version["subresources"] == {"status": {}}


@pytest.mark.parametrize("kind", CRD_FILES)
def test_every_field_is_described_and_none_preserves_unknown_fields(kind: str) -> None:
    for path, node in walk(root_schema(_load(kind))):
        assert "x-kubernetes-preserve-unknown-fields" not in node, path
        if not path.startswith(".metadata") and not path.endswith("[]"):
            assert node.get("description"), f"{kind}{path}: kubectl explain would show nothing"


def _columns(kind: str) -> dict[str, str]:
    version = _load(kind)["spec"]["versions"][0]
    return {
        column["name"]: column["jsonPath"]
        for column in version["additionalPrinterColumns"]
        if not column.get("priority")
    }


def test_printer_columns_show_what_kubectl_get_needs() -> None:
    assert _columns("CloudJob") == {
        "Type": ".spec.executionType",
        "Cron": ".spec.cron",
        "Shards": ".spec.shardingTotalCount",
        "App": ".spec.appName",
        "State": ".status.state",
        "Last Schedule": ".status.lastScheduleTime",
        "Age": ".metadata.creationTimestamp",
    }
    assert _columns("CloudApp") == {
        "URL": ".spec.appURL",
        "CPU": ".spec.cpuCount",
        "Memory": ".spec.memoryMB",
        "Disabled": ".spec.disabled",
        "Ready": '.status.conditions[?(@.type=="Ready")].status',
        "Age": ".metadata.creationTimestamp",
    }


def _changed(kind: str, path: str, value: Any) -> Schema:
    """The CRD of `kind` with the schema node at dotted `path` set (None: removed)."""
    doc = crd(kind)
    node = root_schema(doc)
    *parents, last = path.split(".")
    for part in parents:
        node = node[part]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return doc


def _with_column(json_path: str, type_: str = "string") -> Schema:
    doc = crd("CloudJob")
    columns = doc["spec"]["versions"][0]["additionalPrinterColumns"]
    columns.append({"name": "Extra", "type": type_, "jsonPath": json_path})
    return doc


SPEC = "properties.spec"
FIELDS = "properties.spec.properties"
BROKEN_CRDS: dict[str, Callable[[], Schema]] = {
    "field without a type": lambda: _changed("CloudJob", f"{FIELDS}.cron.type", None),
    "properties with additionalProperties": lambda: _changed(
        "CloudJob", f"{FIELDS}.script.additionalProperties", {"type": "string"}
    ),
    "type inside oneOf": lambda: _changed("CloudJob", f"{SPEC}.oneOf", [{"type": "object"}]),
    "description inside oneOf": lambda: _changed(
        "CloudJob", f"{SPEC}.oneOf", [{"required": ["script"], "description": "x"}]
    ),
    "property only inside a junctor": lambda: _changed(
        "CloudJob", f"{SPEC}.anyOf", [{"properties": {"nope": {"minLength": 1}}}]
    ),
    "metadata restricting labels": lambda: _changed(
        "CloudApp", "properties.metadata.properties.labels", {"type": "object"}
    ),
    "default in metadata": lambda: _changed(
        "CloudApp", "properties.metadata.properties.name.default", "app"
    ),
    "default of the wrong type": lambda: _changed("CloudApp", f"{FIELDS}.cpuCount.default", "1"),
    "default out of range": lambda: _changed("CloudApp", f"{FIELDS}.memoryMB.default", 0),
    "default outside the enum": lambda: _changed(
        "CloudJob", f"{FIELDS}.executionType.default", "transient"
    ),
    "uniqueItems": lambda: _changed(
        "CloudJob", "properties.status.properties.activeShards.uniqueItems", True
    ),
    "$ref": lambda: _changed("CloudJob", f"{FIELDS}.script.$ref", "#/definitions/Script"),
    "type null": lambda: _changed("CloudJob", f"{FIELDS}.jobParameter.type", "null"),
    "required field that does not exist": lambda: _changed(
        "CloudJob", f"{SPEC}.required", ["appName", "cronExpression"]
    ),
    "enum value of another type": lambda: _changed(
        "CloudJob", f"{FIELDS}.placementStrategy.enum", ["binpack", 1]
    ),
    "column to a missing field": lambda: _with_column(".spec.shards"),
    "column to a missing status field": lambda: _with_column(".status.phase"),
    "column filter on a missing field": lambda: _with_column(
        '.status.conditions[?(@.kind=="Ready")].status'
    ),
    "date column on a plain string": lambda: _with_column(".spec.cron", "date"),
    "integer column on a number": lambda: _with_column(".spec.cpuCount", "integer"),
}


@pytest.mark.parametrize("breakage", BROKEN_CRDS)
def test_the_structural_checker_finds_each_broken_rule(breakage: str) -> None:
    assert crd_errors(BROKEN_CRDS[breakage]()) != []


# The CRD schemas and the models hold the same fields, constants and defaults.


def _model_fields(model: type[BaseModel]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


@pytest.mark.parametrize(
    ("kind", "path", "model"),
    [
        ("CloudApp", "spec", CloudAppSpec),
        ("CloudApp", "status", CloudAppStatus),
        ("CloudApp", "status.conditions.items", resources.Condition),
        ("CloudApp", "status.executors.items", resources.AppExecutor),
        ("CloudJob", "spec", CloudJobSpec),
        ("CloudJob", "spec.script", resources.ScriptJob),
        ("CloudJob", "spec.python", resources.PythonJob),
        ("CloudJob", "spec.dataflow", resources.DataflowJob),
        ("CloudJob", "status", CloudJobStatus),
        ("CloudJob", "status.conditions.items", resources.Condition),
        ("CloudJob", "status.activeShards.items", resources.ActiveShard),
        ("CloudJob", "status.recentRuns.items", resources.RecentRun),
        ("CloudJob", "status.recentRuns.items.shards.items", resources.ShardOutcome),
    ],
)
def test_crd_fields_defaults_and_required_are_the_models(
    kind: str, path: str, model: type[BaseModel]
) -> None:
    node = root_schema(_load(kind))
    for part in path.split("."):
        node = node[part] if part == "items" else node["properties"][part]
    properties = node["properties"]
    assert set(properties) == _model_fields(model)
    required = {f.alias or n for n, f in model.model_fields.items() if f.is_required()}
    assert set(node.get("required", [])) == required
    for name, field in model.model_fields.items():
        child = properties[field.alias or name]
        default = None if field.is_required() else field.get_default(call_default_factory=True)
        if "default" in child:
            assert child["default"] == default, name
        elif not field.is_required() and default not in (None, "", {}, []):
            # A field with a real default is defaulted by the API server as by the model,
            # so the stored object shows the value in force.
            assert path.startswith("status"), f"{path}.{name} needs default {default!r}"


def test_crd_patterns_and_limits_are_the_models_constants() -> None:
    job = spec_schema("CloudJob")["properties"]
    for kind in CRD_FILES:
        name = root_schema(_load(kind))["properties"]["metadata"]["properties"]["name"]
        assert (name["pattern"], name["maxLength"]) == (
            naming.DNS_LABEL_PATTERN,
            naming.MAX_NAME_LENGTH,
        )
    assert job["appName"]["pattern"] == naming.DNS_LABEL_PATTERN
    assert job["appName"]["maxLength"] == naming.MAX_NAME_LENGTH
    assert job["cron"]["pattern"] == resources.CRON_PATTERN
    assert job["timeZone"]["pattern"] == resources.TIME_ZONE_PATTERN
    assert job["python"]["properties"]["callable"]["pattern"] == resources.PYTHON_TARGET_PATTERN
    assert job["dataflow"]["properties"]["source"]["pattern"] == resources.PYTHON_TARGET_PATTERN
    assert job["shardingTotalCount"]["maximum"] == resources.MAX_SHARDS
    assert job["startingDeadlineSeconds"]["maximum"] == resources.MAX_STARTING_DEADLINE
    assert job["script"]["properties"]["commandLine"]["maxLength"] == resources.MAX_COMMAND_LINE
    assert job["executionType"]["enum"] == list(resources.ExecutionType)
    assert job["placementStrategy"]["enum"] == list(resources.PlacementStrategy)
    assert {kind.value for kind in resources.JobKind} == {"script", "python", "dataflow"}
    assert [rule.__name__ for rule in cel_rules("CloudJob")] == ["_one_job_kind", "_shard_keys"]
    assert cel_rules("CloudApp") == []


# (b) A generated corpus: the schema and the model accept exactly the same documents.

OTHER_TYPES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(-2.5, 2.5),
    st.text(max_size=3),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)


def _mixed(
    plausible: st.SearchStrategy[Any], near: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """Mostly plausible values, some near misses, a few values of another JSON type."""
    return st.integers(0, 99).flatmap(
        lambda roll: plausible if roll < 88 else near if roll < 96 else OTHER_TYPES
    )


def _of_length(n: int) -> list[str]:
    """Strings of length n that, between them, fit each pattern of the schemas."""
    return ["a" * n, ("a:" + "b" * n)[:n], ("* * * * " + "*" * n)[:n]]


def _strings(node: Schema) -> st.SearchStrategy[Any]:
    low, high = node.get("minLength", 0), node.get("maxLength")
    lengths = {n for n in (low - 1, low, high, high and high + 1) if n is not None and n >= 0}
    boundary = st.sampled_from(sorted(s for n in lengths for s in _of_length(n)))
    if "enum" in node:
        plausible: st.SearchStrategy[str] = st.sampled_from(node["enum"])
        near = plausible.map(lambda s: s.lower() if s != s.lower() else s.upper())
    elif "pattern" in node:
        plausible = st.from_regex(node["pattern"], fullmatch=True)
        affix = st.sampled_from(["\n", " ", "/", "@-@", "_", "A", "é", ":", "."])
        near = st.tuples(plausible, affix, st.booleans()).map(
            lambda parts: parts[0] + parts[1] if parts[2] else parts[1] + parts[0]
        )
    else:
        plausible, near = TEXT, boundary
    return _mixed(plausible, st.one_of(near, boundary, TEXT))


def _numbers(node: Schema) -> st.SearchStrategy[Any]:
    low, high = node["minimum"], node["maximum"]
    if node["type"] == "integer":
        edges = [low - 1, low, high, high + 1]
        return _mixed(
            st.integers(low, high),
            st.one_of(
                st.sampled_from(edges),
                st.sampled_from(edges).map(float),
                st.floats(low - 1, high + 1).filter(lambda f: not f.is_integer()),
                st.sampled_from(edges).map(str),
                st.integers(),
            ),
        )
    edges = [low, high, math.nextafter(low, -math.inf), math.nextafter(high, math.inf), 0, -1]
    return _mixed(
        st.one_of(st.floats(low, high), st.integers(math.ceil(low), math.floor(high))),
        st.one_of(
            st.sampled_from(edges),
            st.sampled_from(edges).map(str),
            st.floats(allow_nan=False, allow_infinity=False),
            st.integers(),
        ),
    )


def _objects(node: Schema) -> st.SearchStrategy[Any]:
    children = {key: documents(child) for key, child in node["properties"].items()}
    required = set(node.get("required", []))
    unknown = st.sampled_from(["extra", "unknownField", *(key.upper() for key in children)])

    @st.composite
    def objects(draw: st.DrawFn) -> Any:
        if draw(st.integers(0, 99)) >= 98:
            return draw(OTHER_TYPES)
        doc: dict[str, Any] = {}
        for key, values in children.items():
            if draw(st.integers(0, 99)) < (94 if key in required else 50):
                doc[key] = draw(values)
        if draw(st.integers(0, 99)) >= 90:
            doc.setdefault(draw(unknown), draw(OTHER_TYPES))
        return doc

    return objects()


def documents(node: Schema) -> st.SearchStrategy[Any]:
    """Documents for schema `node`: valid ones and near misses of every kind."""
    type_ = node["type"]
    if type_ == "object" and "properties" in node:
        return _objects(node)
    if type_ == "object":
        keys = st.one_of(st.integers(0, 12).map(str), TEXT)
        values = documents(node["additionalProperties"])
        return _mixed(st.dictionaries(keys, values, max_size=4), OTHER_TYPES)
    if type_ == "string":
        return _strings(node)
    if type_ in ("integer", "number"):
        return _numbers(node)
    assert type_ == "boolean", f"no document generator for {type_} nodes"
    return _mixed(st.booleans(), st.sampled_from(["true", "false", 0, 1, None]))


def _contains_null(doc: Any) -> bool:
    if isinstance(doc, dict):
        return any(_contains_null(v) for v in doc.values())
    if isinstance(doc, list):
        return any(_contains_null(v) for v in doc)
    return doc is None


def shard_key_errors(kind: str, admitted: Any) -> list[str]:
    """The controller's own check of shard keys (the CRD's CEL rule says the same)."""
    if kind != "CloudJob":
        return []
    spec = resources.CloudJobSpec.model_validate(admitted)
    return [
        error
        for error in resources.job_semantic_errors("job", spec)
        if error.startswith("spec.shardingItemParameters")
    ]


def agreement(kind: str, doc: Any) -> bool:
    """Assert the CRD schema and the model judge `doc` alike; return whether they accept."""
    model = SPEC_MODELS[kind]
    admitted = admit(spec_schema(kind), doc)
    errors = schema_errors(kind, admitted)
    accepted = model_accepts(model, admitted) and not shard_key_errors(kind, admitted)
    assert accepted == (not errors), (
        f"the schema {'rejects' if errors else 'accepts'} but the model "
        f"{'accepts' if accepted else 'rejects'}: {admitted!r}\n"
        + "\n".join(f"  {list(e.absolute_path)}: {e.message}" for e in errors)
    )
    # The model applies the CRD's defaults itself and ignores what the API server
    # prunes, so it reads a document alike before and after admission.
    if accepted and not _contains_null(doc):
        assert model.model_validate(go_json(doc)) == model.model_validate(admitted)
    return accepted


CORPUS = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@CORPUS
@given(doc=documents(spec_schema("CloudJob")))
def test_cloudjob_schema_and_model_agree_on_generated_documents(doc: Any) -> None:
    agreement("CloudJob", doc)


@CORPUS
@given(doc=documents(spec_schema("CloudApp")))
def test_cloudapp_schema_and_model_agree_on_generated_documents(doc: Any) -> None:
    agreement("CloudApp", doc)


GOOD_APP = {"appURL": "http://127.0.0.1:8000/demo-app.tar.gz", "bootstrapScript": "bin/start"}
GOOD_JOB = {
    "appName": "demo-app",
    "cron": "*/10 * * * * ?",
    "shardingTotalCount": 3,
    "cpuCount": 0.1,
    "memoryMB": 64,
    "script": {"commandLine": "bin/hello.sh"},
}
JOB_KINDS = {
    "script": {"commandLine": "bin/hello.sh"},
    "python": {"callable": "demo_jobs.simple:run"},
    "dataflow": {"source": "demo_jobs.dataflow:Numbers"},
}


def _field_cases() -> Iterator[tuple[str, str]]:
    for kind in CRD_FILES:
        for path, node in walk(spec_schema(kind)):
            if "[]" not in path and "properties" not in node:
                yield kind, path.lstrip(".")


def _with_value(kind: str, field: str, value: Any) -> Schema:
    """A valid spec of `kind` (of the job kind `field` belongs to) with `field` set."""
    doc = copy.deepcopy(GOOD_APP if kind == "CloudApp" else GOOD_JOB)
    first, _, rest = field.partition(".")
    if first in JOB_KINDS:
        del doc["script"]
        doc[first] = copy.deepcopy(JOB_KINDS[first])
    target = doc[first] if rest else doc
    target[rest or first] = value
    return doc


def _node(kind: str, field: str) -> Schema:
    node = spec_schema(kind)
    for part in field.split("."):
        node = node["properties"][part]
    return node


@pytest.mark.parametrize(("kind", "field"), list(_field_cases()))
@settings(max_examples=60, deadline=None, database=None)
@given(data=st.data())
def test_schema_and_model_agree_on_every_value_of_each_field(
    kind: str, field: str, data: st.DataObject
) -> None:
    value = data.draw(documents(_node(kind, field)))
    agreement(kind, _with_value(kind, field, value))


JOB_KIND_MODELS: dict[str, type[BaseModel]] = {
    "script": resources.ScriptJob,
    "python": resources.PythonJob,
    "dataflow": resources.DataflowJob,
}


def _bounds(kind: str, field: str) -> tuple[list[float], list[int]]:
    """The number bounds and string lengths that the CRD or the model states for `field`."""
    node = _node(kind, field)
    if node["type"] == "object":
        node = node["additionalProperties"]
    numbers = [node[key] for key in ("minimum", "maximum") if key in node]
    lengths = [node[key] for key in ("minLength", "maxLength") if key in node]
    first, _, rest = field.partition(".")
    model = JOB_KIND_MODELS[first] if rest else SPEC_MODELS[kind]
    [info] = [f for n, f in model.model_fields.items() if (f.alias or n) == (rest or first)]
    for constraint in info.metadata:
        numbers += [getattr(constraint, key) for key in ("ge", "le") if hasattr(constraint, key)]
        lengths += [
            getattr(constraint, key)
            for key in ("min_length", "max_length")
            if hasattr(constraint, key)
        ]
    return numbers, lengths


def edge_values(kind: str, field: str) -> list[Any]:
    """Values on and just beyond every bound either side states, and other JSON types."""
    node = _node(kind, field)
    numbers, lengths = _bounds(kind, field)
    strings = [s for n in lengths for d in (-1, 0, 1) if n + d >= 0 for s in _of_length(n + d)]
    others: list[Any] = [None, True, "1", [], {}]
    match node["type"]:
        case "integer":
            steps = [b + d for b in numbers for d in (-1, 0, 1, 0.5)]
            return [*steps, *(float(b) for b in numbers), *others]
        case "number":
            near = [math.nextafter(b, to) for b in numbers for to in (-math.inf, math.inf)]
            return [*numbers, *near, *(int(b) for b in numbers), *others]
        case "string":
            cases = [variant for v in node.get("enum", []) for variant in (v, v.lower())]
            return [*strings, *cases, *others]
        case "boolean":
            return [True, False, "true", 0, 1, *others]
    maps = [{"0": s} for s in strings] + [{"0": v} for v in others] + [{"zero": "a"}]
    return [*maps, *others]


@pytest.mark.parametrize(("kind", "field"), list(_field_cases()))
def test_schema_and_model_agree_at_the_edges_of_each_field(kind: str, field: str) -> None:
    outcomes = {agreement(kind, _with_value(kind, field, v)) for v in edge_values(kind, field)}
    assert outcomes == {True, False}


@pytest.mark.parametrize(("kind", "field"), list(_field_cases()))
def test_the_corpus_holds_accepted_and_rejected_values_of_each_field(kind: str, field: str) -> None:
    # So that the agreement above is not vacuous. No shrinking: any example will do.
    values = documents(_node(kind, field))
    quick = settings(database=None, max_examples=2000, phases=[Phase.generate])
    for wanted in (True, False):

        def judged(value: Any, wanted: bool = wanted) -> bool:
            return agreement(kind, _with_value(kind, field, value)) == wanted

        find(values, judged, settings=quick)


@pytest.mark.parametrize("kind", CRD_FILES)
def test_each_required_field_is_required_by_both(kind: str) -> None:
    good = GOOD_APP if kind == "CloudApp" else GOOD_JOB
    assert agreement(kind, good)
    for field in spec_schema(kind)["required"]:
        assert not agreement(kind, {k: v for k, v in good.items() if k != field}), field


def test_exactly_one_job_kind_in_both() -> None:
    base = {k: v for k, v in GOOD_JOB.items() if k != "script"}
    for count in range(len(JOB_KINDS) + 1):
        for chosen in itertools.combinations(JOB_KINDS, count):
            doc = base | {kind: JOB_KINDS[kind] for kind in chosen}
            assert agreement("CloudJob", doc) == (count == 1), chosen
    # The API server drops a null job kind, so it does not count as given.
    assert agreement("CloudJob", GOOD_JOB | {"python": None})


# Status: what the controller writes, the CRD keeps whole, and it reads back the same.


@st.composite
def _conditions(draw: st.DrawFn) -> resources.Condition:
    return resources.Condition(
        type=draw(st.sampled_from(["Ready", "Scheduled", "CannotPlace"])),
        status=draw(st.sampled_from(resources.ConditionStatus)),
        reason=draw(st.from_regex(r"[A-Z][A-Za-z]{0,20}", fullmatch=True)),
        message=draw(TEXT),
        last_transition_time=draw(st.datetimes(timezones=st.just(UTC))),
        observed_generation=draw(st.none() | st.integers(1, 2**40)),
    )


MOMENTS = st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=9))]))
COUNTS = st.integers(0, 2**40)
STATUSES: dict[str, st.SearchStrategy[BaseModel]] = {
    "CloudJob": st.builds(
        CloudJobStatus,
        observed_generation=st.none() | COUNTS,
        conditions=st.lists(_conditions(), max_size=3),
        state=st.none() | TEXT,
        last_schedule_time=st.none() | MOMENTS,
        next_schedule_time=st.none() | MOMENTS,
        last_successful_time=st.none() | MOMENTS,
        active_shards=st.lists(
            st.builds(
                resources.ActiveShard,
                shard=st.integers(0, resources.MAX_SHARDS),
                task_id=TEXT,
                agent=TEXT,
                state=st.sampled_from(["TASK_STAGING", "TASK_RUNNING"]),
                since=MOMENTS,
                host=st.none() | TEXT,
            ),
            max_size=3,
        ),
        succeeded=COUNTS,
        failed=COUNTS,
        pending_runs=COUNTS,
        failover_shards=st.lists(st.integers(0, resources.MAX_SHARDS), max_size=3),
        recent_runs=st.lists(
            st.builds(
                resources.RecentRun,
                fire_time=st.none() | MOMENTS,
                startedAt=MOMENTS,
                outcome=st.sampled_from(["Running", "Succeeded", "Failed", "Killed"]),
                shards=st.lists(
                    st.builds(
                        resources.ShardOutcome,
                        shard=st.integers(0, resources.MAX_SHARDS),
                        host=TEXT,
                        outcome=st.none() | st.sampled_from(["succeeded", "failed"]),
                        task_id=TEXT,
                        message=st.none() | TEXT,
                    ),
                    max_size=3,
                ),
            ),
            max_size=2,
        ),
        last_trigger=st.none() | TEXT,
    ),
    "CloudApp": st.builds(
        CloudAppStatus,
        observed_generation=st.none() | COUNTS,
        conditions=st.lists(_conditions(), max_size=3),
        executors=st.lists(
            st.builds(resources.AppExecutor, agent=TEXT, executor_id=TEXT, tasks=COUNTS),
            max_size=3,
        ),
        last_reconcile=st.none() | TEXT,
    ),
}


@pytest.mark.parametrize("kind", CRD_FILES)
@settings(max_examples=150, deadline=None, database=None)
@given(data=st.data())
def test_status_written_by_the_controller_is_kept_and_reads_back(
    kind: str, data: st.DataObject
) -> None:
    status = data.draw(STATUSES[kind])
    schema = status_schema(kind)
    for written in (
        status.model_dump(mode="json", by_alias=True),
        status.model_dump(mode="json", by_alias=True, exclude_none=True),
    ):
        assert admit(schema, written) == written, "the API server would prune part of it"
        assert list(validator(schema).iter_errors(written)) == []
        assert STATUS_MODELS[kind].model_validate(written) == status


@pytest.mark.parametrize("kind", CRD_FILES)
def test_status_times_need_an_offset_in_schema_and_model(kind: str) -> None:
    condition = {"type": "Ready", "status": "True", "reason": "Ready"}
    for moment, valid in (("2024-05-01T10:00:00", False), ("2024-05-01T10:00:00Z", True)):
        status = {"conditions": [condition | {"lastTransitionTime": moment}]}
        assert validator(status_schema(kind)).is_valid(status) == valid
        assert model_accepts(STATUS_MODELS[kind], status) == valid


# Names and outlines: the patterns never refuse what the engines accept.


@settings(max_examples=300, deadline=None, database=None)
@given(
    name=st.one_of(
        st.from_regex(naming.DNS_LABEL_PATTERN, fullmatch=True),
        st.text(st.sampled_from("ab-9.Z_\n"), max_size=70),
        st.integers(60, 66).map(lambda n: "a" * n),
    )
)
def test_metadata_name_schema_agrees_with_the_naming_rules(name: str) -> None:
    for kind in CRD_FILES:
        schema = root_schema(_load(kind))["properties"]["metadata"]["properties"]["name"]
        assert validator(schema).is_valid(name) == (naming.name_error(kind, name) is None)


def test_every_iana_time_zone_fits_the_time_zone_outline() -> None:
    zones = available_timezones()
    assert "Europe/Berlin" in zones
    for zone in zones:
        assert model_accepts(CloudJobSpec, GOOD_JOB | {"timeZone": zone}), zone
        assert cron.validate_time_zone(zone) is None


@settings(max_examples=500, deadline=None, database=None)
@given(expression=st.text(st.sampled_from(" 0123456789*?/,-#LWJANMONFRIsun"), max_size=30))
def test_cron_outline_never_refuses_an_expression_the_cron_engine_accepts(
    expression: str,
) -> None:
    if cron.validate_cron(expression) is None:
        assert go_regex(resources.CRON_PATTERN).search(expression), expression


@pytest.mark.parametrize(
    "expression",
    ["*/10 * * * * ?", "0 0 12 ? * MON-FRI", "0 15 10 L * ? 2030", "0 0 12 15W * ?",
     "0 0 12 ? * 6#3", "0 0 12 ? * 6L", "*/5 * * * *", "0 9 * * mon-fri", " 0 0 * * * ? "],
)  # fmt: skip
def test_valid_cron_expressions_pass_outline_and_engine(expression: str) -> None:
    assert cron.validate_cron(expression) is None
    assert agreement("CloudJob", GOOD_JOB | {"cron": expression})


# (c) Bad names and limits get messages that name the field and the fix.

DROP = object()


def _model_error(model: type[BaseModel], doc: Schema) -> tuple[set[str], str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(doc)
    return {".".join(map(str, e["loc"])) for e in caught.value.errors()}, str(caught.value)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"appName": "Demo_App"}, "appName", ["CloudApp name 'Demo_App' must be a DNS label"]),
        ({"appName": "a" * 64}, "appName", ["64 characters long", "at most 63", "Mesos task ids"]),
        ({"appName": "app\n"}, "appName", ["must be a DNS label"]),
        ({"cron": "every minute"}, "cron", ["not a cron expression", "5 fields", "6-7 Quartz"]),
        ({"cron": "0 0 12 * * ? 2030 1"}, "cron", ["not a cron expression"]),
        ({"timeZone": "+02:00"}, "timeZone", ["not an IANA time zone name", "Europe/Berlin"]),
        ({"shardingTotalCount": 0}, "shardingTotalCount", ["greater than or equal to 1"]),
        ({"shardingTotalCount": 10_001}, "shardingTotalCount", ["less than or equal to 10000"]),
        ({"shardingTotalCount": "3"}, "shardingTotalCount", ["valid integer"]),
        ({"cpuCount": 0.0005}, "cpuCount", ["greater than or equal to 0.001"]),
        ({"memoryMB": 0}, "memoryMB", ["greater than or equal to 1"]),
        ({"misfire": "yes"}, "misfire", ["valid boolean"]),
        ({"startingDeadlineSeconds": -1}, "startingDeadlineSeconds",
         ["greater than or equal to 0"]),
        ({"startingDeadlineSeconds": 86_401}, "startingDeadlineSeconds",
         ["less than or equal to 86400"]),
        ({"startingDeadlineSeconds": 1.5}, "startingDeadlineSeconds", ["valid integer"]),
        ({"executionType": "transient"}, "executionType", ["'TRANSIENT' or 'DAEMON'"]),
        ({"placementStrategy": "random"}, "placementStrategy", ["'binpack' or 'spread'"]),
        ({"jobParameter": "x" * 4097}, "jobParameter", ["at most 4096 characters"]),
        ({"shardingItemParameters": {"0": 1}}, "shardingItemParameters.0", ["valid string"]),
        ({"script": {"commandLine": ""}}, "script.commandLine", ["at least 1 character"]),
        ({"script": DROP, "python": {"callable": "demo_jobs.simple.run"}}, "python.callable",
         ["is not a Python callable", "'package.module:function'"]),
        ({"script": DROP, "dataflow": {"source": "Numbers"}}, "dataflow.source",
         ["is not a dataflow class", "'package.module:Class'"]),
        ({"python": JOB_KINDS["python"]}, "",
         ["exactly one of spec.script, spec.python or spec.dataflow", "found 2: script, python"]),
        ({"script": DROP}, "", ["exactly one of", "found 0: none"]),
    ],
)  # fmt: skip
def test_bad_job_specs_are_rejected_by_both_naming_the_field(
    change: Schema, field: str, words: list[str]
) -> None:
    doc = {k: v for k, v in (GOOD_JOB | change).items() if v is not DROP}
    fields, message = _model_error(CloudJobSpec, doc)
    assert fields == {field}
    for word in words:
        assert word in message
    errors = schema_errors("CloudJob", admit(spec_schema("CloudJob"), doc))
    assert {".".join(map(str, e.absolute_path)) for e in errors} == {field}


def test_bad_app_specs_are_rejected_by_both_naming_the_field() -> None:
    doc = {"appURL": "", "bootstrapScript": "bin/start", "cpuCount": 0}
    fields, message = _model_error(CloudAppSpec, doc)
    assert fields == {"appURL", "cpuCount"}
    assert "at least 1 character" in message and "greater than or equal to 0.001" in message
    errors = schema_errors("CloudApp", admit(spec_schema("CloudApp"), doc))
    assert {".".join(map(str, e.absolute_path)) for e in errors} == fields
    fields, _ = _model_error(CloudAppSpec, {"bootstrapScript": "b", "eventTraceSamplingCount": -1})
    assert fields == {"appURL", "eventTraceSamplingCount"}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"cron": "61 * * * * ?"}, ["spec.cron: ", "'second'", "61 out of range 0-59"]),
        ({"cron": "0 0 12 * * *"}, ["spec.cron: ", "'?'", "write '0 0 12 * * ?'"]),
        ({"cron": "0 0 0 30 FEB ?"}, ["spec.cron: ", "never fires"]),
        ({"timeZone": "Mars/Olympus_Mons"},
         ["spec.timeZone: ", "not a known IANA time zone", "Europe/Berlin"]),
        ({"shardingItemParameters": {"0": "a", "3": "d"}},
         ["spec.shardingItemParameters: ", "'3'", "0..2"]),
        ({"shardingItemParameters": {"01": "a"}}, ["spec.shardingItemParameters: ", "'01'"]),
    ],
)  # fmt: skip
def test_semantic_errors_name_the_field_and_the_fix(change: Schema, words: list[str]) -> None:
    spec = CloudJobSpec.model_validate(GOOD_JOB | change)
    [problem] = job_semantic_errors("nightly-report", spec)
    for word in words:
        assert word in problem


def test_bad_object_names_are_reported_on_metadata_name() -> None:
    spec = CloudJobSpec.model_validate(GOOD_JOB)
    assert job_semantic_errors("nightly-report", spec) == []
    [problem] = job_semantic_errors("Nightly.Report", spec)
    assert problem.startswith("metadata.name: CloudJob name 'Nightly.Report' must be a DNS label")
    app = CloudAppSpec.model_validate(GOOD_APP)
    assert app_semantic_errors("demo-app", app) == []
    [problem] = app_semantic_errors("x" * 64, app)
    assert problem.startswith("metadata.name: CloudApp name") and "at most 63" in problem


def test_original_item_parameters_map_onto_the_spec_field() -> None:
    parameters = parse_original_item_parameters("0=Beijing,1=Shanghai, 2=Guangzhou")
    assert parameters == {"0": "Beijing", "1": "Shanghai", "2": "Guangzhou"}
    doc = GOOD_JOB | {"shardingItemParameters": parameters}
    assert agreement("CloudJob", doc)
    spec = CloudJobSpec.model_validate(doc)
    assert spec.shard_parameters() == {0: "Beijing", 1: "Shanghai", 2: "Guangzhou"}
    assert job_semantic_errors("cities", spec) == []
    with pytest.raises(ValueError, match="'a=b' is not of the form '<shard item>=<parameter>'"):
        parse_original_item_parameters("0=x,a=b")


# (d) The example manifests are valid for the CRDs and the models.


def _examples() -> list[Schema]:
    objects: list[Schema] = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return objects


def test_example_manifests_hold_an_app_and_every_kind_of_job() -> None:
    objects = _examples()
    apps = {o["metadata"]["name"] for o in objects if o["kind"] == "CloudApp"}
    jobs = [CloudJobSpec.model_validate(o["spec"]) for o in objects if o["kind"] == "CloudJob"]
    assert apps and all(job.app_name in apps for job in jobs)
    assert {job.kind for job in jobs} == set(resources.JobKind)
    assert {job.execution_type for job in jobs} == set(resources.ExecutionType)
    assert any(
        job.kind is resources.JobKind.SCRIPT
        and job.execution_type is resources.ExecutionType.TRANSIENT
        and job.sharding_total_count == 3
        and cron.parse_cron(job.cron).dialect == "quartz"
        for job in jobs
    )


@pytest.mark.parametrize("index", range(len(_examples())))
def test_example_manifest_is_valid_for_the_crd_and_the_model(index: int) -> None:
    obj = _examples()[index]
    kind = obj["kind"]
    assert obj["apiVersion"] == resources.API_VERSION
    root = root_schema(_load(kind))
    stored = admit(root, obj)
    assert list(validator(root).iter_errors(stored)) == []
    model = SPEC_MODELS[kind]
    assert model.model_validate(stored["spec"]) == model.model_validate(obj["spec"])
    spec = model.model_validate(obj["spec"])
    name = obj["metadata"]["name"]
    if isinstance(spec, CloudJobSpec):
        assert job_semantic_errors(name, spec) == []
    else:
        assert isinstance(spec, CloudAppSpec)
        assert app_semantic_errors(name, spec) == []
