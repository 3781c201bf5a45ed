"""The versioned JSON payload carried in a Mesos TaskInfo's `data` field.

The framework (`controller.mesos`) writes it for every task it launches; the executor
(`controller.executor`) reads it, and a transient script job receives its
`sharding` part as the JSON argument appended to its command line. Version 1 is the
only version; a payload of another version, or one that does not parse, fails that
task (TASK_ERROR) with the message of `PayloadError`.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from controller.resources import ExecutionType, JobKind

PAYLOAD_VERSION: Literal[1] = 1


class PayloadError(ValueError):
    """TaskInfo.data is not a payload this executor can run."""


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ShardingContext(_Payload):
    """What one task (one shard of one run) needs to know about its place in the job."""

    job_name: str = Field(description="the job key, '<namespace>.<name>'")
    task_id: str
    sharding_total_count: int = Field(ge=1)
    sharding_item: int = Field(ge=0)
    sharding_parameter: str = ""
    job_parameter: str = ""
    fire_time: datetime | None = Field(
        default=None, description="the cron fire this run belongs to (transient jobs)"
    )

    def environment(self) -> dict[str, str]:
        """The sharding facts a job process finds in its environment (`CLOUDJOB_*`)."""
        return sharding_environment(
            job_name=self.job_name,
            task_id=self.task_id,
            sharding_item=self.sharding_item,
            sharding_total_count=self.sharding_total_count,
            sharding_parameter=self.sharding_parameter,
            job_parameter=self.job_parameter,
            fire_time=self.fire_time,
        )


def sharding_environment(
    *,
    job_name: str,
    task_id: str,
    sharding_item: int,
    sharding_total_count: int,
    sharding_parameter: str,
    job_parameter: str,
    fire_time: datetime | None,
) -> dict[str, str]:
    """The `CLOUDJOB_*` variables of a run, the same under the executor and the command executor."""
    return {
        "CLOUDJOB_JOB_NAME": job_name,
        "CLOUDJOB_TASK_ID": task_id,
        "CLOUDJOB_SHARDING_ITEM": str(sharding_item),
        "CLOUDJOB_SHARDING_PARAMETER": sharding_parameter,
        "CLOUDJOB_SHARDING_TOTAL_COUNT": str(sharding_total_count),
        "CLOUDJOB_JOB_PARAMETER": job_parameter,
        "CLOUDJOB_FIRE_TIME": fire_time.isoformat() if fire_time else "",
    }


class JobConfig(_Payload):
    """The parts of the CloudJob spec (and its app) the executor acts on."""

    kind: JobKind
    execution_type: ExecutionType
    command_line: str | None = None
    callable: str | None = None
    dataflow_source: str | None = None
    streaming: bool = False
    cron: str
    time_zone: str = "UTC"
    misfire: bool = False
    event_trace_sampling_count: int = Field(default=0, ge=0)


class TaskPayload(_Payload):
    version: Literal[1] = PAYLOAD_VERSION
    job: JobConfig
    sharding: ShardingContext

    def encode(self) -> bytes:
        return self.model_dump_json().encode()

    def encode_base64(self) -> str:
        """As it goes into TaskInfo.data in the Mesos JSON API."""
        return base64.b64encode(self.encode()).decode()

    @classmethod
    def decode(cls, raw: bytes) -> TaskPayload:
        try:
            document = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise PayloadError(f"task data is not JSON: {error}") from None
        if not isinstance(document, dict):
            raise PayloadError("task data must be a JSON object")
        version = document.get("version")
        if version != PAYLOAD_VERSION:
            raise PayloadError(
                f"task data version {version!r} is not supported (this executor reads "
                f"version {PAYLOAD_VERSION}); upgrade the app's executor"
            )
        try:
            return cls.model_validate(document)
        except ValidationError as error:
            raise PayloadError(f"task data is invalid: {error}") from None
