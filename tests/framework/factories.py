"""Builders of app and job definitions for the framework's unit tests."""

from __future__ import annotations

from typing import Any

from controller.definitions import AppDefinition, JobDefinition
from controller.resources import CloudAppSpec, CloudJobSpec


def make_app(name: str = "app", namespace: str = "ns", **spec: Any) -> AppDefinition:
    fields: dict[str, Any] = {
        "appURL": "http://127.0.0.1:8000/app.tar.gz",
        "bootstrapScript": "bin/start.sh",
        "cpuCount": 1.0,
        "memoryMB": 128.0,
    }
    fields.update(spec)
    return AppDefinition(namespace=namespace, name=name, spec=CloudAppSpec.model_validate(fields))


def make_job(
    name: str = "job",
    namespace: str = "ns",
    *,
    app: str = "app",
    shards: int = 3,
    cpus: float = 0.5,
    mem: float = 64.0,
    **spec: Any,
) -> JobDefinition:
    fields: dict[str, Any] = {
        "appName": app,
        "cron": "*/5 * * * * ?",
        "shardingTotalCount": shards,
        "cpuCount": cpus,
        "memoryMB": mem,
    }
    if not any(kind in spec for kind in ("script", "python", "dataflow")):
        fields["script"] = {"commandLine": "bin/job.sh --flag"}
    fields.update(spec)
    return JobDefinition(namespace=namespace, name=name, spec=CloudJobSpec.model_validate(fields))
