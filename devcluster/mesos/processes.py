"""Real child processes for emulated containers (command tasks and executors).

Each child leads a container: it runs in its own session (so pymesos's
executor `killpg(0, ...)` hits only its own group) with the sandbox as working
directory and `stdout` / `stderr` files there, as the Mesos agent does.
Signals go to the whole container (`devcluster.mesos.containers`), and when
the leader exits the rest of its container is killed before the leader is
reaped, as a Mesos agent destroys a container whose executor terminated (the
unreaped leader keeps its pid, the container's session id, from being reused).
Exits are observed through a pidfd registered with the event loop, so
thousands of children cost no threads. Used by the agents.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from devcluster.mesos.containers import ContainerReaper


class Child:
    """A running child process; `on_exit(returncode)` fires once it is reaped."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: dict[str, str],
        on_exit: Callable[[int], None],
        reaper: ContainerReaper,
        executable: str | None = None,
    ) -> None:
        self._loop = loop
        self._reaper = reaper
        self._on_exit = on_exit
        self.returncode: int | None = None
        self.exited: asyncio.Future[int] = loop.create_future()
        with open(cwd / "stdout", "ab") as out, open(cwd / "stderr", "ab") as err:
            self._popen = subprocess.Popen(
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
        self.pid = self._popen.pid
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
