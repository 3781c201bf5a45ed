"""Pydantic models of the CloudApp and CloudJob custom resources (spec and status).

The spec models accept and reject exactly what the CRD schemas in `crds/` accept and
reject (a generated-corpus test keeps the two in step): they check structure, JSON
types (no coercion of strings or booleans, as the API server does not coerce), enums,
bounds, the DNS-label form of `appName` and the outline of `cron` and `timeZone`. What
a schema cannot express — cron field values, whether a time zone exists, shard keys
within the shard count, `metadata.name` — is checked by `job_semantic_errors` and
`app_semantic_errors`, which the reconcilers turn into a status condition and an
event. Unknown fields are ignored, as the API server prunes them.

Field names are Kubernetes camelCase; Python attributes are snake_case.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    model_validator,
)
from pydantic.alias_generators import to_camel

from controller import cron, naming

GROUP = "cloudjob.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

MAX_SHARDS = 10_000
MAX_TEXT = 4096
MAX_COMMAND_LINE = 32_768
# How late a missed cron fire may still start (spec.startingDeadlineSeconds): a day at
# most, five minutes unless set (enough for a failover or a rolling restart).
MAX_STARTING_DEADLINE = 86_400
DEFAULT_STARTING_DEADLINE = 300
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
PYTHON_TARGET = re.compile(rf"^{_IDENTIFIER}(\.{_IDENTIFIER})*:{_IDENTIFIER}$")
PYTHON_TARGET_PATTERN = PYTHON_TARGET.pattern
SHARD_KEY = re.compile(r"^(0|[1-9][0-9]*)$")
# The outline of a cron expression: 5 to 7 space-separated fields of cron characters.
# `controller.cron` checks the fields themselves.
CRON_PATTERN = r"^ *[0-9A-Za-z*?/,#-]+( +[0-9A-Za-z*?/,#-]+){4,6} *$"
# The outline of an IANA time zone name (`Area/Location`, `UTC`, `Etc/GMT+5`).
TIME_ZONE_PATTERN = r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$"


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
    )


class ExecutionType(StrEnum):
    TRANSIENT = "TRANSIENT"
    DAEMON = "DAEMON"


class PlacementStrategy(StrEnum):
    BINPACK = "binpack"
    SPREAD = "spread"


def _matching(pattern: str, rule: str) -> AfterValidator:
    """A check that the whole value matches `pattern`, failing with `rule` as the message."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        # fullmatch: `$` must not match before a trailing newline, as in the API server's regexps.
        if not compiled.fullmatch(value):
            raise ValueError(f"'{value}' {rule}")
        return value

    return AfterValidator(check)


def _app_name(value: str) -> str:
    if problem := naming.name_error("CloudApp", value):
        raise ValueError(problem)
    return value


Cpus = Annotated[StrictFloat, Field(ge=0.001, le=1024)]
MemoryMB = Annotated[StrictFloat, Field(ge=1, le=4_194_304)]
AppName = Annotated[str, AfterValidator(_app_name)]
CronText = Annotated[
    str,
    Field(min_length=1, max_length=256),
    _matching(
        CRON_PATTERN,
        "is not a cron expression: write 5 fields (minute hour day-of-month month "
        "day-of-week) or 6-7 Quartz fields (second minute hour day-of-month month "
        "day-of-week [year]) separated by spaces",
    ),
]
TimeZoneName = Annotated[
    str,
    Field(min_length=1, max_length=64),
    _matching(
        TIME_ZONE_PATTERN,
        "is not an IANA time zone name; use a name such as 'UTC' or 'Europe/Berlin'",
    ),
]


class CloudAppSpec(_Model):
    """An app package: its tarball becomes a Mesos executor that serves the app's jobs."""

    app_url: str = Field(alias="appURL", min_length=1, max_length=MAX_TEXT)
    bootstrap_script: str = Field(min_length=1, max_length=MAX_TEXT)
    cpu_count: Cpus = 1.0
    memory_mb: MemoryMB = Field(default=128.0, alias="memoryMB")
    app_cache_enable: StrictBool = True
    event_trace_sampling_count: StrictInt = Field(default=0, ge=0, le=1_000_000)
    disabled: StrictBool = False


class ScriptJob(_Model):
    command_line: str = Field(min_length=1, max_length=MAX_COMMAND_LINE)


class PythonJob(_Model):
    callable: Annotated[
        str,
        Field(min_length=3, max_length=512),
        _matching(
            PYTHON_TARGET_PATTERN,
            "is not a Python callable: write 'package.module:function', "
            "e.g. 'demo_jobs.simple:run'",
        ),
    ]


class DataflowJob(_Model):
    source: Annotated[
        str,
        Field(min_length=3, max_length=512),
        _matching(
            PYTHON_TARGET_PATTERN,
            "is not a dataflow class: write 'package.module:Class', "
            "e.g. 'demo_jobs.dataflow:Numbers'",
        ),
    ]
    streaming: StrictBool = False


class JobKind(StrEnum):
    SCRIPT = "script"
    PYTHON = "python"
    DATAFLOW = "dataflow"


