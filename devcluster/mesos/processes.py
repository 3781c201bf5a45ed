"""Real child processes for emulated containers (command tasks and executors).

Each child leads a container: it runs in its own session (so pymesos's
executor `killpg(0, ...)` hits only its own group) with the sandbox as working
directory and `stdout` / `stderr` files there, as the Mesos agent does.
Signals go to the whole container (`devcluster.mesos.containers`), and when
the leader exits the rest of its container is killed before the leader is
reaped, as a Mesos agent destroys a container whose executor terminated (the
unreaped leader keeps its pid, the container's session id, from being reused).
Exits are observed through a pidfd registered with the event loop, so
thousands of children cost no threads.

Starting a child blocks its caller until the child has exec'd (milliseconds on a
busy host), so the `Spawner` starts them on threads of its own: the agents share
one event loop with the master, and a burst of launches (a cron fire of hundreds
of tasks) must not hold up the master's answers, status updates and other
agents' work, as separate Mesos agents launching their containers concurrently
would not. Used by the agents.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from devcluster.mesos.containers import ContainerReaper

# Threads starting children at once, for all agents: enough that a fire's launches
# overlap their waits for exec, few enough not to crowd a small host.
SPAWN_THREADS = 8


# Pauses before starting a child again when its executable was busy. Another thread's
# child holds, between its fork and its exec, a copy of every descriptor this process
# had open, among them a sandbox file a fetch was still writing; exec of that file fails
# with ETXTBSY until that child has exec'd, which takes microseconds to milliseconds.
TEXT_BUSY_PAUSES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)


def start_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    executable: str | None,
    busy_pauses: Iterable[float] = TEXT_BUSY_PAUSES,
) -> subprocess.Popen[bytes]:
    """Start a container's leader in a session of its own, output to the sandbox's
    `stdout` / `stderr` (blocks until the child has exec'd). An executable busy
    (ETXTBSY) is tried again after each of `busy_pauses`."""
    pauses = iter(busy_pauses)
    while True:
        try:
            with open(cwd / "stdout", "ab") as out, open(cwd / "stderr", "ab") as err:
                return subprocess.Popen(
                    list(argv),
                    executable=executable,
                    cwd=str(cwd),
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                    close_fds=True,
                )
        except OSError as error:
            pause = next(pauses, None) if error.errno == errno.ETXTBSY else None
            if pause is None:
                raise
            time.sleep(pause)


class Spawner:
    """Starts children off the event loop, once `starts` is set; `close` when the
    agents are gone."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, reaper: ContainerReaper, starts: threading.Event
    ) -> None:
        self._loop = loop
        self._reaper = reaper
        self._starts = starts
        self._threads = ThreadPoolExecutor(SPAWN_THREADS, thread_name_prefix="spawn")

    async def spawn(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: dict[str, str],
        executable: str | None,
        on_exit: Callable[[int], None],
    ) -> Child:
        """A started child (OSError when it could not be started)."""
        popen = await self._loop.run_in_executor(
            self._threads, partial(self._start, argv, cwd=cwd, env=env, executable=executable)
        )
        return Child(self._loop, popen, on_exit=on_exit, reaper=self._reaper)

    def _start(
        self, argv: Sequence[str], *, cwd: Path, env: dict[str, str], executable: str | None
    ) -> subprocess.Popen[bytes]:
        self._starts.wait()
        return start_process(argv, cwd=cwd, env=env, executable=executable)

    def close(self) -> None:
        self._starts.set()
        self._threads.shutdown(wait=True)


class Child:
    """A running child process; `on_exit(returncode)` fires once it is reaped."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        popen: subprocess.Popen[bytes],
        *,
        on_exit: Callable[[int], None],
        reaper: ContainerReaper,
    ) -> None:
        self._loop = loop
        self._reaper = reaper
        self._on_exit = on_exit
        self.returncode: int | None = None
        self.exited: asyncio.Future[int] = loop.create_future()
        self._popen = popen
        self.pid = popen.pid
        self._pidfd = os.pidfd_open(self.pid)
        loop.add_reader(self._pidfd, self._reap)

    def _reap(self) -> None:
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._reaper.signal(self.pid, signal.SIGKILL, then=self._collect)

    def _collect(self) -> None:
        code = self._popen.poll()
        if code is None:  # the pidfd said it exited; wait(2) cannot block for long
            code = self._popen.wait()
        self.returncode = code
        self.exited.set_result(code)
        self._on_exit(code)

    @property
    def running(self) -> bool:
        return self.returncode is None

    def signal_container(self, signum: int) -> None:
        if self.returncode is None:
            self._reaper.signal(self.pid, signum)

    def kill(self) -> None:
        """Destroy the container: SIGKILL every process of it."""
        self.signal_container(signal.SIGKILL)

    def terminate(self, grace: float) -> None:
        """SIGTERM the container, SIGKILL it if it outlives `grace` seconds."""
        self.signal_container(signal.SIGTERM)
        self._loop.call_later(grace, self.kill)


def describe_exit(returncode: int) -> str:
    """The wording of Mesos's command executor for an exit status."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        description = {
            "SIGTERM": "Terminated",
            "SIGKILL": "Killed",
            "SIGINT": "Interrupt",
            "SIGSEGV": "Segmentation fault",
        }.get(name, name)
        return f"Command terminated with signal {description}"
    return f"Command exited with status {returncode}"


def wait_status(returncode: int) -> int:
    """Popen's return code as the raw wait(2) status Mesos reports in FAILURE events."""
    if returncode < 0:
        return -returncode
    return returncode << 8
