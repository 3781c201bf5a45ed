"""Every rendered built-in object is a valid Kubernetes object offline: each field is one
the API type has (checked recursively against the `kubernetes` client's models, which
are generated from the API's OpenAPI document), and required fields are present.
The models ignore unknown fields, hence the walk. `kubectl --dry-run=client` cannot do
this here: it needs an API server for discovery.
The real API server's dry run of the same objects is in test_server_side.py."""

from __future__ import annotations

import re
from typing import Any

import helm_python
import kubernetes
import pytest
import yaml

from tests.deploy.chart import PROJECT, render, values_file

pytestmark = pytest.mark.unit

MODELS = kubernetes.client.models
PRIMITIVES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "object": (object,),
    "datetime": (str,),
    "date": (str,),
}


def model_name(obj: dict[str, Any]) -> str:
    version = obj["apiVersion"].split("/")[-1]
    return f"{version.capitalize()}{obj['kind']}"


def unknown_fields(data: Any, type_name: str, path: str) -> list[str]:
    """Where `data` has fields or types the API type `type_name` does not."""
    if match := re.fullmatch(r"[Ll]ist\[(.+)\]", type_name):
        if not isinstance(data, list):
            return [f"{path}: expected a list"]
        return [
            p for i, item in enumerate(data) for p in unknown_fields(item, match[1], f"{path}[{i}]")
        ]
    if match := re.fullmatch(r"[Dd]ict\[str, (.+)\]", type_name):
        if not isinstance(data, dict):
            return [f"{path}: expected a mapping"]
        return [p for k, v in data.items() for p in unknown_fields(v, match[1], f"{path}.{k}")]
    if type_name in PRIMITIVES:
        if isinstance(data, bool) and type_name in ("int", "float"):
            return [f"{path}: expected {type_name}, got a boolean"]
        ok = isinstance(data, PRIMITIVES[type_name])
        return [] if ok else [f"{path}: expected {type_name}, got {type(data).__name__}"]
    model = getattr(MODELS, type_name)
    if not isinstance(data, dict):
        return [f"{path}: expected an object ({type_name})"]
    by_key = {key: attr for attr, key in model.attribute_map.items()}
    problems = []
    for key, value in data.items():
        if key not in by_key:
            problems.append(f"{path}.{key}: no such field in {type_name}")
        else:
            problems.extend(
                unknown_fields(value, model.openapi_types[by_key[key]], f"{path}.{key}")
            )
    return problems


@pytest.mark.parametrize("values", ["default", "full"])
def test_rendered_built_in_objects_are_valid_api_objects(
    chart: helm_python.Chart, values: str
) -> None:
    rendered = render(chart, values_file(values))
    checked = 0
    for obj in rendered.objects:
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # Prometheus Operator types: test_alerts.py and test_chart.py check them
        name = model_name(obj)
        where = f"{obj['kind']} {obj['metadata']['name']}"
        assert unknown_fields(obj, name, where) == []
        # The client's models refuse missing required fields and mistyped values.
        getattr(MODELS, name).from_dict(obj)
        checked += 1
    assert checked == len([o for o in rendered.objects if "monitoring" not in o["apiVersion"]])


def test_the_kind_zookeeper_manifest_is_valid() -> None:
    objects = list(yaml.safe_load_all((PROJECT / "deploy" / "kind" / "zookeeper.yaml").read_text()))
    assert sorted(obj["kind"] for obj in objects) == ["Deployment", "Service"]
    for obj in objects:
        assert unknown_fields(obj, model_name(obj), obj["kind"]) == []
        getattr(MODELS, model_name(obj)).from_dict(obj)


def test_the_check_catches_a_misspelt_field() -> None:
    probe = {"spec": {"containers": [{"name": "c", "readinessprobe": {}}]}}
    assert unknown_fields(probe, "V1Pod", "Pod") == [
        "Pod.spec.containers[0].readinessprobe: no such field in V1Container"
    ]


def test_the_models_refuse_a_missing_required_field() -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {
            "selector": {},
            "template": {"spec": {"containers": [{"image": "controller"}]}},
        },
    }
    with pytest.raises(ValueError, match="name"):
        MODELS.V1Deployment.from_dict(deployment)
