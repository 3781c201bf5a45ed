"""Mesos ids of tasks and executors, and the TaskInfo / ExecutorInfo a launch sends.

Pure. A task id is `<job>@-@<shard>@-@<READY|FAILOVER>@-@<agent id>@-@<uuid>`, its
meta info `<job>@-@<shard>` (the key of the running and failover queues), and the
executor of an app version on an agent is `<app>@-@<agent id>@-@<digest>`: the digest
is a short hash of everything the ExecutorInfo says (package URL and cache flag,
bootstrap script, resources, environment), so an edited app gets executors of its own
beside the old ones instead of a LAUNCH Mesos refuses. Ids of the form before versions,
`<app>@-@<agent id>`, still parse (their version is unknown: they are never current).
Job and app keys never contain the delimiter (`controller.naming` validates them), so
ids parse back unambiguously.

`build_task_info` produces the Mesos v1 JSON shape that an ACCEPT's LAUNCH operation
carries. Transient script jobs run under the Mesos command executor with the argv of
`controller.commandline.script_argv`: the sharding context JSON is always one argument
no shell parses, so nothing in a job's parameters can reach a shell. Every other job
runs under its app's executor (one per app version per agent). Used by the launch plan
(`launcher`), the status state machine, the executor registry, the launch cycle and the
roll-out of app versions (`rollout`).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from controller.commandline import script_argv
from controller.definitions import AppDefinition, JobDefinition
from controller.executor.environment import IDLE_TIMEOUT_VARIABLE
from controller.naming import DELIMITER
from controller.resources import ExecutionType, JobKind
from controller.state.records import LaunchSource
from controller.taskdata import JobConfig, ShardingContext, TaskPayload

JsonObject = dict[str, Any]

# File name endings the Mesos fetcher extracts (see the fetcher docs); anything else is
# fetched as it is and, for the command executor, made executable.
ARCHIVE_SUFFIXES = (
    ".tar",
    ".tar.gz",
    ".tgz",
    ".tar.bz2",
    ".tbz2",
    ".tar.xz",
    ".txz",
    ".zip",
    ".gz",
)
# Resource fields copied from the offered resource so that a task takes what was offered
# (a role's reservation rather than unreserved resources, for example).
_OFFER_RESOURCE_FIELDS = ("role", "reservation", "reservations", "allocation_info")
DEFAULT_EXECUTOR_IDLE_SECONDS = 60.0
DIGEST_LENGTH = 12
_DIGEST = re.compile(rf"^[0-9a-f]{{{DIGEST_LENGTH}}}$")


class TaskIdError(ValueError):
    """A Mesos task or executor id this framework did not build."""


class MetaInfo(NamedTuple):
    """One shard of one job: the key of the running and failover queues. A named tuple
    (ordered by job, then shard): launch cycles build thousands of them a second."""

    job_key: str
    shard: int

    @property
    def value(self) -> str:
        return f"{self.job_key}{DELIMITER}{self.shard}"

    @classmethod
    def parse(cls, value: str) -> MetaInfo:
        job_key, sep, shard = value.partition(DELIMITER)
        if not sep or not job_key or not shard.isdigit():
            raise TaskIdError(f"'{value}' is not a task meta info '<job>{DELIMITER}<shard>'")
        return cls(job_key, int(shard))

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class TaskId:
    job_key: str
    shard: int
    launch_type: LaunchSource
    agent_id: str
    unique: str

    @classmethod
    def new(
        cls, meta: MetaInfo, launch_type: LaunchSource, agent_id: str, unique: str | None = None
    ) -> TaskId:
        return cls(meta.job_key, meta.shard, launch_type, agent_id, unique or str(uuid.uuid4()))

    @property
    def meta(self) -> MetaInfo:
        return MetaInfo(self.job_key, self.shard)

    @property
    def value(self) -> str:
        return DELIMITER.join(
            (self.job_key, str(self.shard), self.launch_type.value, self.agent_id, self.unique)
        )

    @classmethod
    def parse(cls, value: str) -> TaskId:
        # Job keys, shards, sources and uuids never hold '@'; an agent id may, so it is
        # what lies between the third delimiter and the last one.
        head, _, unique = value.rpartition(DELIMITER)
        parts = head.split(DELIMITER, 3)
        if len(parts) < 4:
            raise TaskIdError(
                f"task id '{value}' does not have the form "
                f"'<job>{DELIMITER}<shard>{DELIMITER}<type>{DELIMITER}<agent>{DELIMITER}<uuid>'"
            )
        job_key, shard, launch_type, agent_id = parts
        if not job_key or not shard.isdigit() or not agent_id or not unique:
            raise TaskIdError(f"task id '{value}' has an empty or malformed part")
        try:
            kind = LaunchSource(launch_type)
        except ValueError:
            raise TaskIdError(
                f"task id '{value}' has launch source '{launch_type}', not READY or FAILOVER"
            ) from None
        return cls(job_key, int(shard), kind, agent_id, unique)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class AppVersion:
    """One version of an app's executor: tasks of the same version share an executor.

    `digest` is None for an executor id of the form before versions: it never equals
    the current version of its app, so such executors are retired like outdated ones."""

    app_key: str
    digest: str | None


@dataclass(frozen=True)
class ExecutorId:
    """The executor of one app version on one agent."""

    app_key: str
    agent_id: str
    digest: str | None

    @property
    def version(self) -> AppVersion:
        return AppVersion(self.app_key, self.digest)

    @property
    def value(self) -> str:
        parts = (self.app_key, self.agent_id, self.digest)
        return DELIMITER.join(p for p in parts if p is not None)

    @classmethod
    def of(cls, version: AppVersion, agent_id: str) -> ExecutorId:
        return cls(version.app_key, agent_id, version.digest)

    @classmethod
    def parse(cls, value: str) -> ExecutorId:
        # App keys never hold the delimiter and digests are hex; an agent id is what
        # lies between. A trailing part that is no digest belongs to an agent id of an
        # id from before versions (Mesos agent ids are `<uuid>-S<n>`, never a digest).
        # Mesos names a command executor after its task: that is no app executor.
        try:
            TaskId.parse(value)
        except TaskIdError:
            pass
        else:
            raise TaskIdError(f"'{value}' is a task id (of a command executor)")
        app_key, sep, rest = value.partition(DELIMITER)
        if not sep or not app_key or not rest:
            raise TaskIdError(
                f"executor id '{value}' is not '<app>{DELIMITER}<agent id>{DELIMITER}<digest>'"
            )
        agent_id, sep, digest = rest.rpartition(DELIMITER)
        if sep and agent_id and _DIGEST.match(digest):
            return cls(app_key, agent_id, digest)
        return cls(app_key, rest, None)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ExecutorOptions:
    """What the framework adds to every app's ExecutorInfo (part of its version)."""

    # An executor with no task for this long exits (0: never).
    idle_seconds: float = DEFAULT_EXECUTOR_IDLE_SECONDS


