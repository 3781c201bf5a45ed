"""Container teardown: find and signal every process of an emulated container.

A Mesos agent destroys a container when its executor exits, is killed, or the
agent shuts down, and that kills every process the executor started — also
job processes in process groups or sessions of their own. The Linux launcher
does it with cgroups; the POSIX launcher (`PosixLauncher::destroy` in the
Mesos agent) kills the process tree of the
container's leader together with every process in the same process groups and
sessions (stout's `os::killtree(pid, SIGKILL, true, true)`). The emulator does
the latter: each container leader runs in a session of its own, and a
container's members are the leader, every process in its session or process
group, and, transitively, every child, group member and session member of
those. A process that leaves the container's session *and* loses its parent
escapes, as it would under Mesos's POSIX launcher.

`ProcessIndex` (and `container_members`) is the pure part. `ContainerReaper` applies signals on the
agents' event loop, batching requests into one scan of /proc. A scan costs
tens of milliseconds with a thousand tasks running, so scans are paced to
keep the loop mostly free: after a scan that took d seconds the next one
waits `SCAN_PACING` times d (a kill storm of 1,000 tasks becomes a few dozen
scans). Used by `devcluster.mesos.processes.Child`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

# A few passes catch processes forked while a container is being killed.
MAX_KILL_PASSES = 4
# Loop time between scans, as a multiple of the last scan's duration.
SCAN_PACING = 4.0


@dataclass(frozen=True)
class ProcessEntry:
    pid: int
    ppid: int
    pgrp: int
    session: int
    zombie: bool


def parse_stat(pid: int, text: bytes) -> ProcessEntry:
    """One /proc/<pid>/stat line (the command name may contain spaces and ')')."""
    fields = text.rsplit(b")", 1)[1].split()
    return ProcessEntry(
        pid=pid,
        ppid=int(fields[1]),
        pgrp=int(fields[2]),
        session=int(fields[3]),
        zombie=fields[0] in (b"Z", b"X"),
    )


def read_process_table(proc: str = "/proc") -> list[ProcessEntry]:
    table = []
    for name in os.listdir(proc):
        if not name.isdigit():
            continue
        try:
            with open(f"{proc}/{name}/stat", "rb") as stat:
                text = stat.read()
        except OSError:  # exited while we looked
            continue
        table.append(parse_stat(int(name), text))
    return table


class ProcessIndex:
    """A process table indexed by parent, process group and session."""

    def __init__(self, table: Iterable[ProcessEntry], protected_session: int) -> None:
        # Processes of `protected_session` (the agent's own) are never members.
        self.by_pid: dict[int, ProcessEntry] = {}
        self._children: dict[int, list[int]] = {}
        self._groups: dict[int, list[int]] = {}
        self._sessions: dict[int, list[int]] = {}
        for entry in table:
            if entry.session == protected_session or entry.pid <= 1:
                continue
            self.by_pid[entry.pid] = entry
            self._children.setdefault(entry.ppid, []).append(entry.pid)
            self._groups.setdefault(entry.pgrp, []).append(entry.pid)
            self._sessions.setdefault(entry.session, []).append(entry.pid)

    def members(self, leader: int) -> set[int]:
        """Pids of the container led by `leader` (which must not be reaped yet)."""
        queue = [
            leader,
            *self._children.get(leader, ()),
            *self._groups.get(leader, ()),
            *self._sessions.get(leader, ()),
        ]
        members: set[int] = set()
        seen_groups: set[int] = {leader}
        seen_sessions: set[int] = {leader}
        while queue:
            pid = queue.pop()
            member = self.by_pid.get(pid)
            if member is None or pid in members:
                continue
            members.add(pid)
            queue.extend(self._children.get(pid, ()))
            if member.pgrp not in seen_groups:
                seen_groups.add(member.pgrp)
                queue.extend(self._groups.get(member.pgrp, ()))
            if member.session not in seen_sessions:
                seen_sessions.add(member.session)
                queue.extend(self._sessions.get(member.session, ()))
        return members


def container_members(
    leader: int, table: Iterable[ProcessEntry], protected_session: int
) -> set[int]:
    return ProcessIndex(table, protected_session).members(leader)


@dataclass
class _Request:
    signum: int
    done: list[Callable[[], None]] = field(default_factory=list)


class ContainerReaper:
    """Signals whole containers; one per event loop, shared by its agents."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        read_table: Callable[[], list[ProcessEntry]] = read_process_table,
    ) -> None:
        self._loop = loop
        self._read_table = read_table
        self._requests: dict[int, _Request] = {}
        self._scheduled = False
        self._next_scan = loop.time()
        self._own_session = os.getsid(0)

    def signal(self, leader: int, signum: int, then: Callable[[], None] | None = None) -> None:
        """Send `signum` to every member of `leader`'s container on the next loop turn,
        then call `then`. SIGKILL wins over other signals asked for in the same turn."""
        request = self._requests.get(leader)
        if request is None:
            request = self._requests[leader] = _Request(signum)
        elif signum == signal.SIGKILL:
            request.signum = signum
        if then is not None:
            request.done.append(then)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_at(max(self._loop.time(), self._next_scan), self._sweep)

    def _sweep(self) -> None:
        self._scheduled = False
        requests, self._requests = self._requests, {}
        started = self._loop.time()
        try:
            self._apply(requests)
        finally:
            ended = self._loop.time()
            self._next_scan = ended + SCAN_PACING * (ended - started)
            for request in requests.values():
                for done in request.done:
                    try:
                        done()
                    except Exception:
                        log.exception("container callback failed")

    def _apply(self, requests: dict[int, _Request]) -> None:
        signalled: set[int] = set()
        killing = any(r.signum == signal.SIGKILL for r in requests.values())
        for _ in range(MAX_KILL_PASSES if killing else 1):
            index = ProcessIndex(self._read_table(), self._own_session)
            fresh = False
            for leader, request in requests.items():
                targets = {
                    pid for pid in index.members(leader) - signalled if not index.by_pid[pid].zombie
                }
                if not targets:
                    continue
                if request.signum == signal.SIGKILL:
                    # Stopped processes cannot fork while their siblings are killed.
                    _send(targets, signal.SIGSTOP)
                _send(targets, request.signum)
                signalled |= targets
                fresh = True
            if not fresh:
                return


def _send(pids: Iterable[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)
