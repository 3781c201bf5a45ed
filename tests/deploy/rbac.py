"""Kubernetes RBAC authorization, evaluated the way the API server does, for the tests:
which requests a service account may make given the rendered Roles, ClusterRoles and
their bindings, and what an HTTP request to the API asks for (verb, group, resource).

Non-resource URLs are judged against the `system:discovery` ClusterRole every
authenticated client is bound to by default."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

# Kubernetes' default `system:discovery` ClusterRole (bound to system:authenticated).
DISCOVERY_URLS = (
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/healthz",
    "/livez",
    "/openapi",
    "/openapi/*",
    "/readyz",
    "/version",
    "/version/",
)


@dataclass(frozen=True)
class Access:
    """What one request asks for; `namespace` None: cluster-scoped (or all namespaces)."""

    verb: str
    group: str
    resource: str
    namespace: str | None = None
    name: str | None = None

    def __str__(self) -> str:
        where = f" in {self.namespace}" if self.namespace else " (cluster)"
        group = self.group or "core"
        return f"{self.verb} {group}/{self.resource}{where}"


@dataclass(frozen=True)
class Grant:
    """One PolicyRule, in force in `namespace` (None: everywhere, from a ClusterRoleBinding)."""

    rule: dict[str, Any]
    namespace: str | None

    def allows(self, access: Access) -> bool:
        if self.namespace is not None and access.namespace != self.namespace:
            return False
        rule = self.rule
        names = rule.get("resourceNames") or []
        return (
            _matches(rule.get("apiGroups") or [], access.group)
            and _matches(rule.get("resources") or [], access.resource)
            and _matches(rule.get("verbs") or [], access.verb)
            and (not names or access.name in names)
        )


def _matches(allowed: list[str], value: str) -> bool:
    return "*" in allowed or value in allowed


def _bound(subjects: list[dict[str, Any]], account: str, namespace: str) -> bool:
    return any(
        s.get("kind") == "ServiceAccount"
        and s.get("name") == account
        and s.get("namespace") == namespace
        for s in subjects or []
    )


def grants(objects: list[dict[str, Any]], account: str, namespace: str) -> list[Grant]:
    """Every rule the service account `namespace/account` holds through these objects."""
    roles = {
        (obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"]): obj
        for obj in objects
        if obj["kind"] in ("Role", "ClusterRole")
    }
    found: list[Grant] = []
    for binding in objects:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if not _bound(binding.get("subjects", []), account, namespace):
            continue
        ref = binding["roleRef"]
        scope = binding["metadata"].get("namespace") if binding["kind"] == "RoleBinding" else None
        role_ns = scope if ref["kind"] == "Role" else None
        role = roles.get((ref["kind"], role_ns, ref["name"]))
        where = f"{binding['kind']} {binding['metadata']['name']}"
        assert role is not None, f"{where} binds a missing {ref}"
        found.extend(Grant(rule, scope) for rule in role.get("rules", []))
    return found


def allowed(held: list[Grant], access: Access) -> bool:
    return any(grant.allows(access) for grant in held)


def discovery(path: str) -> bool:
    """Whether a non-resource URL is open to every authenticated client."""
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in DISCOVERY_URLS)


def access_of(method: str, path: str, params: dict[str, str]) -> Access | None:
    """The resource access an API request needs; None for a non-resource URL."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 3:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group, rest = parts[1], parts[3:]
    else:
        return None
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource, name = rest[0], rest[1] if len(rest) > 1 else None
    if len(rest) > 2:
        resource = f"{resource}/{rest[2]}"
    if resource == "namespaces" and name is not None:
        namespace = name
    watching = params.get("watch") in ("true", "1")
    verb = {
        "GET": "watch" if watching else ("get" if name else "list"),
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if name else "deletecollection",
    }[method.upper()]
    return Access(verb=verb, group=group, resource=resource, namespace=namespace, name=name)
