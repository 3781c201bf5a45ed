"""The chart's RBAC grants exactly what the controller's kopf handlers need, derived from
the handlers the controller registers and the CRDs, cluster-wide and per watched
namespace. tests/deploy/test_running.py checks it against the requests the controller
really makes."""

from __future__ import annotations

from typing import Any

import helm_python
import kopf
import pytest

from controller.handlers import register_handlers
from tests.deploy.chart import NAMESPACE, crd_specs, merged, render, values_file
from tests.deploy.rbac import Access, allowed, grants

pytestmark = pytest.mark.unit

EVERY_VERB = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")


def handled_resources() -> dict[str, tuple[bool, bool]]:
    """Plural → (patched, has a status subresource) for every resource the controller's
    kopf registry has handlers for."""
    registry = kopf.OperatorRegistry()
    register_handlers(registry)
    crds = {}
    for spec in crd_specs():
        names = spec["names"]
        aliases = {names["plural"], names["singular"], names["kind"], *names.get("shortNames", [])}
        status = any("status" in (v.get("subresources") or {}) for v in spec["versions"])
        for alias in aliases:
            crds[(spec["group"], alias)] = (names["plural"], status)
    found: dict[str, tuple[bool, bool]] = {}
    # Indexes and event handlers only read; changing handlers make kopf patch the object
    # (finalizer, progress and diff-base annotations); the status refresher patches status.
    handlers = (
        ("_indexing", False),
        ("_watching", False),
        ("_changing", True),
        ("_spawning", True),
    )
    for kind, patches in handlers:
        for handler in getattr(registry, kind).get_all_handlers():
            selector = handler.selector
            plural, status = crds[(selector.group, selector.plural or selector.any_name)]
            before = found.get(plural, (False, False))
            found[plural] = (before[0] or patches, status)
    return found


def required(watched: list[str]) -> set[Access]:
    """What kopf does for these handlers: lists and watches each resource, patches the
    ones it handles changes of (and their status subresource), posts Events where the
    objects are (and patches their counts), and lists/watches CRDs (always) and
    namespaces (when not cluster-wide)."""
    scopes: list[str | None] = list(watched) or [None]
    needed = {Access("list", "apiextensions.k8s.io", "customresourcedefinitions")}
    needed.add(Access("watch", "apiextensions.k8s.io", "customresourcedefinitions"))
    if watched:
        needed |= {Access("list", "", "namespaces"), Access("watch", "", "namespaces")}
    for scope in scopes:
        needed.add(Access("create", "", "events", scope))
        needed.add(Access("patch", "", "events", scope))
        for plural, (patched, status) in handled_resources().items():
            needed |= {Access(v, "cloudjob.io", plural, scope) for v in ("list", "watch")}
            if patched:
                needed.add(Access("patch", "cloudjob.io", plural, scope))
                if status:
                    needed.add(Access("patch", "cloudjob.io", f"{plural}/status", scope))
    return needed


def granted(objects: list[dict[str, Any]], account: str, scopes: list[str | None]) -> set[Access]:
    """Every (verb, resource, scope) the account holds, probed over the resources the
    rendered rules mention and every verb."""
    held = grants(objects, account, NAMESPACE)
    resources = {
        (group, resource)
        for grant in held
        for group in grant.rule["apiGroups"]
        for resource in grant.rule["resources"]
    }
    cluster_scoped = {"customresourcedefinitions", "namespaces"}
    return {
        Access(verb, group, resource, None if resource in cluster_scoped else scope)
        for group, resource in resources
        for verb in EVERY_VERB
        for scope in scopes
        if allowed(
            held, Access(verb, group, resource, None if resource in cluster_scoped else scope)
        )
    }


def test_the_controller_handles_both_custom_resources_and_writes_their_status() -> None:
    assert handled_resources() == {"cloudapps": (True, True), "cloudjobs": (True, True)}


def test_cluster_wide_rbac_is_exactly_what_the_handlers_need(chart: helm_python.Chart) -> None:
    rendered = render(chart, values_file("default"))
    account = rendered.one("ServiceAccount")["metadata"]["name"]
    assert rendered.of_kind("Role") == []
    assert granted(rendered.objects, account, [None]) == required([])


def test_namespaced_rbac_grants_the_watched_namespaces_only(chart: helm_python.Chart) -> None:
    watched = ["team-a", "team-b"]
    values = merged(values_file("default"), {"kubernetes": {"watchNamespaces": watched}})
    rendered = render(chart, values)
    account = rendered.one("ServiceAccount")["metadata"]["name"]
    scopes: list[str | None] = [*watched, "team-c", None]
    assert granted(rendered.objects, account, scopes) == required(watched)


@pytest.mark.parametrize("values", ["default", "full"])
def test_no_rule_uses_wildcards_or_touches_secrets(chart: helm_python.Chart, values: str) -> None:
    rendered = render(chart, values_file(values))
    for role in rendered.of_kind("ClusterRole") + rendered.of_kind("Role"):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], rule
            assert "secrets" not in rule["resources"]
