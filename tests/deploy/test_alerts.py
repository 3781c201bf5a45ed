"""The alerting rules (deploy/alerts/cloudjob-rules.yaml): promtool accepts them and their
unit tests pass, every alert is tested firing and quiet, they use only metrics and label
values the controller really exports, and the chart's PrometheusRule carries them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml
from prometheus_client import CollectorRegistry

from controller.history.writer import HistoryMetrics
from controller.mesos.job_metrics import JobMetrics
from controller.metrics import FrameworkMetrics
from tests.deploy.chart import PROJECT, RULES, RULES_TESTS, merged, render, values_file

pytestmark = pytest.mark.integration

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (scripts/setup installs Debian's prometheus package)",
)
SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
}


def rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load(RULES.read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120)


def exported_samples() -> set[str]:
    """Every sample name the controller's collectors can export."""
    registry = CollectorRegistry()
    FrameworkMetrics(registry)
    HistoryMetrics(registry)
    registry.register(JobMetrics(list))
    return {
        family.name + suffix
        for family in registry.collect()
        for suffix in SAMPLE_SUFFIXES[family.type]
    }


@needs_promtool
def test_promtool_accepts_the_rules() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules())} rules found" in checked.stdout


@needs_promtool
def test_the_rules_unit_tests_pass() -> None:
    tested = promtool("test", "rules", str(RULES_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_is_tested_both_firing_and_quiet() -> None:
    cases = yaml.safe_load(RULES_TESTS.read_text())
    assert cases["rule_files"] == [RULES.name]
    firing: set[str] = set()
    quiet: set[str] = set()
    for group in cases["tests"]:
        for check in group["alert_rule_test"]:
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in rules()}
    assert firing == names
    assert quiet == names


def test_every_alert_has_a_severity_and_says_what_and_what_to_do() -> None:
    for rule in rules():
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert set(rule["annotations"]) == {"summary", "description", "runbook"}, rule["alert"]
        assert rule["alert"].startswith("Cloudjob")


def test_the_rules_use_only_metrics_the_controller_exports() -> None:
    exported = exported_samples()
    used = {name for rule in rules() for name in re.findall(r"\bcloudjob_\w+", rule["expr"])}
    assert used, "no metric found in the rules"
    assert used <= exported, f"not exported by the controller: {sorted(used - exported)}"


def test_label_values_the_rules_match_are_ones_the_controller_sets() -> None:
    source = "\n".join(p.read_text() for p in (PROJECT / "controller").rglob("*.py"))
    matched = {
        (label, value)
        for rule in rules()
        for label, value in re.findall(r'(\w+)="([^"]+)"', rule["expr"])
    }
    assert matched, "no label matcher found in the rules"
    for label, value in matched:
        assert f'"{value}"' in source, f'{label}="{value}" is never set by the controller'


def rendered_rules(chart: helm_python.Chart, overrides: dict[str, Any]) -> dict[str, Any]:
    values = merged(values_file("default"), overrides)
    spec: dict[str, Any] = render(chart, values).one("PrometheusRule")["spec"]
    return spec


def test_the_prometheus_rule_carries_the_rules_file_unchanged(chart: helm_python.Chart) -> None:
    spec = rendered_rules(chart, {"metrics": {"prometheusRule": {"enabled": True}}})
    assert spec == yaml.safe_load(RULES.read_text())


def test_the_prometheus_rule_leaves_out_disabled_alerts_and_adds_labels(
    chart: helm_python.Chart,
) -> None:
    overrides = {
        "metrics": {
            "prometheusRule": {
                "enabled": True,
                "disabledAlerts": ["CloudjobFireToLaunchSkewHigh"],
                "alertLabels": {"team": "scheduling", "severity": "page"},
            }
        }
    }
    spec = rendered_rules(chart, overrides)
    got = {rule["alert"]: rule for group in spec["groups"] for rule in group["rules"]}
    assert set(got) == {rule["alert"] for rule in rules()} - {"CloudjobFireToLaunchSkewHigh"}
    for rule in rules():
        if rule["alert"] in got:
            assert got[rule["alert"]]["labels"] == {"severity": "page", "team": "scheduling"}
            assert got[rule["alert"]]["expr"] == rule["expr"]


@pytest.mark.parametrize(("interval", "kept"), [(0, False), (3600, False), (900, True)])
def test_the_stalled_reconciliation_alert_follows_the_reconciliation_interval(
    chart: helm_python.Chart, interval: int, kept: bool
) -> None:
    overrides = {
        "mesos": {"framework": {"reconcileIntervalSeconds": interval}},
        "metrics": {"prometheusRule": {"enabled": True}},
    }
    spec = rendered_rules(chart, overrides)
    names = {rule["alert"] for group in spec["groups"] for rule in group["rules"]}
    assert ("CloudjobReconciliationStalled" in names) is kept


@needs_promtool
def test_promtool_accepts_the_rendered_prometheus_rule(
    chart: helm_python.Chart, tmp_path: Path
) -> None:
    spec = render(chart, values_file("full")).one("PrometheusRule")["spec"]
    path = tmp_path / "rendered-rules.yaml"
    path.write_text(yaml.safe_dump(spec))
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
