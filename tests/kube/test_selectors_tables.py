"""Label/field selectors, the printer-column JSONPath subset, and AGE formatting."""

from __future__ import annotations

import pytest

from devcluster.kube.selectors import SelectorError, field_selector, label_selector
from devcluster.kube.tables import JsonPathError, evaluate, human_age

OBJ = {
    "metadata": {"name": "a", "labels": {"app": "web", "tier": "front"}},
    "status": {
        "phase": "Running",
        "conditions": [
            {"type": "Ready", "status": "True"},
            {"type": "Scheduled", "status": "False"},
        ],
    },
    "spec": {"items": [{"name": "x"}, {"name": "y"}], "on": True},
}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", True),
        ("app==web", True),
        ("app!=web", False),
        ("app", True),
        ("!app", False),
        ("missing", False),
        ("!missing", True),
        ("app in (web,api)", True),
        ("app notin (web)", False),
        ("tier notin (back)", True),
        ("app=web,tier=back", False),
        ("app in (api, web),tier", True),
    ],
)
def test_label_selectors(selector: str, expected: bool) -> None:
    assert label_selector(selector)(OBJ) is expected


def test_field_selectors() -> None:
    assert field_selector("metadata.name=a,status.phase=Running")(OBJ)
    assert not field_selector("metadata.name!=a")(OBJ)
    assert field_selector("spec.on=true")(OBJ)
    with pytest.raises(SelectorError):
        field_selector("metadata.name")


def test_malformed_label_selector_is_rejected() -> None:
    with pytest.raises(SelectorError):
        label_selector("a b c")


@pytest.mark.parametrize(
    ("path", "values"),
    [
        (".metadata.name", ["a"]),
        ('.status.conditions[?(@.type=="Ready")].status', ["True"]),
        ('.status.conditions[?(@.type!="Ready")].type', ["Scheduled"]),
        (".spec.items[*].name", ["x", "y"]),
        (".spec.items[1].name", ["y"]),
        (".spec.items[-1].name", ["y"]),
        ("{.metadata.labels['app']}", ["web"]),
        (".status.missing", []),
    ],
)
def test_jsonpath_subset(path: str, values: list[object]) -> None:
    assert evaluate(OBJ, path) == values


def test_unsupported_jsonpath_is_reported() -> None:
    with pytest.raises(JsonPathError):
        evaluate(OBJ, ".spec..name")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-0.5, "0s"),
        (59, "59s"),
        (119, "119s"),
        (125, "2m5s"),
        (600, "10m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 60, "3h1m"),
        (30 * 3600, "30h"),
        (3 * 86400, "3d"),
        (3 * 86400 + 3600, "3d1h"),
        (40 * 86400, "40d"),
        (800 * 86400, "2y70d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_age(seconds: float, text: str) -> None:
    assert human_age(seconds) == text
