"""What the scheduling core knows of an app or a job: its key, names and validated spec.

The Kubernetes layer builds these from CloudApp/CloudJob objects; the Mesos
subsystem and the ZooKeeper state layer take them (and store them as JSON under
`config/`) without ever seeing a Kubernetes type.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from controller import naming
from controller.resources import CloudAppSpec, CloudJobSpec, ExecutionType


class _Definition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str
    name: str

    @property
    def key(self) -> str:
        return naming.object_key(self.namespace, self.name)

    def encode(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


class AppDefinition(_Definition):
    spec: CloudAppSpec

    @classmethod
    def decode(cls, raw: bytes) -> AppDefinition:
        return cls.model_validate_json(raw)


class JobDefinition(_Definition):
    spec: CloudJobSpec

    @property
    def app_key(self) -> str:
        return naming.object_key(self.namespace, self.spec.app_name)

    @property
    def is_daemon(self) -> bool:
        return self.spec.execution_type is ExecutionType.DAEMON

    @classmethod
    def decode(cls, raw: bytes) -> JobDefinition:
        return cls.model_validate_json(raw)
