"""Job processes: output files, exit status, and kill by cancellation (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from controller.executor.processes import ProcessSpec, run_process
from tests.waiting import async_wait_for

pytestmark = pytest.mark.integration


def spec(tmp_path: Path, *argv: str, stdin: bytes | None = None) -> ProcessSpec:
    return ProcessSpec(
        argv=argv,
        env=dict(os.environ),
        cwd=tmp_path,
        stdout=tmp_path / "stdout",
        stderr=tmp_path / "stderr",
        stdin=stdin,
    )


async def test_output_is_appended_and_the_status_returned(tmp_path: Path) -> None:
    script = "echo out; echo err-$1 >&2; exit 3"
    first = await run_process(spec(tmp_path, "/bin/sh", "-c", script, "sh", "one"), lambda: 1.0)
    second = await run_process(spec(tmp_path, "/bin/sh", "-c", script, "sh", "two"), lambda: 1.0)
    assert (first.returncode, second.returncode) == (3, 3)
    assert first.stderr_tail == "err-one\n"
    assert second.stderr_tail == "err-two\n"
    assert (tmp_path / "stdout").read_text() == "out\nout\n"


async def test_stdin_is_delivered(tmp_path: Path) -> None:
    result = await run_process(spec(tmp_path, "/usr/bin/head", "-n1", stdin=b"hello\n"), lambda: 1)
    assert result.returncode == 0
    assert (tmp_path / "stdout").read_text() == "hello\n"


async def test_a_missing_program_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await run_process(spec(tmp_path, "bin/nope.sh"), lambda: 1.0)


def has_text(path: Path) -> bool:
    return path.exists() and bool(path.read_text().strip())


async def wait_for_file(path: Path) -> None:
    await async_wait_for(lambda: has_text(path), what=f"{path} to appear", interval=0.01)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_cancelling_terminates_the_whole_group(tmp_path: Path) -> None:
    # The job starts a grandchild; both must be gone once the cancellation is through.
    script = f"sleep 60 & echo $! > {tmp_path}/child; wait"
    run = asyncio.create_task(run_process(spec(tmp_path, "/bin/sh", "-c", script), lambda: 5.0))
    await wait_for_file(tmp_path / "child")
    child = int((tmp_path / "child").read_text())
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    await async_wait_for(lambda: not alive(child), what="the grandchild to end", interval=0.01)


async def test_a_job_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    code = (
        "import signal, time, pathlib;"
        "signal.signal(signal.SIGTERM, lambda *a: pathlib.Path('got-term').write_text('yes'));"
        "pathlib.Path('ready').write_text('1');"
        "time.sleep(60)"
    )
    process_spec = spec(tmp_path, sys.executable, "-c", code)
    run = asyncio.create_task(run_process(process_spec, lambda: 0.5))
    await wait_for_file(tmp_path / "ready")
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert (tmp_path / "got-term").read_text() == "yes"


async def test_a_repeated_cancellation_still_waits_for_the_process(tmp_path: Path) -> None:
    script = f"trap '' TERM; echo $$ > {tmp_path}/pid; exec sleep 60"
    run = asyncio.create_task(run_process(spec(tmp_path, "/bin/sh", "-c", script), lambda: 0.5))
    await wait_for_file(tmp_path / "pid")
    pid = int((tmp_path / "pid").read_text())
    run.cancel()
    for _ in range(3):  # let the first cancellation reach the SIGTERM
        await asyncio.sleep(0)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert not alive(pid)


def running(pid: int) -> bool:
    """Whether `pid` runs; a zombie waiting for its reaper has ended."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def wait_ended(pid: int) -> None:
    await async_wait_for(lambda: not running(pid), what=f"process {pid} to end", interval=0.01)


async def test_what_a_finished_run_left_running_is_killed(tmp_path: Path) -> None:
    script = f"(trap '' TERM; exec sleep 60) & echo $! > {tmp_path}/child"
    result = await run_process(spec(tmp_path, "/bin/sh", "-c", script), lambda: 1.0)
    assert result.returncode == 0
    await wait_ended(int((tmp_path / "child").read_text()))


async def test_a_killed_runs_member_that_ignores_sigterm_is_killed_too(tmp_path: Path) -> None:
    # The leader ends on SIGTERM at once; its child ignores it.
    script = f"(trap '' TERM; exec sleep 60) & echo $! > {tmp_path}/child; wait"
    run = asyncio.create_task(run_process(spec(tmp_path, "/bin/sh", "-c", script), lambda: 5.0))
    await wait_for_file(tmp_path / "child")
    child = int((tmp_path / "child").read_text())
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    await wait_ended(child)
