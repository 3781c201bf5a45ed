"""Spec parsing: a valid spec becomes a definition; every problem names its field."""

from __future__ import annotations

from typing import Any

import pytest

from controller.reconcilers.specs import InvalidSpec, parse_app, parse_job
from controller.resources import ExecutionType

pytestmark = pytest.mark.unit


def job_spec(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "appName": "demo",
        "cron": "*/5 * * * * ?",
        "shardingTotalCount": 3,
        "cpuCount": 0.1,
        "memoryMB": 32,
        "script": {"commandLine": "echo hi"},
    }
    spec.update(changes)
    return {k: v for k, v in spec.items() if v is not None}


def problems_of(spec: dict[str, Any], name: str = "report") -> tuple[str, ...]:
    with pytest.raises(InvalidSpec) as caught:
        parse_job("team-a", name, spec)
    return caught.value.problems


def test_a_valid_job_becomes_its_definition() -> None:
    definition = parse_job("team-a", "report", job_spec(executionType="DAEMON"))
    assert definition.key == "team-a.report"
    assert definition.app_key == "team-a.demo"
    assert definition.spec.execution_type is ExecutionType.DAEMON
    assert definition.spec.sharding_total_count == 3


def test_a_bad_cron_names_spec_cron() -> None:
    problems = problems_of(job_spec(cron="61 * * * * ?"))
    assert len(problems) == 1
    assert problems[0].startswith("spec.cron: ")


def test_a_cron_of_the_wrong_shape_names_spec_cron_and_the_forms() -> None:
    (problem,) = problems_of(job_spec(cron="every minute"))
    assert problem.startswith("spec.cron: 'every minute' is not a cron expression: write 5 fields")


def test_a_bad_time_zone_names_spec_time_zone() -> None:
    (problem,) = problems_of(job_spec(timeZone="Mars/Olympus"))
    assert problem.startswith("spec.timeZone: ")


def test_a_missing_field_says_it_is_required() -> None:
    (problem,) = problems_of(job_spec(cpuCount=None))
    assert problem == "spec.cpuCount: the field is required; set it"


def test_nested_fields_are_named_by_their_path() -> None:
    (problem,) = problems_of(job_spec(script={"commandLine": ""}))
    assert problem.startswith("spec.script.commandLine: ")


def test_two_job_kinds_are_refused_with_the_fix() -> None:
    (problem,) = problems_of(job_spec(python={"callable": "pkg.mod:run"}))
    assert "exactly one of spec.script, spec.python or spec.dataflow" in problem


def test_every_semantic_problem_is_reported_at_once() -> None:
    problems = problems_of(
        job_spec(cron="0 0 25 * * ?", shardingItemParameters={"7": "x"}), name="Bad_Name"
    )
    fields = sorted(p.split(":", 1)[0] for p in problems)
    assert fields == ["metadata.name", "spec.cron", "spec.shardingItemParameters"]


def test_an_app_name_that_cannot_be_a_key_is_refused() -> None:
    (problem,) = problems_of(job_spec(appName="No.Dots"))
    assert problem.startswith("spec.appName: ")


def test_a_valid_app_becomes_its_definition() -> None:
    definition = parse_app(
        "team-a", "demo", {"appURL": "http://x/demo.tar.gz", "bootstrapScript": "bin/start"}
    )
    assert definition.key == "team-a.demo"
    assert definition.spec.cpu_count == 1.0


def test_an_invalid_app_names_its_fields() -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_app("team-a", "demo", {"appURL": "", "cpuCount": 0})
    fields = sorted(p.split(":", 1)[0] for p in caught.value.problems)
    assert fields == ["spec.appURL", "spec.bootstrapScript", "spec.cpuCount"]
    assert "invalid CloudApp" in str(caught.value)


def test_a_command_line_with_unbalanced_quotes_is_refused_before_any_launch() -> None:
    (problem,) = problems_of(job_spec(script={"commandLine": "echo 'unterminated"}))
    assert problem.startswith("spec.script.commandLine ")
    assert "balance its quotes" in problem
