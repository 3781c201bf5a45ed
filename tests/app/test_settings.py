"""The one settings object: environment and flags, nested groups, checks naming the setting."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from controller.__main__ import main
from controller.settings import Settings

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CLOUDJOB_MESOS__MASTER", "CLOUDJOB_MESOS_MASTER", "KUBECONFIG"):
        monkeypatch.delenv(name, raising=False)


def test_environment_fills_every_group_and_flags_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDJOB_MESOS__MASTER", "127.0.0.1:5050")
    monkeypatch.setenv("CLOUDJOB_MESOS__OFFER_HOLD_SECONDS", "3")
    monkeypatch.setenv("CLOUDJOB_ZOOKEEPER__HOSTS", "zk-0:2181")
    monkeypatch.setenv("CLOUDJOB_KUBERNETES__NAMESPACES", "team-a, team-b")
    monkeypatch.setenv("CLOUDJOB_STATUS__REFRESH_INTERVAL", "4")
    settings = Settings.from_cli(["--zookeeper.hosts", "zk-9:2181", "--http.health-port", "0"])
    assert settings.mesos.master == "127.0.0.1:5050"
    assert settings.mesos.offer_hold_seconds == 3.0
    assert settings.zookeeper.hosts == "zk-9:2181"
    assert settings.kubernetes.namespaces == ["team-a", "team-b"]
    assert settings.status.refresh_interval == 4.0
    assert settings.http.health_port == 0


def test_the_console_shows_its_own_namespaces_else_the_watched_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLOUDJOB_MESOS__MASTER", "127.0.0.1:5050")
    assert Settings.from_cli([]).shown_namespaces() == []
    assert Settings.from_cli([]).console.enabled
    monkeypatch.setenv("CLOUDJOB_KUBERNETES__NAMESPACES", "team-a,team-b")
    assert Settings.from_cli([]).shown_namespaces() == ["team-a", "team-b"]
    monkeypatch.setenv("CLOUDJOB_CONSOLE__NAMESPACES", "team-b")
    monkeypatch.setenv("CLOUDJOB_CONSOLE__ENABLED", "false")
    settings = Settings.from_cli([])
    assert (settings.shown_namespaces(), settings.console.enabled) == (["team-b"], False)
    assert Settings.from_cli(["--console.enabled"]).console.enabled


def test_the_mesos_master_is_required() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings.from_cli([])
    assert caught.value.errors()[0]["loc"] == ("mesos",)


@pytest.mark.parametrize(
    ("flags", "field"),
    [
        (["--zookeeper.digest", "no-colon"], "zookeeper.digest"),
        (["--zookeeper.namespace", "/rooted"], "zookeeper.namespace"),
        (["--kubernetes.namespaces", "Team_A"], "kubernetes.namespaces"),
        (["--console.namespaces", "team-a,Team_B"], "console.namespaces"),
        (["--status.min-interval", "400"], "status"),
    ],
)
def test_bad_values_are_refused_naming_the_setting(flags: list[str], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings.from_cli(["--mesos.master", "127.0.0.1:5050", *flags])
    locations = {".".join(str(p) for p in error["loc"]) for error in caught.value.errors()}
    assert field in locations


def test_run_explains_bad_settings_with_the_flag_and_the_variable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", "--zookeeper.session-timeout", "-1"]) == 2
    err = capsys.readouterr().err
    assert (
        "mesos.master: Field required (flag --mesos.master, variable CLOUDJOB_MESOS__MASTER)" in err
    )
    assert "zookeeper.session_timeout" in err
    assert "CLOUDJOB_ZOOKEEPER__SESSION_TIMEOUT" in err


def test_an_unknown_command_prints_the_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    assert "usage: python -m controller COMMAND" in capsys.readouterr().err
