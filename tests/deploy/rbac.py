"""Kubernetes RBAC authorization, evaluated the way the API server does, for the offline
tests: which requests a service account may make given the rendered Roles, ClusterRoles
and their bindings. (The tests that run the controller let the real API server judge.)"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
