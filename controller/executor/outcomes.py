"""How a finished job process is told to the framework: success, or failure and why.

Pure. The task supervisor turns a run's exit status, the exception text the job
host recorded (Python and dataflow jobs) and the tail of what the run wrote to
stderr into the message of TASK_FINISHED / TASK_FAILED (transient) or the
`RunReport` of a daemon run.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

MAX_DETAIL = 1000
STDERR_TAIL = 300


@dataclass(frozen=True)
class RunOutcome:
    succeeded: bool
    detail: str


def outcome_of(returncode: int, error_text: str | None, stderr_tail: str) -> RunOutcome:
    if returncode == 0:
        return RunOutcome(succeeded=True, detail="exit status 0")
    if error_text:
        detail = error_text
    elif returncode < 0:
        detail = f"terminated by signal {_signal_name(-returncode)}"
    else:
        detail = f"exit status {returncode}"
    tail = " ".join(stderr_tail.split())[-STDERR_TAIL:]
    if tail and not error_text:
        detail = f"{detail}; stderr: {tail}"
    return RunOutcome(succeeded=False, detail=_clip(detail))


def start_failure(program: str, error: OSError) -> RunOutcome:
    return RunOutcome(
        succeeded=False,
        detail=_clip(f"cannot start {program!r}: {error.strerror or error}"),
    )


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"
