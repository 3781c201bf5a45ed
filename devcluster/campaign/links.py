"""Loopback TCP links between each controller replica and what it talks to, which the
campaign's faults can cut.

Every replica reaches each ZooKeeper server and the Mesos master through a link of
its own: a TCP proxy on 127.0.0.1 that forwards bytes both ways. A link is

- `open`: bytes flow;
- `blackhole`: nothing flows either way, as in a network partition: the proxy stops
  reading, so what is sent waits in the kernel's buffers (TCP flow control), new
  connections are accepted but reach nothing, and when the link opens again the held
  bytes are delivered, as TCP retransmission delivers them after a short partition;
- `refused`: every connection through it is aborted and new ones are closed at once,
  as a firewall rejecting the peer (the client sees its connection drop, and cannot
  get back until the link opens).

`Links` runs every link of a trial on one asyncio loop in a thread of its own; the rig
(`devcluster.campaign.rig`) opens links for each replica it starts and cuts them for
the partition and session-expiry faults.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from enum import StrEnum
from typing import Any, TypeVar

T = TypeVar("T")
CHUNK = 65536


class LinkState(StrEnum):
    OPEN = "open"
    BLACKHOLE = "blackhole"
    REFUSED = "refused"


class _Link:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.state = LinkState.OPEN
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    def set(self, state: LinkState) -> None:
        self.state = state
        if state is LinkState.BLACKHOLE:
            self.flowing.clear()
            return
        self.flowing.set()
        if state is LinkState.REFUSED:
            for writer in list(self.writers):
                writer.transport.abort()

    def refused(self) -> bool:
        return self.state is LinkState.REFUSED

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refused():
            writer.transport.abort()
            return
        self.writers.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            await self.flowing.wait()
            # Refused while it waited for the link to open.
            if self.refused() or writer.transport.is_closing():
                return
            try:
                up_reader, upstream = await asyncio.open_connection(*self.upstream)
            except OSError:
                return
            self.writers.add(upstream)
            pumps = [
                asyncio.ensure_future(self._pump(reader, upstream)),
                asyncio.ensure_future(self._pump(up_reader, writer)),
            ]
            # Either side closing ends the connection through the link.
            _, pending = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for pump in pending:
                pump.cancel()
        finally:
            for end in (writer, upstream):
                if end is not None:
                    self.writers.discard(end)
                    end.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while True:
                await self.flowing.wait()
                data = await reader.read(CHUNK)
                if not data:
                    return
                # Read just before a cut: held until the link opens again.
                await self.flowing.wait()
                if self.refused():
                    return
                writer.write(data)
                await writer.drain()


class Links:
    """Every link of a trial, by name, served on one loop in a thread."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="campaign-links", daemon=True
        )
        self._links: dict[str, _Link] = {}
        self._thread.start()

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(30)

    def open(self, name: str, upstream: tuple[str, int]) -> int:
        """A new link to `upstream`; returns the loopback port that reaches it."""

        async def listen() -> int:
            link = _Link(upstream)
            link.server = await asyncio.start_server(link.serve, "127.0.0.1", 0)
            self._links[name] = link
            return int(link.server.sockets[0].getsockname()[1])

        return self._run(listen())

    def set(self, names: list[str], state: LinkState) -> None:
        async def apply() -> None:
            for name in names:
                self._links[name].set(state)

        self._run(apply())

    def state(self, name: str) -> LinkState:
        return self._links[name].state

    def close(self) -> None:
        async def shut() -> None:
            for link in self._links.values():
                link.set(LinkState.REFUSED)
                if link.server is not None:
                    link.server.close()

        self._run(shut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
