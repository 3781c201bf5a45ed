"""The executor's settings from its environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.executor.environment import SettingError, parse_duration, read_environment

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5secs", 5.0), ("500ms", 0.5), ("1.5mins", 90.0), ("2hrs", 7200.0), ("10ns", 1e-8)],
)
def test_mesos_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "X") == pytest.approx(seconds)


def test_defaults(tmp_path: Path) -> None:
    environment = read_environment({}, tmp_path)
    assert environment.sandbox == tmp_path
    assert environment.app_root == tmp_path
    assert environment.tasks_dir == tmp_path / "tasks"
    assert environment.grace_seconds == 5.0
    assert environment.recovery_seconds == 900.0
    assert environment.workers == 16
    assert environment.log_level == "INFO"
    assert environment.idle_seconds == 60.0
    assert not environment.checkpoint


def test_values_from_the_agent_and_the_bootstrap_script(tmp_path: Path) -> None:
    environment = read_environment(
        {
            "MESOS_SANDBOX": "/sandbox",
            "CLOUDJOB_APP_ROOT": "/sandbox/app",
            "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "3secs",
            "MESOS_RECOVERY_TIMEOUT": "1mins",
            "CLOUDJOB_EXECUTOR_WORKERS": "2",
            "CLOUDJOB_EXECUTOR_LOG_LEVEL": "debug",
            "MESOS_CHECKPOINT": "1",
            "CLOUDJOB_EXECUTOR_IDLE_TIMEOUT": "90secs",
        },
        tmp_path,
    )
    assert environment.sandbox == Path("/sandbox")
    assert environment.app_root == Path("/sandbox/app")
    assert environment.grace_seconds == 3.0
    assert environment.recovery_seconds == 60.0
    assert environment.workers == 2
    assert environment.log_level == "DEBUG"
    assert environment.idle_seconds == 90.0
    assert environment.checkpoint


def test_checkpoint_zero_is_off(tmp_path: Path) -> None:
    # Mesos sets "0" for frameworks without checkpointing; pymesos would read it as on.
    assert not read_environment({"MESOS_CHECKPOINT": "0"}, tmp_path).checkpoint


@pytest.mark.parametrize(
    ("environ", "fragment"),
    [
        ({"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "5"}, "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD='5'"),
        ({"MESOS_RECOVERY_TIMEOUT": "soon"}, "MESOS_RECOVERY_TIMEOUT='soon'"),
        ({"CLOUDJOB_EXECUTOR_WORKERS": "0"}, "positive integer"),
        ({"CLOUDJOB_EXECUTOR_WORKERS": "many"}, "positive integer"),
        ({"CLOUDJOB_EXECUTOR_LOG_LEVEL": "loud"}, "must be one of"),
        ({"CLOUDJOB_EXECUTOR_IDLE_TIMEOUT": "60"}, "CLOUDJOB_EXECUTOR_IDLE_TIMEOUT='60'"),
    ],
)
def test_bad_values_are_named(environ: dict[str, str], fragment: str, tmp_path: Path) -> None:
    with pytest.raises(SettingError, match=fragment):
        read_environment(environ, tmp_path)
