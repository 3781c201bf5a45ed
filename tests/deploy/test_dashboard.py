"""The Grafana dashboard (deploy/grafana/cloudjob-jobs.json): every query names only
metrics and labels the controller exports, and the chart ships the file unchanged."""

from __future__ import annotations

import json
import re
from typing import Any

import helm_python
import pytest

from tests.deploy.chart import PROJECT, merged, render, values_file
from tests.deploy.test_alerts import exported_samples

pytestmark = pytest.mark.unit

DASHBOARD = PROJECT / "deploy" / "grafana" / "cloudjob-jobs.json"
# Labels of the per-job series, the scheduler's own, and the scrape's instance.
LABELS = {"job_namespace", "job_name", "outcome", "instance"}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def queries() -> list[str]:
    board = dashboard()
    exprs = [t["expr"] for panel in board["panels"] for t in panel["targets"]]
    variables = [v["query"]["query"] for v in board["templating"]["list"] if v["type"] == "query"]
    return exprs + variables


def test_every_panel_has_a_query() -> None:
    for panel in dashboard()["panels"]:
        assert panel["targets"], panel["title"]
        assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]


def test_every_query_names_a_metric_the_controller_exports() -> None:
    exported = exported_samples()
    for query in queries():
        used = set(re.findall(r"\bcloudjob_\w+", query))
        assert used, f"no controller metric in {query!r}"
        assert used <= exported, f"{query!r}: not exported: {sorted(used - exported)}"


def test_every_label_a_query_groups_or_matches_on_is_exported() -> None:
    for query in queries():
        grouped = {
            label.strip()
            for clause in re.findall(r"\b(?:by|on)\s*\(([^)]*)\)", query)
            for label in clause.split(",")
        }
        matched = set(re.findall(r"(\w+)\s*=~?\s*\"", query))
        assert grouped | matched <= LABELS, query


def test_the_chart_ships_the_dashboard_unchanged(chart: helm_python.Chart) -> None:
    values = merged(values_file("default"), {"metrics": {"grafanaDashboard": {"enabled": True}}})
    config = render(chart, values).one("ConfigMap")
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config["data"]["cloudjob-jobs.json"]) == dashboard()


def test_no_dashboard_unless_asked(chart: helm_python.Chart) -> None:
    assert render(chart, values_file("default")).of_kind("ConfigMap") == []
