"""The Helm chart: it lints, renders with the default and with non-default values, and what
it renders hangs together (selectors, ports, probes, service account, security)."""

from __future__ import annotations

import tomllib
from typing import Any

import helm_python
import pytest
import yaml

from tests.deploy.chart import (
    CHART,
    NAMESPACE,
    PROJECT,
    RELEASE,
    Rendered,
    merged,
    render,
    values_file,
)

pytestmark = pytest.mark.unit

HELM_ERROR = 3


def pod_labels(rendered: Rendered) -> dict[str, str]:
    labels: dict[str, str] = rendered.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    return labels


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


@pytest.mark.parametrize("values", ["default", "full"])
def test_helm_lint_passes_strictly(values: str) -> None:
    report = helm_python.lint(CHART, values_file(values), strict=True, namespace=NAMESPACE)
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == [], problems


def test_chart_metadata_names_the_project_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "cloudjob-controller"
    assert chart["appVersion"] == project["version"]


def services(rendered: Rendered) -> dict[str, dict[str, Any]]:
    """The rendered Services by what follows the release's full name: metrics, api."""
    return {s["metadata"]["name"].rsplit("-", 1)[-1]: s for s in rendered.of_kind("Service")}


def test_default_values_render_the_controller_its_rbac_and_services(
    chart: helm_python.Chart,
) -> None:
    rendered = render(chart, values_file("default"))
    assert rendered.kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "PodDisruptionBudget",
        "Service",
        "Service",
        "ServiceAccount",
    ]
    assert sorted(services(rendered)) == ["api", "metrics"]
    assert "kubectl cloudjob runs JOB" in rendered.notes
    deployment = rendered.one("Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert rendered.container["image"] == f"cloudjob-controller:{chart.metadata['appVersion']}"
    assert rendered.container["args"] == ["run"]
    assert all(obj["metadata"].get("namespace", NAMESPACE) == NAMESPACE for obj in rendered.objects)
    assert "every namespace" in rendered.notes


def test_non_default_values_render_monitoring_and_namespaced_rbac(
    chart: helm_python.Chart,
) -> None:
    rendered = render(chart, values_file("full"))
    assert rendered.kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "PodDisruptionBudget",
        "PrometheusRule",
        "Role",
        "Role",
        "RoleBinding",
        "RoleBinding",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
    ]
    assert sorted(r["metadata"]["namespace"] for r in rendered.of_kind("Role")) == [
        "team-a",
        "team-b",
    ]
    container = rendered.container
    assert container["image"] == "registry.example.com/scheduling/cloudjob-controller:0.1.0-rc1"
    assert container["imagePullPolicy"] == "Always"
    pod = rendered.one("Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "jobs-controller"
    assert pod["terminationGracePeriodSeconds"] == 90
    assert pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert pod_labels(rendered)["team"] == "scheduling"
    assert {"name": "TZ", "value": "UTC"} in container["env"]
    assert rendered.one("PodDisruptionBudget")["spec"]["maxUnavailable"] == 2
    monitor = rendered.one("ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}
    ]
    assert "team-a, team-b" in rendered.notes


@pytest.mark.parametrize("values", ["default", "full"])
def test_selectors_ports_and_accounts_agree(chart: helm_python.Chart, values: str) -> None:
    rendered = render(chart, values_file(values))
    labels = pod_labels(rendered)
    deployment = rendered.one("Deployment")
    assert selects(deployment["spec"]["selector"]["matchLabels"], labels)
    service = services(rendered)["metrics"]
    assert selects(service["spec"]["selector"], labels)
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert selects(rendered.one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"], labels)
    for monitor in rendered.of_kind("ServiceMonitor"):
        assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= {
            p["name"] for p in service["spec"]["ports"]
        }

    ports = {p["name"]: p["containerPort"] for p in rendered.container["ports"]}
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["metrics"]
    env = {e["name"]: e.get("value") for e in rendered.env}
    assert str(ports["health"]) == env["CLOUDJOB_HTTP__HEALTH_PORT"]
    assert str(ports["metrics"]) == env["CLOUDJOB_HTTP__METRICS_PORT"]

    account = rendered.one("ServiceAccount")["metadata"]["name"]
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == account
    for binding in rendered.of_kind("ClusterRoleBinding") + rendered.of_kind("RoleBinding"):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}
        ]


