"""Merge patch (RFC 7386) and JSON patch (RFC 6902) as the emulator applies them."""

from __future__ import annotations

from typing import Any

import pytest

from devcluster.kube.patching import PatchError, json_patch, merge_patch


def test_merge_patch_merges_objects_removes_nulls_and_replaces_lists() -> None:
    target = {"a": {"b": 1, "c": 2}, "l": [1, 2], "x": 1}
    patched = merge_patch(target, {"a": {"b": 9, "c": None}, "l": [3], "y": {"z": 1}})
    assert patched == {"a": {"b": 9}, "l": [3], "x": 1, "y": {"z": 1}}
    assert target == {"a": {"b": 1, "c": 2}, "l": [1, 2], "x": 1}


def test_json_patch_operations() -> None:
    doc = {"metadata": {"finalizers": ["a"]}, "spec": {"n": 1}}
    ops: list[dict[str, Any]] = [
        {"op": "add", "path": "/metadata/finalizers/-", "value": "b"},
        {"op": "replace", "path": "/spec/n", "value": 2},
        {"op": "copy", "from": "/spec/n", "path": "/spec/m"},
        {"op": "move", "from": "/spec/m", "path": "/spec/k"},
        {"op": "remove", "path": "/metadata/finalizers/0"},
        {"op": "add", "path": "/metadata/labels", "value": {"a~b/c": "1"}},
        {"op": "test", "path": "/metadata/labels/a~0b~1c", "value": "1"},
    ]
    assert json_patch(doc, ops) == {
        "metadata": {"finalizers": ["b"], "labels": {"a~b/c": "1"}},
        "spec": {"n": 2, "k": 2},
    }
    assert doc == {"metadata": {"finalizers": ["a"]}, "spec": {"n": 1}}


def test_failed_test_operation_names_the_path() -> None:
    doc = {"metadata": {"resourceVersion": "5"}}
    with pytest.raises(PatchError, match="testing value /metadata/resourceVersion failed"):
        json_patch(
            doc,
            [
                {"op": "test", "path": "/metadata/resourceVersion", "value": "4"},
                {"op": "remove", "path": "/metadata"},
            ],
        )


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "remove", "path": "/missing"}],
        [{"op": "replace", "path": "/a/b", "value": 1}],
        [{"op": "add", "path": "/list/5", "value": 1}],
        [{"op": "jump", "path": "/a"}],
        [{"op": "add", "path": "/a"}],
        [{"op": "move", "from": "/list", "path": "/list/0"}],
        {"op": "add"},
    ],
)
def test_impossible_json_patches_are_rejected(ops: Any) -> None:
    with pytest.raises(PatchError):
        json_patch({"list": [1], "a": 1}, ops)