DEFAULT_EXECUTOR_OPTIONS = ExecutorOptions()


def uses_command_executor(job: JobDefinition) -> bool:
    """Transient script jobs need no executor of their own: Mesos runs the command."""
    return job.spec.execution_type is ExecutionType.TRANSIENT and job.spec.kind is JobKind.SCRIPT


def is_archive(url: str) -> bool:
    path = url.split("?", 1)[0].split("#", 1)[0].lower()
    return path.endswith(ARCHIVE_SUFFIXES)


def build_payload(
    task_id: TaskId, job: JobDefinition, app: AppDefinition, fire_time: datetime | None
) -> TaskPayload:
    spec = job.spec
    return TaskPayload(
        job=JobConfig(
            kind=spec.kind,
            execution_type=spec.execution_type,
            command_line=spec.script.command_line if spec.script else None,
            callable=spec.python.callable if spec.python else None,
            dataflow_source=spec.dataflow.source if spec.dataflow else None,
            streaming=spec.dataflow.streaming if spec.dataflow else False,
            cron=spec.cron,
            time_zone=spec.time_zone,
            misfire=spec.misfire,
            event_trace_sampling_count=app.spec.event_trace_sampling_count,
        ),
        sharding=ShardingContext(
            job_name=job.key,
            task_id=task_id.value,
            sharding_total_count=spec.sharding_total_count,
            sharding_item=task_id.shard,
            sharding_parameter=spec.shard_parameters().get(task_id.shard, ""),
            job_parameter=spec.job_parameter,
            fire_time=fire_time,
        ),
    )


