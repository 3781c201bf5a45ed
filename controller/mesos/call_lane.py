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
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from http.client import HTTPConnection
from typing import Any, BinaryIO, Generic, Protocol, TypeVar

SCHEDULER_PATH = "/api/v1/scheduler"
T = TypeVar("T")


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


class Pipeline:
    """Many calls on one keep-alive connection without waiting between them: written
    back to back, their answers then read in order (HTTP/1.1 pipelining; the master
    answers the requests of a connection in the order they came). For calls whose
    order and individual answers do not matter: acknowledgements. Not thread-safe."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._sock: socket.socket | None = None
        self._reader: BinaryIO | None = None
        self._master: str | None = None

    def send(
        self,
        master: str,
        stream_id: str,
        authorization: str | None,
        calls: Sequence[dict[str, Any]],
    ) -> int:
        """POST every call; how many the master refused. Raises OSError or
        `CallRefused` when the connection failed part way (the calls not answered may
        or may not have been taken); the connection is then dropped."""
        head = (
            f"POST {SCHEDULER_PATH} HTTP/1.1\r\nHost: {master}\r\n"
            f"Content-Type: application/json\r\nMesos-Stream-Id: {stream_id}\r\n"
            + (f"Authorization: {authorization}\r\n" if authorization else "")
        ).encode()
        requests = []
        for call in calls:
            body = json.dumps(call).encode()
            requests.append(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        sock, reader = self._connection(master)
        refused, closing = 0, False
        try:
            sock.sendall(b"".join(requests))
            for _ in calls:
                status, closing = read_answer(reader)
                refused += not 200 <= status < 300
        except Exception:
            self.close()
            raise
        if closing:
            self.close()
        return refused

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        if self._sock is not None:
            self._sock.close()
        self._sock = self._reader = self._master = None

    def _connection(self, master: str) -> tuple[socket.socket, BinaryIO]:
        if self._sock is None or self._reader is None or self._master != master:
            self.close()
            host, _, port = master.rpartition(":")
            self._sock = socket.create_connection((host, int(port)), timeout=self._timeout)
            self._reader = self._sock.makefile("rb")
            self._master = master
        return self._sock, self._reader


def read_answer(reader: BinaryIO) -> tuple[int, bool]:
    """Read one HTTP/1.1 response with a Content-Length body: its status code, and
    whether the server closes the connection after it."""
    status_line = reader.readline(_LINE_LIMIT)
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise CallRefused(f"no HTTP answer where one was due: {status_line[:100]!r}")
    length, closing = 0, False
    while (line := reader.readline(_LINE_LIMIT)) not in (b"\r\n", b"\n", b""):
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and value != b"identity":
            raise CallRefused(f"a pipelined answer in {value.decode()} encoding")
        elif name == b"connection" and value == b"close":
            closing = True
    if len(reader.read(length)) != length:
        raise CallRefused("the connection ended part way through an answer")
    return int(parts[1]), closing


_LINE_LIMIT = 65536


class _Closable(Protocol):
    def close(self) -> None: ...


L = TypeVar("L", bound=_Closable)


class Lanes(Generic[L]):
    """`count` lanes made by `make`, each used by one thread of the group's pool at a
    time: calls sent through a group of one go out in the order they were made, through
    a larger group side by side."""

    def __init__(self, count: int, make: Callable[[], L], name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix=name)
        self._free: queue.SimpleQueue[L] = queue.SimpleQueue()
        for _ in range(count):
            self._free.put(make())

    async def run(self, send: Callable[[L], T]) -> T:
        """Run `send` with a free lane, on one of the group's threads."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._with_lane, send)

    def submit(self, send: Callable[[L], T]) -> Future[T]:
        """Run `send` with a free lane on one of the group's threads, from any thread."""
        return self._pool.submit(self._with_lane, send)

    def _with_lane(self, send: Callable[[L], T]) -> T:
        lane = self._free.get()
        try:
            return send(lane)
        finally:
            self._free.put(lane)

    def close(self) -> None:
        """Wait for the calls under way, drop the ones not started, close the lanes."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        while not self._free.empty():
            self._free.get().close()
