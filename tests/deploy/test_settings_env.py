"""The CLOUDJOB_* variables the chart renders are settings the controller accepts: each names
a field of `controller.settings.Settings`, and `Settings` built from exactly that
environment carries the values given to the chart."""

from __future__ import annotations

import os
from typing import Any

import helm_python
import pytest
from pydantic import BaseModel

from controller.mesos.settings import FrameworkSettings
from controller.settings import Settings, ZooKeeperSettings
from tests.deploy.chart import Rendered, render, values_file

pytestmark = pytest.mark.unit

POD = "cj-cloudjob-controller-7c9d5b8f4-x2k8q"
# What the referenced Secrets would hold.
SECRETS = {
    ("cloudjob-zookeeper", "digest"): "controller:zk-password",
    ("cloudjob-mesos", "secret"): "mesos-secret",
}


def environment(rendered: Rendered) -> dict[str, str]:
    """The container's CLOUDJOB_* variables as the kubelet would set them."""
    env: dict[str, str] = {}
    for entry in rendered.env:
        name = entry["name"]
        if not name.startswith("CLOUDJOB_"):
            continue
        if "value" in entry:
            assert isinstance(entry["value"], str), f"{name} renders a non-string value"
            env[name] = entry["value"]
        elif "fieldRef" in entry["valueFrom"]:
            assert entry["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
            env[name] = POD
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            env[name] = SECRETS[(ref["name"], ref["key"])]
    return env


def field_of(variable: str) -> str:
    """The settings field a variable sets (`zookeeper.hosts`); fails for one that sets none
    (pydantic-settings ignores unknown top-level variables, so Settings alone would not)."""
    model: type[BaseModel] = Settings
    parts = variable.removeprefix("CLOUDJOB_").lower().split("__")
    for depth, part in enumerate(parts):
        assert part in model.model_fields, f"{variable}: no setting {'.'.join(parts[: depth + 1])}"
        annotation = model.model_fields[part].annotation
        if depth < len(parts) - 1:
            assert isinstance(annotation, type) and issubclass(annotation, BaseModel), variable
            model = annotation
    return ".".join(parts)


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in [n for n in os.environ if n.startswith("CLOUDJOB_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


@pytest.mark.parametrize("values", ["default", "full"])
def test_every_rendered_variable_names_a_setting(chart: helm_python.Chart, values: str) -> None:
    env = environment(render(chart, values_file(values)))
    fields = [field_of(name) for name in env]
    assert len(set(fields)) == len(fields), "two variables set one setting"


def test_default_values_leave_every_optional_setting_at_the_controllers_default(
    chart: helm_python.Chart, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = values_file("default")
    env = environment(render(chart, values))
    assert sorted(env) == [
        "CLOUDJOB_HTTP__HEALTH_PORT",
        "CLOUDJOB_HTTP__METRICS_PORT",
        "CLOUDJOB_IDENTITY",
        "CLOUDJOB_LOG_LEVEL",
        "CLOUDJOB_MESOS__MASTER",
        "CLOUDJOB_ZOOKEEPER__HOSTS",
    ]
    settings = settings_from(env, monkeypatch)
    expected = Settings(
        identity=POD,
        mesos=FrameworkSettings(
            master=values["mesos"]["master"],
            user=settings.mesos.user,
            hostname=settings.mesos.hostname,
        ),
        zookeeper=ZooKeeperSettings(hosts=values["zookeeper"]["hosts"]),
    )
    assert settings == expected


def test_non_default_values_reach_the_settings(
    chart: helm_python.Chart, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = values_file("full")
    settings = settings_from(environment(render(chart, values)), monkeypatch)
    assert settings.identity == POD
    assert settings.log_level == "DEBUG"
    zk = settings.zookeeper
    assert (zk.hosts, zk.namespace, zk.session_timeout) == (
        "zk-0.zk:2181,zk-1.zk:2181,zk-2.zk:2181/platform",
        "prod/elastic-job-cloud",
        15.0,
    )
    assert zk.digest is not None and zk.digest.get_secret_value() == "controller:zk-password"
    mesos = settings.mesos
    given: dict[str, Any] = values["mesos"]
    assert mesos.master == given["master"]
    assert mesos.framework_name == given["frameworkName"]
    assert (mesos.role, mesos.user, mesos.principal) == ("scheduling", "jobs", "cloudjob")
    assert mesos.webui_url == given["webuiUrl"]
    assert mesos.secret is not None and mesos.secret.get_secret_value() == "mesos-secret"
    for key, value in given["framework"].items():
        field = "".join(f"_{c.lower()}" if c.isupper() else c for c in key)
        assert getattr(mesos, field) == value, key
    assert settings.kubernetes.namespaces == ["team-a", "team-b"]
    status = settings.status
    assert (status.refresh_interval, status.min_interval) == (30.0, 2.5)
    assert (status.writes_per_second, status.write_burst) == (25.0, 40)
    assert (status.events_per_second, status.event_burst, status.event_pace) == (5.0, 10, 20.0)
    assert (settings.http.health_port, settings.http.metrics_port) == (8081, 9100)
    assert settings.console.enabled and settings.console.namespaces == ["team-a"]
    assert settings.shown_namespaces() == ["team-a"]
