"""Structural schema handling: pruning, defaulting and validation messages."""

from __future__ import annotations

from typing import Any

from devcluster.kube.schemas import apply_defaults, prune, validate
from tests.kube.conftest import WIDGET_CRD

SCHEMA: dict[str, Any] = WIDGET_CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_prune_drops_undeclared_fields_but_keeps_envelope_and_preserved_subtrees() -> None:
    obj = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "a"},
        "spec": {"size": 1, "typo": 2, "labels": {"any": "x"}},
        "status": {"free": {"form": 1}},
        "extra": 1,
    }
    pruned, dropped = prune(obj, SCHEMA)
    assert pruned == {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "a"},
        "spec": {"size": 1, "labels": {"any": "x"}},
        "status": {"free": {"form": 1}},
    }
    assert dropped == ["spec.typo", "extra"]


def test_defaults_fill_absent_and_null_fields() -> None:
    assert apply_defaults({"spec": {"size": 1}}, SCHEMA) == {"spec": {"size": 1, "color": "blue"}}
    assert apply_defaults({"spec": {"size": 1, "color": None}}, SCHEMA)["spec"]["color"] == "blue"
    assert apply_defaults({"spec": {"size": 1, "color": "red"}}, SCHEMA)["spec"]["color"] == "red"


def test_validation_messages_name_the_field_like_a_real_server() -> None:
    messages = [
        (error.field, error.message)
        for error in validate({"spec": {"size": 0, "color": "green", "labels": {"a": 1}}}, SCHEMA)
    ]
    assert messages == [
        ("spec.color", 'Unsupported value: "green": supported values: "blue", "red"'),
        (
            "spec.labels.a",
            'Invalid value: "integer": spec.labels.a in body must be of type string: "integer"',
        ),
        ("spec.size", "Invalid value: 0: spec.size in body should be greater than or equal to 1"),
    ]
    assert [(e.field, e.message) for e in validate({"spec": {}}, SCHEMA)] == [
        ("spec.size", "Required value")
    ]
    assert validate({"spec": {"size": 3}}, SCHEMA) == []


def test_nullable_int_or_string_and_metadata_name_rules() -> None:
    schema = {
        "type": "object",
        "properties": {
            "metadata": {
                "type": "object",
                "properties": {"name": {"type": "string", "maxLength": 5}},
            },
            "spec": {
                "type": "object",
                "properties": {
                    "port": {"x-kubernetes-int-or-string": True},
                    "note": {"type": "string", "nullable": True},
                },
            },
        },
    }
    assert (
        validate({"metadata": {"name": "short"}, "spec": {"port": "http", "note": None}}, schema)
        == []
    )
    assert validate({"spec": {"port": 80}}, schema) == []
    fields = [
        e.field for e in validate({"metadata": {"name": "too-long"}, "spec": {"port": 1.5}}, schema)
    ]
    assert fields == ["metadata.name", "spec.port"]
