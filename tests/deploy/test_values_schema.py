"""values.schema.json and the chart's own checks: bad values are refused before anything is
rendered, with a message naming the value; the schema's framework settings are exactly
the controller's, with the same bounds."""

from __future__ import annotations

import json
import re
from typing import Any

import helm_python
import pytest

from controller.mesos.settings import FrameworkSettings
from tests.deploy.chart import CHART, merged, render, values_file

pytestmark = pytest.mark.unit

# FrameworkSettings fields the chart has values of their own for (mesos.*); the rest
# are under mesos.framework.
EXPLICIT_MESOS = {"master", "framework_name", "role", "user", "principal", "secret", "webui_url"}
BOUNDS = ("type", "minimum", "exclusiveMinimum", "minLength")


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
    return loaded


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"zookeeper": {"hosts": None}}, "at '/zookeeper/hosts': got null, want string"),
        ({"zookeeper": {"hosts": "zk-0:2181, zk-1:2181"}}, "at '/zookeeper/hosts'"),
        ({"zookeeper": {"namespace": "/elastic-job-cloud"}}, "at '/zookeeper/namespace'"),
        ({"zookeeper": {"sessionTimeoutSeconds": 0}}, "at '/zookeeper/sessionTimeoutSeconds'"),
        ({"mesos": {"master": "mesos-master"}}, "at '/mesos/master': 'mesos-master' does not"),
        ({"mesos": {"master": "zk://zk-0:2181"}}, "at '/mesos/master'"),
        ({"mesos": {"framework": {"offerHoldSecs": 3}}}, "'offerHoldSecs' not allowed"),
        ({"mesos": {"framework": {"offerHoldSeconds": 0}}}, "/mesos/framework/offerHoldSeconds"),
        ({"mesos": {"framework": {"checkpoint": "no"}}}, "/mesos/framework/checkpoint"),
        ({"mesos": {"framework": {"eventQueueSize": 1.5}}}, "/mesos/framework/eventQueueSize"),
        ({"replicaCount": "two"}, "at '/replicaCount': got string, want integer"),
        ({"replicas": 3}, "additional properties 'replicas' not allowed"),
        ({"logLevel": "verbose"}, "at '/logLevel': value must be one of"),
        ({"kubernetes": {"watchNamespaces": ["Team_A"]}}, "at '/kubernetes/watchNamespaces/0'"),
        ({"http": {"metricsPort": 70000}}, "at '/http/metricsPort'"),
        ({"image": {"pullPolicy": "Sometimes"}}, "at '/image/pullPolicy'"),
        ({"metrics": {"serviceMonitor": {"interval": "often"}}}, "/serviceMonitor/interval"),
        ({"podAntiAffinity": "strict"}, "at '/podAntiAffinity'"),
    ],
)
def test_the_schema_refuses_bad_values_naming_them(
    chart: helm_python.Chart, overrides: dict[str, Any], message: str
) -> None:
    values = merged(values_file("default"), overrides)
    with pytest.raises(helm_python.HelmValuesError) as refused:
        chart.validate_schema(values)
    assert message in str(refused.value)
    with pytest.raises(helm_python.HelmValuesError):
        chart.render(values, name="cj", namespace="ops")


def test_the_two_required_values_are_named_when_missing(chart: helm_python.Chart) -> None:
    with pytest.raises(helm_python.HelmValuesError) as refused:
        chart.validate_schema({})
    assert "at '/zookeeper': missing property 'hosts'" in str(refused.value)
    assert "at '/mesos': missing property 'master'" in str(refused.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"http": {"healthPort": 9000, "metricsPort": 9000}},
            "http.healthPort and http.metricsPort are both 9000",
        ),
        (
            {"status": {"refreshIntervalSeconds": 5, "minIntervalSeconds": 6}},
            "status.minIntervalSeconds (6) must not exceed status.refreshIntervalSeconds (5)",
        ),
        (
            {"metrics": {"prometheusRule": {"enabled": True, "disabledAlerts": ["NoSuch"]}}},
            'there is no alert named "NoSuch"; the alerts are CloudjobControllerAbsent, ',
        ),
    ],
)
def test_the_templates_refuse_what_the_schema_cannot_express(
    chart: helm_python.Chart, overrides: dict[str, Any], message: str
) -> None:
    values = merged(values_file("default"), overrides)
    chart.validate_schema(values)
    with pytest.raises(helm_python.HelmRenderError) as refused:
        render(chart, values)
    assert message in str(refused.value)


def test_framework_values_are_exactly_the_controllers_framework_settings() -> None:
    properties = schema()["properties"]["mesos"]["properties"]
    framework = properties["framework"]["properties"]
    fields = set(FrameworkSettings.model_fields)
    assert set(framework) == {camel(f) for f in fields - EXPLICIT_MESOS}
    named = set(properties) - {"framework", "secretRef"}
    assert named == {camel(f) for f in EXPLICIT_MESOS - {"secret"}}


def test_framework_value_bounds_are_the_controllers() -> None:
    framework = schema()["properties"]["mesos"]["properties"]["framework"]["properties"]
    controller = FrameworkSettings.model_json_schema()["properties"]
    for field, spec in controller.items():
        if field in EXPLICIT_MESOS:
            continue
        ours = {k: v for k, v in framework[camel(field)].items() if k in BOUNDS}
        theirs = {k: v for k, v in spec.items() if k in BOUNDS}
        assert ours == theirs, field


def test_the_framework_defaults_quoted_in_values_yaml_are_the_controllers() -> None:
    text = (CHART / "values.yaml").read_text()
    block = text.split("# Any other framework setting")[1].split("framework: {}")[0]
    quoted = dict(re.findall(r"([a-z][A-Za-z]+): (\S+)", block))
    framework = {camel(f): f for f in FrameworkSettings.model_fields}
    checked = 0
    for key, value in quoted.items():
        if key not in framework:
            continue
        default = FrameworkSettings.model_fields[framework[key]].default
        assert json.loads(value) == default, key
        checked += 1
    assert checked == len(set(FrameworkSettings.model_fields) - EXPLICIT_MESOS - {"hostname"})
