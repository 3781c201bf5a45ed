"""From a Mesos TaskInfo to a checked plan of what the executor will run, or why not.

Everything that can be wrong with a task before it runs — no data, a payload that
does not decode, a job kind without its fields, a command line with unbalanced
quotes, a bad Python target, a daemon cron or time zone that does not parse — is
found here and raised as `PlanError`, which fails that task alone (TASK_ERROR)
with the error's message. Pure; used by the task supervisor.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controller.commandline import CommandLineError, needs_shell, split_command_line
from controller.cron import CronError, parse_cron
from controller.executor.clock import Schedule
from controller.resources import PYTHON_TARGET, ExecutionType, JobKind
from controller.taskdata import PayloadError, TaskPayload

_INTEGER = re.compile(r"-?[0-9]+")


class PlanError(ValueError):
    """The task cannot be run; the message says what is wrong and what to fix."""


@dataclass(frozen=True)
class ScriptWork:
    command_line: str


@dataclass(frozen=True)
class PythonWork:
    module: str
    attribute: str


@dataclass(frozen=True)
class DataflowWork:
    module: str
    attribute: str
    streaming: bool


Work = ScriptWork | PythonWork | DataflowWork


@dataclass(frozen=True)
class TaskPlan:
    task_id: str
    payload: TaskPayload
    work: Work
    schedule: Schedule | None
    """The daemon task's own cron; None for transient tasks."""
    grace_seconds: float | None
    """The task's kill policy grace period, if the TaskInfo has one."""

    @property
    def is_daemon(self) -> bool:
        return self.payload.job.execution_type is ExecutionType.DAEMON


def task_id_of(task_info: Mapping[str, Any]) -> str:
    return str(task_info["task_id"]["value"])


def plan_task(task_info: Mapping[str, Any]) -> TaskPlan:
    task_id = task_id_of(task_info)
    data = task_info.get("data")
    if not data:
        raise PlanError("the task has no data; the framework must put the task payload there")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise PlanError("task data is not valid base64") from None
    try:
        payload = TaskPayload.decode(raw)
    except PayloadError as error:
        raise PlanError(str(error)) from None
    job = payload.job
    daemon = job.execution_type is ExecutionType.DAEMON
    return TaskPlan(
        task_id=task_id,
        payload=payload,
        work=_work(job.kind, job.command_line, job.callable, job.dataflow_source, job.streaming),
        schedule=_schedule(job.cron, job.time_zone) if daemon else None,
        grace_seconds=_grace(task_info),
    )


def _work(
    kind: JobKind,
    command_line: str | None,
    callable_: str | None,
    dataflow_source: str | None,
    streaming: bool,
) -> Work:
    if kind is JobKind.SCRIPT:
        if not command_line or not command_line.strip():
            raise PlanError("job.command_line is required for a script job; set spec.script")
        if not needs_shell(command_line):
            try:
                split_command_line(command_line)
            except CommandLineError as error:
                raise PlanError(str(error)) from None
        return ScriptWork(command_line=command_line)
    if kind is JobKind.PYTHON:
        module, attribute = _target("job.callable", callable_)
        return PythonWork(module=module, attribute=attribute)
    module, attribute = _target("job.dataflow_source", dataflow_source)
    return DataflowWork(module=module, attribute=attribute, streaming=streaming)


def _target(field: str, target: str | None) -> tuple[str, str]:
    if not target or not PYTHON_TARGET.match(target):
        raise PlanError(
            f"{field} is {target!r}; it must be 'package.module:name' (a module importable "
            "from the app package and a name in it)"
        )
    module, _, attribute = target.partition(":")
    return module, attribute


def _schedule(cron: str, time_zone: str) -> Schedule:
    try:
        return parse_cron(cron, time_zone)
    except CronError as error:
        raise PlanError(f"job.cron {cron!r} in time zone {time_zone!r}: {error}") from None


def _grace(task_info: Mapping[str, Any]) -> float | None:
    policy = task_info.get("kill_policy")
    if policy is None:
        return None
    if not isinstance(policy, Mapping):
        raise PlanError(
            f"kill_policy is {policy!r}; expected an object like "
            '{"grace_period": {"nanoseconds": 5000000000}}'
        )
    grace = policy.get("grace_period")
    if grace is None:
        return None
    if not isinstance(grace, Mapping):
        raise PlanError(
            f"kill_policy.grace_period is {grace!r}; expected an object like "
            '{"nanoseconds": 5000000000}'
        )
    nanoseconds = grace.get("nanoseconds")
    if nanoseconds is None:
        return None
    # Protobuf JSON writes int64 as a number or as a string of digits.
    if isinstance(nanoseconds, int) and not isinstance(nanoseconds, bool):
        amount = nanoseconds
    elif isinstance(nanoseconds, str) and _INTEGER.fullmatch(nanoseconds):
        amount = int(nanoseconds)
    else:
        raise PlanError(
            f"kill_policy.grace_period.nanoseconds is {nanoseconds!r}; expected an integer"
        )
    return max(0.0, amount / 1e9)
