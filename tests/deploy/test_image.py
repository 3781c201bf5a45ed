"""The Dockerfile agrees with the chart and the project: the chart's non-root user is the
image's, the ports and the command match, everything the build copies is in the build
context, and the http-parser rebuild has one implementation (scripts/build-http-parser)
that both scripts/setup and the image use. No Docker engine here: the image itself is
built where one is (docs/deploy.md)."""

from __future__ import annotations

import fnmatch
import json
import re

import helm_python
import pytest

from controller.__main__ import COMMANDS
from controller.settings import HttpSettings
from tests.deploy.chart import (
    DOCKERFILE,
    PROJECT,
    dockerfile_final_stage,
    image_command,
    render,
    values_file,
)

pytestmark = pytest.mark.unit

BUILD_SCRIPT = PROJECT / "scripts" / "build-http-parser"


def test_the_chart_runs_the_image_as_its_own_non_root_user(chart: helm_python.Chart) -> None:
    user, _, group = dockerfile_final_stage()["USER"][-1].partition(":")
    pod = render(chart, values_file("default")).one("Deployment")["spec"]["template"]["spec"]
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (
        int(user),
        int(group),
    )
    assert int(user) != 0
    # The framework user's default comes from $USER before the password database.
    assert "USER=cloudjob" in dockerfile_final_stage()["ENV"][-1].split()


def test_the_image_exposes_the_ports_the_chart_and_the_controller_use(
    chart: helm_python.Chart,
) -> None:
    exposed = sorted(int(p) for line in dockerfile_final_stage()["EXPOSE"] for p in line.split())
    ports = render(chart, values_file("default")).container["ports"]
    defaults = HttpSettings()
    assert exposed == sorted(p["containerPort"] for p in ports)
    assert exposed == sorted([defaults.health_port, defaults.metrics_port])


def test_the_container_runs_the_controllers_run_command(chart: helm_python.Chart) -> None:
    command = image_command(render(chart, values_file("default")).container)
    assert command == ["python", "-m", "controller", "run"]
    assert command[-1] in COMMANDS
    assert json.loads(dockerfile_final_stage()["CMD"][-1]) == ["run"]


def test_both_stages_use_the_projects_python() -> None:
    bases = re.findall(r"^FROM (\S+)", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert bases == ["python:3.11-slim", "python:3.11-slim"]
    assert 'requires-python = ">=3.11,<3.12"' in (PROJECT / "pyproject.toml").read_text()


def test_the_http_parser_rebuild_lives_in_one_script_used_by_setup_and_the_image() -> None:
    assert BUILD_SCRIPT.stat().st_mode & 0o111, "scripts/build-http-parser is not executable"
    assert "http-parser==0.9.0" in BUILD_SCRIPT.read_text()
    setup = (PROJECT / "scripts" / "setup").read_text()
    dockerfile = DOCKERFILE.read_text()
    assert "scripts/build-http-parser .venv/bin/python" in setup
    assert "/src/scripts/build-http-parser /opt/venv/bin/python" in dockerfile
    for other in (setup, dockerfile):
        assert "http-parser==" not in other and "parser.pyx" not in other


def test_everything_the_build_copies_is_in_the_build_context() -> None:
    ignored = [
        line.strip()
        for line in (PROJECT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = [
        source
        for args in re.findall(r"^COPY (?!--from)(.+)$", DOCKERFILE.read_text(), re.MULTILINE)
        for source in args.split()[:-1]
    ]
    assert sources
    for source in sources:
        assert (PROJECT / source).exists(), source
        top = source.split("/")[0]
        assert not any(fnmatch.fnmatchcase(top, pattern) for pattern in ignored), source
