"""Run one job process to its end; cancelling the run kills the process.

Each run is a process in a process group of its own, with stdout and stderr
appended to the task's files. A run is its process group: when it ends, whatever
the job left running in the group is killed, so a finished run leaves nothing
behind and two runs of a daemon task never overlap. Cancelling `run_process`
sends SIGTERM to the group, waits the grace period, then sends SIGKILL, and only
then lets the cancellation through — a killed task is reported only once its job
is gone, however often it is cancelled meanwhile (a repeated KILL, then a STOP).
`finish_despite_cancellation` gives the same guarantee to callers that wait for
a cancelled run. Used by the task supervisor, on its asyncio loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)
TAIL_BYTES = 2000


@dataclass(frozen=True)
class ProcessSpec:
    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: Path
    stdout: Path
    stderr: Path
    stdin: bytes | None = None
    """Written to the process's stdin, which then stays open until the process ends."""


@dataclass(frozen=True)
class ProcessResult:
    returncode: int
    stderr_tail: str
    """The end of what this run wrote to stderr."""


async def run_process(spec: ProcessSpec, grace: Callable[[], float]) -> ProcessResult:
    """Raises OSError when the program cannot be started."""
    stderr_start = spec.stderr.stat().st_size if spec.stderr.exists() else 0
    with spec.stdout.open("ab") as out, spec.stderr.open("ab") as err:
        process = await asyncio.create_subprocess_exec(
            *spec.argv,
            stdin=asyncio.subprocess.PIPE if spec.stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=spec.cwd,
            env=dict(spec.env),
            process_group=0,
        )
    try:
        if spec.stdin is not None and process.stdin is not None:
            process.stdin.write(spec.stdin)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                await process.stdin.drain()
        returncode = await process.wait()
    except asyncio.CancelledError:
        await finish_despite_cancellation(asyncio.ensure_future(_terminate(process, grace())))
        _end_group(process.pid)
        raise
    _end_group(process.pid)
    return ProcessResult(returncode=returncode, stderr_tail=_tail(spec.stderr, stderr_start))


async def finish_despite_cancellation(work: asyncio.Future[Any]) -> None:
    """Wait until `work` is done; cancellations of the waiter meanwhile are absorbed
    (the caller is being cancelled already and re-raises once `work` is over)."""
    while not work.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait({work})


async def _terminate(process: asyncio.subprocess.Process, grace: float) -> None:
    _signal_group(process.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), grace)
    except TimeoutError:
        logger.warning(
            "job process %d outlived its %.1f s grace period; sending SIGKILL", process.pid, grace
        )
        _signal_group(process.pid, signal.SIGKILL)
        await process.wait()


def _end_group(pgid: int) -> None:
    # Safe although the leader is reaped: pids are handed out in sequence, so the
    # group's id cannot name another group until pid_max more processes started.
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
    logger.info("job process group %d had processes left; killed them", pgid)


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _tail(path: Path, start: int) -> str:
    try:
        with path.open("rb") as stream:
            end = stream.seek(0, os.SEEK_END)
            stream.seek(max(start, end - TAIL_BYTES))
            return stream.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