def test_the_api_service_routes_its_api_port_to_ready_replicas_health_port(
    chart: helm_python.Chart,
) -> None:
    rendered = render(chart, values_file("default"))
    api = services(rendered)["api"]
    assert api["metadata"]["name"] == f"{RELEASE}-cloudjob-controller-api"
    assert selects(api["spec"]["selector"], pod_labels(rendered))
    # Not-ready replicas (cut off from ZooKeeper) cannot read the queues: left out.
    assert "publishNotReadyAddresses" not in api["spec"]
    assert api["spec"]["type"] == "ClusterIP"
    (port,) = api["spec"]["ports"]
    assert (port["name"], port["targetPort"]) == ("api", "health")
    health = {p["name"]: p["containerPort"] for p in rendered.container["ports"]}["health"]
    assert port["port"] == health


def test_the_api_service_can_be_left_out(chart: helm_python.Chart) -> None:
    rendered = render(chart, values_file("full"))
    assert sorted(services(rendered)) == ["metrics"]
    assert "kubectl cloudjob" not in rendered.notes


def test_probes_use_the_liveness_and_the_standby_friendly_readiness_endpoints(
    chart: helm_python.Chart,
) -> None:
    container = render(chart, values_file("default")).container
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    # /readyz answers 200 for standbys too (controller/endpoints.py); tests/deploy/
    # test_running.py sees both replicas of the rendered Deployment ready.
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}


def test_the_pod_runs_as_non_root_on_a_read_only_root_filesystem(
    chart: helm_python.Chart,
) -> None:
    rendered = render(chart, values_file("default"))
    pod = rendered.one("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = rendered.container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"] for m in rendered.container["volumeMounts"]}
    assert "/tmp" in mounts


def test_one_replica_gets_no_disruption_budget(chart: helm_python.Chart) -> None:
    rendered = render(chart, merged(values_file("default"), {"replicaCount": 1}))
    assert rendered.of_kind("PodDisruptionBudget") == []


def test_without_rbac_or_account_creation_only_the_workload_renders(
    chart: helm_python.Chart,
) -> None:
    values = merged(
        values_file("default"),
        {"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "existing"}},
    )
    rendered = render(chart, values)
    assert rendered.kinds == ["Deployment", "PodDisruptionBudget", "Service", "Service"]
    spec: dict[str, Any] = rendered.one("Deployment")["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "existing"


def test_the_kind_values_point_at_the_kind_zookeeper(chart: helm_python.Chart) -> None:
    values = yaml.safe_load((PROJECT / "deploy" / "kind" / "values.yaml").read_text())
    assert helm_python.lint(CHART, values, strict=True)["errors"] == []
    rendered = render(chart, values, namespace="cloudjob")
    assert rendered.container["imagePullPolicy"] == "Never"
    zookeeper = yaml.safe_load_all((PROJECT / "deploy" / "kind" / "zookeeper.yaml").read_text())
    service = next(obj for obj in zookeeper if obj["kind"] == "Service")
    port = service["spec"]["ports"][0]["port"]
    env = {e["name"]: e.get("value") for e in rendered.env}
    assert env["CLOUDJOB_ZOOKEEPER__HOSTS"] == f"{service['metadata']['name']}.cloudjob.svc:{port}"


def test_the_console_is_served_and_limited_as_the_values_say(chart: helm_python.Chart) -> None:
    default = render(chart, values_file("default"))
    names = {e["name"] for e in default.env}
    assert not names & {"CLOUDJOB_CONSOLE__ENABLED", "CLOUDJOB_CONSOLE__NAMESPACES"}
    assert "port-forward deployment/" in default.notes and "/console/" in default.notes

    full = render(chart, values_file("full"))
    env = {e["name"]: e.get("value") for e in full.env}
    assert env["CLOUDJOB_CONSOLE__NAMESPACES"] == "team-a"
    assert "/console/, showing team-a" in full.notes

    off = render(chart, merged(values_file("default"), {"console": {"enabled": False}}))
    env = {e["name"]: e.get("value") for e in off.env}
    assert env["CLOUDJOB_CONSOLE__ENABLED"] == "false"
    assert "The web console is off" in off.notes
