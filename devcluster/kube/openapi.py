"""Minimal OpenAPI v3 documents (`/openapi/v3`, `/openapi/v3/apis/G/V`) for kubectl.

kubectl (1.27+) reads them to learn that the server validates fields itself
(`fieldValidation` on PATCH, so `kubectl apply/create` send `fieldValidation=Strict` and
need no client-side schema), how to patch a kind (no strategic merge for custom
resources: JSON merge patch), and what `kubectl explain` shows (a CRD's schema). Only
those parts are produced. Pure; `serving` serves them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from devcluster.kube.resources import ResourceType

_PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
)


def group_version_path(rt: ResourceType) -> str:
    return f"api/{rt.version}" if not rt.group else f"apis/{rt.group}/{rt.version}"


def _schema_name(rt: ResourceType) -> str:
    group = ".".join(reversed(rt.group.split("."))) if rt.group else "io.k8s.api.core"
    return f"{group}.{rt.version}.{rt.kind}"


def document(types: Iterable[ResourceType]) -> dict[str, Any]:
    """The OpenAPI v3 document of one group/version's types."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    version = ""
    for rt in types:
        version = rt.api_version
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        scope = "/namespaces/{namespace}" if rt.namespaced else ""
        prefix = f"/{group_version_path(rt)}{scope}/{rt.plural}"
        reference = {"$ref": f"#/components/schemas/{_schema_name(rt)}"}
        query = [
            {"name": name, "in": "query", "schema": {"type": "string"}}
            for name in ("dryRun", "fieldManager", "fieldValidation")
        ]
        ok = {"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}}
        paths[f"{prefix}/{{name}}"] = {
            "get": {"x-kubernetes-group-version-kind": gvk, "responses": ok},
            "put": {
                "x-kubernetes-group-version-kind": gvk,
                "parameters": query,
                "requestBody": {"content": {"application/json": {"schema": reference}}},
                "responses": ok,
            },
            "patch": {
                "x-kubernetes-group-version-kind": gvk,
                "parameters": query,
                "requestBody": {
                    "content": {kind: {"schema": {"type": "object"}} for kind in _PATCH_TYPES}
                },
                "responses": ok,
            },
            "delete": {"x-kubernetes-group-version-kind": gvk, "responses": ok},
        }
        paths[prefix] = {
            "post": {
                "x-kubernetes-group-version-kind": gvk,
                "parameters": query,
                "requestBody": {"content": {"application/json": {"schema": reference}}},
                "responses": ok,
            },
        }
        schema = dict(rt.schema or {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
        schema["x-kubernetes-group-version-kind"] = [gvk]
        schemas[_schema_name(rt)] = schema
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": version},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def root(types: Iterable[ResourceType]) -> dict[str, Any]:
    """The `/openapi/v3` discovery document: one entry per served group/version."""
    grouped: dict[str, list[ResourceType]] = {}
    for rt in types:
        grouped.setdefault(group_version_path(rt), []).append(rt)
    paths = {}
    for path, members in sorted(grouped.items()):
        digest = (
            hashlib.sha256(json.dumps(document(members), sort_keys=True).encode())
            .hexdigest()[:32]
            .upper()
        )
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": paths}
