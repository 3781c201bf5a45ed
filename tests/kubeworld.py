"""Helpers of the Kubernetes side of the test world (the fixtures are in tests/conftest.py:
one real control plane for the whole run, and the chart's ServiceAccount the controller
runs as).

Tests share the control plane: `clean_slate` removes every CloudJob and CloudApp (and
their finalizers) after each test that ran a controller, so the next one starts from an
empty cluster; `fresh_namespace` gives a test a namespace no other test writes to.
"""

from __future__ import annotations

import uuid

from controller.resources import API_VERSION
from devcluster.kube import ApiError, ControlPlane
from devcluster.kube.identities import ensure_namespace


def fresh_namespace(cluster: ControlPlane, prefix: str = "t") -> str:
    """A new namespace of a random name, for a test that must not see other tests'
    objects (Events, for example, outlive the objects they are about)."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    ensure_namespace(cluster, name)
    return name


def clean_slate(cluster: ControlPlane) -> None:
    """Delete every CloudJob and CloudApp in every namespace, finalizers first (no
    controller is left to remove them)."""
    admin = cluster.client()
    for kind in ("CloudJob", "CloudApp"):
        for obj in admin.list(API_VERSION, kind, all_namespaces=True):
            meta = obj["metadata"]
            try:
                if meta.get("finalizers"):
                    admin.patch(
                        API_VERSION,
                        kind,
                        meta["name"],
                        {"metadata": {"finalizers": None}},
                        namespace=meta["namespace"],
                    )
                admin.delete(API_VERSION, kind, meta["name"], meta["namespace"])
            except ApiError as error:
                if error.code != 404:
                    raise