class CloudJobSpec(_Model):
    """A cron or resident job of an app, split into shards (one Mesos task per shard)."""

    app_name: AppName
    cron: CronText
    time_zone: TimeZoneName = "UTC"
    execution_type: ExecutionType = ExecutionType.TRANSIENT
    sharding_total_count: StrictInt = Field(ge=1, le=MAX_SHARDS)
    sharding_item_parameters: dict[str, Annotated[str, Field(max_length=MAX_TEXT)]] = Field(
        default_factory=dict
    )
    job_parameter: str = Field(default="", max_length=MAX_TEXT)
    cpu_count: Cpus
    memory_mb: MemoryMB = Field(alias="memoryMB")
    misfire: StrictBool = False
    starting_deadline_seconds: StrictInt = Field(
        default=DEFAULT_STARTING_DEADLINE, ge=0, le=MAX_STARTING_DEADLINE
    )
    failover: StrictBool = False
    disabled: StrictBool = False
    placement_strategy: PlacementStrategy = PlacementStrategy.BINPACK
    description: str = Field(default="", max_length=MAX_TEXT)
    script: ScriptJob | None = None
    python: PythonJob | None = None
    dataflow: DataflowJob | None = None

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> CloudJobSpec:
        given = [k for k in JobKind if getattr(self, k.value) is not None]
        if len(given) != 1:
            raise ValueError(
                "exactly one of spec.script, spec.python or spec.dataflow must be set "
                f"(found {len(given)}: {', '.join(k.value for k in given) or 'none'})"
            )
        return self

    @property
    def kind(self) -> JobKind:
        return next(k for k in JobKind if getattr(self, k.value) is not None)

    def shard_parameters(self) -> dict[int, str]:
        """Shard item → parameter; items without an entry get an empty parameter."""
        given = {
            int(k): v for k, v in self.sharding_item_parameters.items() if SHARD_KEY.fullmatch(k)
        }
        return {item: given.get(item, "") for item in range(self.sharding_total_count)}


def parse_original_item_parameters(text: str) -> dict[str, str]:
    """Map the original `0=a,1=b` string onto `shardingItemParameters` (`{"0": "a", "1": "b"}`)."""
    result: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        item, sep, value = entry.partition("=")
        if not sep or not SHARD_KEY.fullmatch(item.strip()):
            raise ValueError(f"'{entry}' is not of the form '<shard item>=<parameter>'")
        result[item.strip()] = value
    return result


def job_semantic_errors(name: str, spec: CloudJobSpec) -> list[str]:
    """Problems a CRD schema cannot catch, each naming the field and the fix."""
    errors: list[str] = []
    if problem := naming.name_error("CloudJob", name):
        errors.append(f"metadata.name: {problem}")
    if problem := cron.validate_cron(spec.cron):
        errors.append(f"spec.cron: {problem}")
    if problem := cron.validate_time_zone(spec.time_zone):
        errors.append(f"spec.timeZone: {problem}")
    for key in spec.sharding_item_parameters:
        if not SHARD_KEY.fullmatch(key) or int(key) >= spec.sharding_total_count:
            errors.append(
                f"spec.shardingItemParameters: key '{key}' is not a shard item; use integers "
                f"0..{spec.sharding_total_count - 1} (shardingTotalCount is "
                f"{spec.sharding_total_count})"
            )
    return errors


def app_semantic_errors(name: str, spec: CloudAppSpec) -> list[str]:
    errors: list[str] = []
    if problem := naming.name_error("CloudApp", name):
        errors.append(f"metadata.name: {problem}")
    return errors


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(_Model):
    type: str
    status: ConditionStatus
    reason: str
    message: str = ""
    last_transition_time: AwareDatetime
    observed_generation: int | None = None


class ActiveShard(_Model):
    shard: int
    task_id: str
    agent: str
    state: str
    since: AwareDatetime
    host: str | None = None


class ShardOutcome(_Model):
    shard: int
    host: str
    outcome: str | None = None
    task_id: str
    message: str | None = None


class RecentRun(_Model):
    """One run of the job (the shards of one fire time), newest first in the status."""

    fire_time: AwareDatetime | None = None
    started_at: AwareDatetime
    outcome: str
    shards: list[ShardOutcome] = Field(default_factory=list)


class CloudJobStatus(_Model):
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    state: str | None = None
    last_schedule_time: AwareDatetime | None = None
    next_schedule_time: AwareDatetime | None = None
    last_successful_time: AwareDatetime | None = None
    active_shards: list[ActiveShard] = Field(default_factory=list)
    succeeded: int = 0
    failed: int = 0
    pending_runs: int = 0
    failover_shards: list[int] = Field(default_factory=list)
    recent_runs: list[RecentRun] = Field(default_factory=list)
    # The last value of the `cloudjob.io/trigger` annotation that was acted on.
    last_trigger: str | None = None


class AppExecutor(_Model):
    agent: str
    executor_id: str
    tasks: int = 0


class CloudAppStatus(_Model):
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    executors: list[AppExecutor] = Field(default_factory=list)
    # The last value of the `cloudjob.io/reconcile` annotation that was acted on.
    last_reconcile: str | None = None
