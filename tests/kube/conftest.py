"""Fixtures for the Kubernetes API emulator's tests: a test CRD ("Widget", group
example.com, with a status subresource, defaults, an enum and printer columns), a running
emulator per test (its internal errors fail the test), a client, and a watch reader."""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml

from devcluster.kube import KubeApiServer, KubeClient

WIDGETS = "example.com/v1"

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {
            "plural": "widgets",
            "singular": "widget",
            "kind": "Widget",
            "shortNames": ["wd"],
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {
                        "name": "Ready",
                        "type": "string",
                        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
                    },
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {
                                    "size": {"type": "integer", "minimum": 1},
                                    "color": {
                                        "type": "string",
                                        "enum": ["blue", "red"],
                                        "default": "blue",
                                    },
                                    "labels": {
                                        "type": "object",
                                        "additionalProperties": {"type": "string"},
                                    },
                                },
                            },
                            "status": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                        },
                    }
                },
            }
        ],
    },
}


def widget(name: str, size: int = 1, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": WIDGETS,
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"size": size, **spec},
    }


@pytest.fixture
def widget_crd_file(tmp_path: Path) -> Path:
    path = tmp_path / "widgets.yaml"
    path.write_text(yaml.safe_dump(WIDGET_CRD))
    return path


@pytest.fixture
def kube_api(widget_crd_file: Path) -> Iterator[KubeApiServer]:
    with KubeApiServer(crds=[widget_crd_file]) as api:
        yield api
        assert api.internal_errors == []


@pytest.fixture
def kube(kube_api: KubeApiServer) -> KubeClient:
    return kube_api.client()


def read_watch(url: str, path: str, count: int, **params: str) -> list[dict[str, Any]]:
    """The first `count` events of a watch (blocking; 10 s socket timeout)."""
    query = urllib.parse.urlencode({"watch": "true", **params})
    events = []
    with urllib.request.urlopen(f"{url}{path}?{query}", timeout=10) as stream:
        while len(events) < count:
            line = stream.readline()
            if not line:
                break
            if line.strip():
                events.append(json.loads(line))
    return events


@contextlib.asynccontextmanager
async def running_operator(registry: kopf.OperatorRegistry) -> AsyncIterator[None]:
    """Run a kopf operator (cluster-wide, standalone) in this event loop until the block
    ends; fail fast if it dies before it is ready."""
    stop, ready = asyncio.Event(), asyncio.Event()
    operator = asyncio.create_task(
        kopf.operator(
            registry=registry, clusterwide=True, standalone=True, stop_flag=stop, ready_flag=ready
        )
    )
    readiness = asyncio.create_task(ready.wait())
    await asyncio.wait({operator, readiness}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if not ready.is_set():
        readiness.cancel()
        operator.cancel()
        raise RuntimeError(f"the operator did not get ready: {operator}")
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(operator, 30)
