"""What the executor learns from its environment, parsed and checked up front.

The Mesos agent sets `MESOS_*` variables (pymesos's driver reads the ones it
needs itself); the app's bootstrap script may set the `CLOUDJOB_*` ones. Read
once by the entry point (`controller.executor.__main__`); pure.

- `MESOS_SANDBOX` (else `MESOS_DIRECTORY`, else the working directory): the
  executor's sandbox; each task's output goes to `tasks/<task id>/` below it.
- `CLOUDJOB_APP_ROOT` (default: the sandbox): the extracted app package.
- `MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD` (a Mesos duration, default `5secs`): the
  time the agent gives the executor to shut down; also the SIGTERM→SIGKILL grace
  of a killed job whose TaskInfo has no kill policy.
- `MESOS_CHECKPOINT`: `1` when the framework checkpoints, as Mesos's executor
  library reads it (pymesos's driver counts any non-empty value, `0` too):
  with checkpointing a lost agent connection is retried, without it the
  executor shuts down at once.
- `MESOS_RECOVERY_TIMEOUT` (default `15mins`): with checkpointing, how long the
  executor waits for a restarting agent before it shuts down.
- `CLOUDJOB_EXECUTOR_IDLE_TIMEOUT` (a Mesos duration, default `60secs`; `0secs`:
  never): an executor with no task for this long exits (status 0). The framework
  sets it in every ExecutorInfo's environment from its own setting.
- `CLOUDJOB_EXECUTOR_WORKERS` (default 16): how many job processes may run at
  once; further runs wait for a slot.
- `CLOUDJOB_EXECUTOR_LOG_LEVEL` (default `INFO`): the executor's own log level.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_GRACE_SECONDS = 5.0
DEFAULT_RECOVERY_SECONDS = 15 * 60.0
DEFAULT_WORKERS = 16
DEFAULT_IDLE_SECONDS = 60.0
IDLE_TIMEOUT_VARIABLE = "CLOUDJOB_EXECUTOR_IDLE_TIMEOUT"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ns|us|ms|secs|mins|hrs|days|weeks)\s*$")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "ms": 1e-3,
    "secs": 1.0,
    "mins": 60.0,
    "hrs": 3600.0,
    "days": 86400.0,
    "weeks": 604800.0,
}
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class SettingError(ValueError):
    """An environment variable the executor cannot use."""


@dataclass(frozen=True)
class ExecutorEnvironment:
    sandbox: Path
    app_root: Path
    grace_seconds: float
    recovery_seconds: float
    workers: int
    log_level: str
    checkpoint: bool = False
    # With no task for this long the executor exits; 0: never.
    idle_seconds: float = DEFAULT_IDLE_SECONDS

    @property
    def tasks_dir(self) -> Path:
        return self.sandbox / "tasks"


def parse_duration(text: str, variable: str) -> float:
    """A Mesos duration (`5secs`, `500ms`, `1.5mins`) in seconds."""
    match = _DURATION.match(text)
    if not match:
        raise SettingError(
            f"{variable}={text!r} is not a Mesos duration; write a number with one of the "
            f"units {', '.join(_UNIT_SECONDS)} (e.g. '5secs')"
        )
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def read_environment(environ: Mapping[str, str], cwd: Path) -> ExecutorEnvironment:
    sandbox = Path(environ.get("MESOS_SANDBOX") or environ.get("MESOS_DIRECTORY") or cwd)
    app_root = Path(environ.get("CLOUDJOB_APP_ROOT") or sandbox)
    grace_text = environ.get("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD")
    grace = (
        parse_duration(grace_text, "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD")
        if grace_text
        else DEFAULT_GRACE_SECONDS
    )
    recovery_text = environ.get("MESOS_RECOVERY_TIMEOUT")
    recovery = (
        parse_duration(recovery_text, "MESOS_RECOVERY_TIMEOUT")
        if recovery_text
        else DEFAULT_RECOVERY_SECONDS
    )
    idle_text = environ.get(IDLE_TIMEOUT_VARIABLE)
    idle = parse_duration(idle_text, IDLE_TIMEOUT_VARIABLE) if idle_text else DEFAULT_IDLE_SECONDS
    workers_text = environ.get("CLOUDJOB_EXECUTOR_WORKERS", "")
    if workers_text:
        if not workers_text.isdigit() or int(workers_text) < 1:
            raise SettingError(
                f"CLOUDJOB_EXECUTOR_WORKERS={workers_text!r} must be a positive integer"
            )
        workers = int(workers_text)
    else:
        workers = DEFAULT_WORKERS
    log_level = environ.get("CLOUDJOB_EXECUTOR_LOG_LEVEL", "INFO").upper()
    if log_level not in _LOG_LEVELS:
        raise SettingError(
            f"CLOUDJOB_EXECUTOR_LOG_LEVEL={log_level!r} must be one of {', '.join(_LOG_LEVELS)}"
        )
    return ExecutorEnvironment(
        sandbox=sandbox.absolute(),
        app_root=app_root.absolute(),
        grace_seconds=grace,
        recovery_seconds=recovery,
        workers=workers,
        log_level=log_level,
        checkpoint=environ.get("MESOS_CHECKPOINT") == "1",
        idle_seconds=idle,
    )