def scalar(name: str, value: float, offered: Sequence[Mapping[str, Any]] = ()) -> JsonObject:
    """A scalar resource; role and reservation fields come from the offered resource."""
    resource: JsonObject = {"name": name, "type": "SCALAR", "scalar": {"value": round(value, 3)}}
    for candidate in offered:
        if candidate.get("name") == name:
            resource.update(
                {key: candidate[key] for key in _OFFER_RESOURCE_FIELDS if key in candidate}
            )
            break
    return resource


def app_uri(app: AppDefinition, *, command_executor: bool) -> JsonObject:
    url = app.spec.app_url
    archive = is_archive(url)
    uri: JsonObject = {"value": url, "cache": app.spec.app_cache_enable}
    if command_executor and not archive:
        uri["executable"] = True
        uri["extract"] = False
    else:
        uri["extract"] = True
    return uri


def _executor_body(
    app: AppDefinition, options: ExecutorOptions, offered: Sequence[Mapping[str, Any]]
) -> JsonObject:
    return {
        "type": "CUSTOM",
        "name": f"{app.key} executor",
        "command": {
            "value": app.spec.bootstrap_script,
            "shell": True,
            "uris": [app_uri(app, command_executor=False)],
            "environment": {
                "variables": [
                    {"name": IDLE_TIMEOUT_VARIABLE, "value": f"{options.idle_seconds:g}secs"}
                ]
            },
        },
        "resources": [
            scalar("cpus", app.spec.cpu_count, offered),
            scalar("mem", app.spec.memory_mb, offered),
        ],
    }


def app_version(app: AppDefinition, options: ExecutorOptions) -> AppVersion:
    """The app's current executor version: a digest of its ExecutorInfo, id aside.

    Offered role and reservation fields are left out: they describe where resources
    come from, not what the executor is."""
    body = json.dumps(_executor_body(app, options, ()), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(body.encode()).hexdigest()[:DIGEST_LENGTH]
    return AppVersion(app.key, digest)


def build_executor_info(
    app: AppDefinition,
    agent_id: str,
    options: ExecutorOptions,
    offered: Sequence[Mapping[str, Any]] = (),
) -> JsonObject:
    """The executor of the app's current version on `agent_id`: identical for every task
    of that version there, so Mesos reuses it."""
    executor = ExecutorId.of(app_version(app, options), agent_id)
    return {"executor_id": {"value": executor.value}, **_executor_body(app, options, offered)}


def build_task_info(
    task_id: TaskId,
    job: JobDefinition,
    app: AppDefinition,
    *,
    fire_time: datetime | None = None,
    offered: Sequence[Mapping[str, Any]] = (),
    executor: ExecutorOptions = DEFAULT_EXECUTOR_OPTIONS,
) -> JsonObject:
    """The TaskInfo (Mesos v1 JSON) for one shard of one run, placed on `task_id.agent_id`."""
    payload = build_payload(task_id, job, app, fire_time)
    info: JsonObject = {
        "name": task_id.meta.value,
        "task_id": {"value": task_id.value},
        "agent_id": {"value": task_id.agent_id},
        "resources": [
            scalar("cpus", job.spec.cpu_count, offered),
            scalar("mem", job.spec.memory_mb, offered),
        ],
        "data": payload.encode_base64(),
    }
    if uses_command_executor(job):
        assert job.spec.script is not None
        argv = script_argv(job.spec.script.command_line, payload.sharding.model_dump_json())
        environment = payload.sharding.environment()
        info["command"] = {
            "value": argv[0],
            "arguments": argv,
            "shell": False,
            "uris": [app_uri(app, command_executor=True)],
            "environment": {
                "variables": [{"name": k, "value": v} for k, v in sorted(environment.items())]
            },
        }
    else:
        info["executor"] = build_executor_info(app, task_id.agent_id, executor, offered)
    return info
