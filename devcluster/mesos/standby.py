"""A standby (non-leading) master of the emulated cluster.

A Mesos master that is not the leader answers scheduler calls with
`307 Temporary Redirect` and a protocol-relative `Location:
//<leader host>:<port>/api/v1/scheduler`, or with `503 "No leader elected"`
while no leader is known (`Master::Http::redirect` in the Mesos master; the
Mesos scheduler HTTP API documentation, "Master detection"). This one follows whichever
master LocalMesos currently runs. Used by LocalMesos.add_standby_master().
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from devcluster.mesos.master import Master
from devcluster.mesos.protocol import MESOS_VERSION
from devcluster.mesos.streams import SHUTDOWN_TIMEOUT


class StandbyMaster:
    def __init__(self, leader: Callable[[], Master | None]) -> None:
        self._leader = leader
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/v1/scheduler", self._redirect_call)
        app.router.add_route("*", "/redirect", self._redirect_base)
        app.router.add_route("*", "/master/redirect", self._redirect_base)
        app.router.add_get("/version", self._version)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        self.port = int(server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _base(self) -> str | None:
        leader = self._leader()
        if leader is None or not leader.running:
            return None
        return f"//127.0.0.1:{leader.port}"

    async def _redirect_call(self, request: web.Request) -> web.Response:
        base = self._base()
        if base is None:
            return web.Response(status=503, text="No leader elected")
        return web.Response(status=307, headers={"Location": base + request.path_qs})

    async def _redirect_base(self, request: web.Request) -> web.Response:
        base = self._base()
        if base is None:
            return web.Response(status=503, text="No leader elected")
        return web.Response(status=307, headers={"Location": base})

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": MESOS_VERSION})
