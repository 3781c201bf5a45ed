"""Turn a CloudApp/CloudJob object's spec into a definition, or into problems to report.

Pure. The handlers pass the raw `spec` mapping of an object; the result is either an
`AppDefinition`/`JobDefinition` for the scheduling core or an `InvalidSpec` whose
problems each name the field (`spec.cron: ...`) and say how to fix it. Both schema-level
problems (what a CRD schema would reject, should an object slip past it) and semantic
ones (`job_semantic_errors`, `app_semantic_errors`, and a script command line the task
builder cannot split into arguments) are reported, so nothing invalid ever reaches
ZooKeeper or Mesos.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from controller.commandline import script_argv
from controller.definitions import AppDefinition, JobDefinition
from controller.resources import (
    CloudAppSpec,
    CloudJobSpec,
    ScriptJob,
    app_semantic_errors,
    job_semantic_errors,
)


class InvalidSpec(ValueError):
    """The object's spec cannot be scheduled; `problems` name each field and its fix."""

    def __init__(self, kind: str, problems: list[str]) -> None:
        self.kind = kind
        self.problems = tuple(problems)
        super().__init__(f"invalid {kind}: " + "; ".join(problems))


def _location(loc: tuple[int | str, ...]) -> str:
    path = "spec"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def validation_problems(error: ValidationError) -> list[str]:
    """One line per pydantic error, prefixed with the field path as written in the manifest."""
    problems = []
    for detail in error.errors(include_url=False):
        where = _location(detail["loc"]) if detail["loc"] else "spec"
        if detail["type"] == "missing":
            problems.append(f"{where}: the field is required; set it")
        else:
            message = detail["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message}")
    return problems


def _command_line_problem(script: ScriptJob) -> str | None:
    """A command line the task builder could not turn into arguments fails every launch."""
    try:
        script_argv(script.command_line, "{}")
    except ValueError as error:
        return str(error)
    return None


def parse_job(namespace: str, name: str, spec: Mapping[str, Any]) -> JobDefinition:
    """The job's definition; raises InvalidSpec listing every problem found."""
    try:
        parsed = CloudJobSpec.model_validate(dict(spec))
    except ValidationError as error:
        raise InvalidSpec("CloudJob", validation_problems(error)) from None
    problems = job_semantic_errors(name, parsed)
    if parsed.script is not None and (problem := _command_line_problem(parsed.script)):
        problems.append(problem)
    if problems:
        raise InvalidSpec("CloudJob", problems)
    return JobDefinition(namespace=namespace, name=name, spec=parsed)


def parse_app(namespace: str, name: str, spec: Mapping[str, Any]) -> AppDefinition:
    """The app's definition; raises InvalidSpec listing every problem found."""
    try:
        parsed = CloudAppSpec.model_validate(dict(spec))
    except ValidationError as error:
        raise InvalidSpec("CloudApp", validation_problems(error)) from None
    if problems := app_semantic_errors(name, parsed):
        raise InvalidSpec("CloudApp", problems)
    return AppDefinition(namespace=namespace, name=name, spec=parsed)
