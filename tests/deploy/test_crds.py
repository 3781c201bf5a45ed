"""The chart's CRDs are the project's crds/*.yaml: its crds/ entries are links Helm follows,
so what an install applies is byte for byte the files in crds/, and a packaged chart
carries their contents."""

from __future__ import annotations

import tarfile
from pathlib import Path

import helm_python
import pytest

from tests.deploy.chart import CHART, PROJECT, RULES

pytestmark = pytest.mark.unit

SOURCES = sorted((PROJECT / "crds").glob("*.yaml"))


def test_every_project_crd_is_a_chart_crd_byte_for_byte(chart: helm_python.Chart) -> None:
    assert SOURCES, "no CRDs under crds/"
    loaded = {Path(crd["filename"]).name: crd["data"] for crd in chart.crds}
    assert loaded == {path.name: path.read_text() for path in SOURCES}


def test_the_chart_links_its_crds_and_rules_instead_of_copying_them() -> None:
    for path in SOURCES:
        link = CHART / "crds" / path.name
        assert link.is_symlink(), f"{link} should link to {path}"
        assert link.resolve() == path.resolve()
    rules = CHART / "files" / RULES.name
    assert rules.is_symlink() and rules.resolve() == RULES.resolve()
    assert sorted(p.name for p in (CHART / "crds").iterdir()) == [p.name for p in SOURCES]


def test_a_packaged_chart_carries_the_linked_contents(tmp_path: Path) -> None:
    archive = helm_python.package(CHART, destination=tmp_path)
    with tarfile.open(archive) as packed:
        members = {m.name: m for m in packed.getmembers()}
        for path in SOURCES:
            member = members[f"cloudjob-controller/crds/{path.name}"]
            assert member.isfile()
            extracted = packed.extractfile(member)
            assert extracted is not None and extracted.read() == path.read_bytes()
        rules = packed.extractfile(members["cloudjob-controller/files/cloudjob-rules.yaml"])
        assert rules is not None and rules.read() == RULES.read_bytes()
        assert not any(name.startswith("cloudjob-controller/ci/") for name in members)
