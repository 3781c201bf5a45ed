"""One lane of calls to the master: a keep-alive HTTP connection used by one thread.

A scheduler call is a POST to the master's `/api/v1/scheduler` carrying the
subscription's `Mesos-Stream-Id`; it may go over any connection, not only the one the
SUBSCRIBE stream runs on. Each call waits for the master's answer (202), so calls on
one connection go one at a time. `driver.MesosDriver` keeps three groups of lanes
(`Lanes`), each lane used by one thread at a time: one lane for the calls whose order
matters (DECLINE, REVIVE, SUPPRESS, KILL, RECONCILE, MESSAGE, SHUTDOWN); a few for
ACCEPTs, so that a launch cycle's ACCEPTs to different agents go out side by side; and
a few for acknowledgements, which come two or three per task and would otherwise
queue ahead of the next ACCEPT (docs/framework.md, "Calls to the master").
"""

from __future__ import annotations

import asyncio
import json
import queue
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from typing import Any

SCHEDULER_PATH = "/api/v1/scheduler"


class CallRefused(RuntimeError):
    """The master answered a call with a status other than 2xx."""


class CallLane:
    """Not thread-safe: one thread sends on a lane."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._conn: HTTPConnection | None = None
        self._master: str | None = None

    def send(
        self, master: str, stream_id: str, authorization: str | None, call: dict[str, Any]
    ) -> None:
        """POST `call` to `master` ("host:port"); raises OSError, an `http.client`
        error or `CallRefused`. The connection is dropped after any failure."""
        conn = self._connection(master)
        headers = {"Content-Type": "application/json", "Mesos-Stream-Id": stream_id}
        if authorization:
            headers["Authorization"] = authorization
        try:
            conn.request("POST", SCHEDULER_PATH, body=json.dumps(call).encode(), headers=headers)
            response = conn.getresponse()
            body = response.read()
        except Exception:
            self.close()
            raise
        if not 200 <= response.status < 300:
            self.close()
            raise CallRefused(f"{response.status} {response.reason}: {body[:300]!r}")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._master = None

    def _connection(self, master: str) -> HTTPConnection:
        if self._conn is None or self._master != master:
            self.close()
            host, _, port = master.rpartition(":")
            self._conn = HTTPConnection(host, int(port), timeout=self._timeout)
            self._master = master
        return self._conn


class Lanes:
    """`count` lanes, each used by one thread of the group's pool at a time: calls sent
    through a group of one go out in the order they were made, through a larger group
    side by side."""

    def __init__(self, count: int, timeout: float, name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix=name)
        self._free: queue.SimpleQueue[CallLane] = queue.SimpleQueue()
        for _ in range(count):
            self._free.put(CallLane(timeout))

    async def run(self, send: Callable[[CallLane], None]) -> None:
        """Run `send` with a free lane, on one of the group's threads."""
        await asyncio.get_running_loop().run_in_executor(self._pool, self._with_lane, send)

    def _with_lane(self, send: Callable[[CallLane], None]) -> None:
        lane = self._free.get()
        try:
            send(lane)
        finally:
            self._free.put(lane)

    def close(self) -> None:
        """Wait for the calls under way, drop the ones not started, close the lanes."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        while not self._free.empty():
            self._free.get().close()
