"""Renders the Helm chart offline (helm_python, Helm's own Go SDK) for the deployment tests,
and finds things in what it renders. Used by the tests under tests/deploy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import yaml

PROJECT = Path(__file__).resolve().parents[2]
CHART = PROJECT / "charts" / "cloudjob-controller"
RULES = PROJECT / "deploy" / "alerts" / "cloudjob-rules.yaml"
RULES_TESTS = PROJECT / "deploy" / "alerts" / "cloudjob-rules.test.yaml"
DOCKERFILE = PROJECT / "Dockerfile"
RELEASE = "cj"
NAMESPACE = "ops"


def values_file(name: str) -> dict[str, Any]:
    """One of the chart's ci/ values files: `default` (only what is required) or `full`."""
    loaded: dict[str, Any] = yaml.safe_load((CHART / "ci" / f"{name}-values.yaml").read_text())
    return loaded


def merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`base` with `overrides` merged in, nested mappings key by key (as `--set` does)."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


@dataclass(frozen=True)
class Rendered:
    """The objects a release would create (templates only; CRDs are `Chart.crds`)."""

    objects: list[dict[str, Any]]
    notes: str

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        found = self.of_kind(kind)
        assert len(found) == 1, f"expected one {kind}, rendered {len(found)}"
        return found[0]

    @property
    def kinds(self) -> list[str]:
        return sorted(obj["kind"] for obj in self.objects)

    @property
    def container(self) -> dict[str, Any]:
        containers = self.one("Deployment")["spec"]["template"]["spec"]["containers"]
        assert len(containers) == 1
        container: dict[str, Any] = containers[0]
        return container

    @property
    def env(self) -> list[dict[str, Any]]:
        env: list[dict[str, Any]] = self.container["env"]
        return env


def render(
    chart: helm_python.Chart,
    values: dict[str, Any],
    *,
    namespace: str = NAMESPACE,
    release: str = RELEASE,
) -> Rendered:
    """Validate `values` against the schema and render every template, as an install does."""
    chart.validate_schema(values)
    manifests = chart.render(values, name=release, namespace=namespace, is_install=True)
    objects: list[dict[str, Any]] = []
    notes = ""
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return Rendered(objects=objects, notes=notes)


def crd_specs() -> Iterator[dict[str, Any]]:
    """The `spec` of each CRD under crds/ (group, names, versions...)."""
    for path in sorted((PROJECT / "crds").glob("*.yaml")):
        spec: dict[str, Any] = yaml.safe_load(path.read_text())["spec"]
        yield spec


def dockerfile_final_stage() -> dict[str, list[str]]:
    """Instruction → arguments (one entry per occurrence) of the Dockerfile's last stage."""
    lines = DOCKERFILE.read_text().replace("\\\n", " ").splitlines()
    stage: dict[str, list[str]] = {}
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        instruction, _, rest = line.strip().partition(" ")
        if instruction.upper() == "FROM":
            stage = {}
        stage.setdefault(instruction.upper(), []).append(rest.strip())
    return stage


def image_command(container: dict[str, Any]) -> list[str]:
    """The command a container of the image runs: the image's ENTRYPOINT, then the
    container's args (or the image's CMD)."""
    stage = dockerfile_final_stage()
    entrypoint: list[str] = json.loads(stage["ENTRYPOINT"][-1])
    args: list[str] = container.get("args") or json.loads(stage["CMD"][-1])
    return entrypoint + args
