"""The trimmed diff-base builds the essence kopf's own storage builds, for bodies with
and without status, managed fields, labels, annotations (kopf's own among them) and
owner references."""

from __future__ import annotations

import copy
from typing import Any

import kopf
import pytest

from controller.diffbase import TrimmedDiffBaseStorage, trimmed

pytestmark = pytest.mark.unit

PREFIX = "cloudjob.io"
KEY = "last-handled-configuration"


def body(**parts: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "apiVersion": "cloudjob.io/v1alpha1",
        "kind": "CloudJob",
        "metadata": {
            "name": "report",
            "namespace": "team-a",
            "uid": "7f0c",
            "resourceVersion": "991",
            "generation": 4,
            "finalizers": ["cloudjob.io/finalizer"],
            "managedFields": [{"manager": "kopf", "fieldsV1": {"f:status": {}}}],
        },
        "spec": {"app": "billing", "cron": "0 * * * * ?", "shardingTotalCount": 2},
    }
    for path, value in parts.items():
        where = base
        *heads, last = path.split("__")
        for head in heads:
            where = where.setdefault(head, {})
        where[last] = value
    return base


BODIES = [
    body(),
    body(status={"conditions": [{"type": "Scheduled", "status": "True"}], "runs": [1, 2]}),
    body(metadata__labels={"team": "a"}),
    body(
        metadata__annotations={
            f"{PREFIX}/{KEY}": '{"spec": {}}',
            f"{PREFIX}/configure": "{}",
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
            "team.example/owner": "ops",
        },
        status={"shards": [{"shard": 0}]},
    ),
    body(metadata__ownerReferences=[{"kind": "Deployment", "name": "d", "uid": "1"}]),
    body(
        kind="ReplicaSet",
        metadata__ownerReferences=[{"kind": "Deployment", "uid": "2"}],
        metadata__annotations={f"{PREFIX}/{KEY}-ofDRS": "{}", f"{PREFIX}/{KEY}": "{}"},
    ),
    {"metadata": {"name": "bare"}},
    {"spec": {"app": "x"}},
]


@pytest.mark.parametrize("raw", BODIES)
def test_the_essence_is_kopfs(raw: dict[str, Any]) -> None:
    ours = TrimmedDiffBaseStorage(prefix=PREFIX, key=KEY)
    theirs = kopf.AnnotationsDiffBaseStorage(prefix=PREFIX, key=KEY)
    assert ours.build(body=kopf.Body(raw)) == theirs.build(body=kopf.Body(raw))


def test_the_body_is_left_as_it_was() -> None:
    raw = BODIES[3]
    before = copy.deepcopy(raw)
    TrimmedDiffBaseStorage(prefix=PREFIX, key=KEY).build(body=kopf.Body(raw))
    assert raw == before


def test_status_and_system_metadata_are_not_copied() -> None:
    kept = trimmed(kopf.Body(BODIES[3]))
    assert "status" not in kept
    assert set(kept["metadata"]) == {"annotations"}


def test_watched_fields_get_the_whole_body() -> None:
    raw = BODIES[1]
    fields = [("status", "conditions")]
    ours = TrimmedDiffBaseStorage(prefix=PREFIX, key=KEY)
    theirs = kopf.AnnotationsDiffBaseStorage(prefix=PREFIX, key=KEY)
    built = ours.build(body=kopf.Body(raw), extra_fields=fields)
    assert built == theirs.build(body=kopf.Body(raw), extra_fields=fields)
    assert built["status"]["conditions"]
