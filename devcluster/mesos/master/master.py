"""The emulated Mesos master: its HTTP server, and the wiring of its parts.

Serves `POST /api/v1/scheduler` (the Mesos scheduler HTTP API), `GET /state`,
`/master/state`, `/version` and `/health`. `Master` checks a scheduler call
at the HTTP level (method, content type, JSON, call validation, framework and
stream id, as `Master::Http::scheduler` does) and routes it to the part that
handles it; agents' messages (through the `Network`) are routed the same way.
The parts, each in its own module of this package, share one `MasterBooks`:

- `subscribing.Subscriptions`: SUBSCRIBE, heartbeats, failover, TEARDOWN;
- `allocating.Allocator`: offers, DECLINE, REVIVE, SUPPRESS, rescinds;
- `accepting.OfferAcceptance`: ACCEPT and task launches;
- `relaying.Relay`: KILL, SHUTDOWN, ACKNOWLEDGE, MESSAGE, and status updates,
  executor messages and executor exits from agents;
- `reconciling.Reconciler`: RECONCILE;
- `registering.AgentRegistrar`: agent (re-)registration;
- `monitoring.AgentMonitor`: pings, disconnections, unreachable and gone agents;
- `forwarding.EventForwarder`: every event to a scheduler, through the faults.

The master keeps no durable state except the agent registry, which LocalMesos
hands to the next master on restart, as Mesos's replicated log would. Built and
driven by LocalMesos.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
import uuid
from collections.abc import Callable

from aiohttp import web

from devcluster.mesos import state as state_json
from devcluster.mesos import wire
from devcluster.mesos.config import EmulatorConfig
from devcluster.mesos.faults import Faults
from devcluster.mesos.master.accepting import OfferAcceptance
from devcluster.mesos.master.allocating import Allocator
from devcluster.mesos.master.forwarding import EventForwarder
from devcluster.mesos.master.monitoring import AgentMonitor
from devcluster.mesos.master.reconciling import Reconciler
from devcluster.mesos.master.records import (
    AgentRecord,
    Framework,
    MasterBooks,
    Offer,
    Registry,
)
from devcluster.mesos.master.registering import AgentRegistrar
from devcluster.mesos.master.relaying import Relay
from devcluster.mesos.master.subscribing import Subscriptions
from devcluster.mesos.network import Network
from devcluster.mesos.protocol import JSON, MESOS_VERSION, value
from devcluster.mesos.streams import SHUTDOWN_TIMEOUT
from devcluster.mesos.validation import validate_scheduler_call


class Master:
    def __init__(
        self,
        network: Network,
        config: EmulatorConfig,
        faults: Faults,
        registry: Registry,
        port: int,
    ) -> None:
        self.network = network
        self.config = config
        self.port = port
        self.master_id = str(uuid.uuid4())
        self.start_time = time.time()
        self.running = False
        self.books = MasterBooks(registry)
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []

        def running() -> bool:
            return self.running

        books = self.books
        events = EventForwarder(loop, faults)
        self._allocator = Allocator(books, events, config, loop, self.master_id, running)
        self._subscriptions = Subscriptions(
            books,
            events,
            self._allocator,
            network,
            config,
            faults,
            loop,
            self.master_id,
            self.master_info,
            running,
        )
        self._acceptance = OfferAcceptance(books, events, self._allocator, network, faults)
        self._reconciler = Reconciler(books, events)
        self._relay = Relay(books, events, self._reconciler, network)
        self._registrar = AgentRegistrar(books, events, self._allocator, self._relay, network)
        self._monitor = AgentMonitor(books, events, self._allocator, network, config, loop)

    # ------------------------------------------------------ what it knows

    @property
    def registry(self) -> Registry:
        return self.books.registry

    @property
    def frameworks(self) -> dict[str, Framework]:
        return self.books.frameworks

    @property
    def completed_frameworks(self) -> dict[str, Framework]:
        return self.books.completed_frameworks

    @property
    def agents(self) -> dict[str, AgentRecord]:
        return self.books.agents

    @property
    def recovered(self) -> dict[str, asyncio.TimerHandle]:
        return self.books.recovered

    @property
    def offers(self) -> dict[str, Offer]:
        return self.books.offers

    # ---------------------------------------------------------------- lifecycle

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def master_info(self) -> JSON:
        ip_as_int = struct.unpack("<I", socket.inet_aton("127.0.0.1"))[0]
        return {
            "id": self.master_id,
            "ip": ip_as_int,
            "port": self.port,
            "pid": f"master@{self.address}",
            "hostname": "127.0.0.1",
            "version": MESOS_VERSION,
            "address": {"hostname": "127.0.0.1", "ip": "127.0.0.1", "port": self.port},
        }

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/v1/scheduler", self._handle_scheduler)
        for path in ("/state", "/master/state", "/state.json", "/master/state.json"):
            app.router.add_get(path, self._handle_state)
        app.router.add_get("/version", self._handle_version)
        app.router.add_get("/health", self._handle_health)
        app.router.add_get("/master/health", self._handle_health)
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        self.port = int(server.sockets[0].getsockname()[1])
        self.running = True
        self.network.master = self
        self._monitor.expect_reregistrations()
        self._tasks.append(self._loop.create_task(self._allocator.run()))
        self._tasks.append(self._loop.create_task(self._monitor.run()))

    async def stop(self) -> None:
        """Crash: drop every stream and forget all in-memory state."""
        self.running = False
        if self.network.master is self:
            self.network.master = None
        for task in self._tasks:
            task.cancel()
        for timer in self.books.recovered.values():
            timer.cancel()
        self._subscriptions.crash()
        if self._runner is not None:
            await self._runner.shutdown()
            await self._runner.cleanup()

    # ------------------------------------------------------------ HTTP: misc

    async def _handle_version(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "version": MESOS_VERSION,
                "build_user": "devcluster",
                "build_date": "",
                "build_time": 0,
            }
        )

    async def _handle_health(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def _handle_state(self, request: web.Request) -> web.Response:
        return web.json_response(state_json.master_state(self))

    # ------------------------------------------------------- HTTP: scheduler

    async def _handle_scheduler(self, request: web.Request) -> web.StreamResponse:
        try:
            if not self.running:
                raise wire.HttpError(503, "The master is stopping")
            wire.check_method_and_type(request.method, request.headers.get("Content-Type"))
            body = await request.read()
            call = wire.parse_body(body, wire.SCHEDULER_CALL, "Call")
            problem = validate_scheduler_call(call)
            if problem is not None:
                raise wire.HttpError(400, f"Failed to validate scheduler::Call: {problem}")
            kind = call["type"]
            if kind == "SUBSCRIBE":
                wire.check_accept(request.headers.get("Accept"))
                if "Mesos-Stream-Id" in request.headers:
                    raise wire.HttpError(
                        400, "Subscribe calls should not include the 'Mesos-Stream-Id' header"
                    )
                subscribe = call["subscribe"]
                return await self._subscriptions.serve(
                    request, subscribe["framework_info"], bool(subscribe.get("suppressed_roles"))
                )
            framework = self._subscribed_framework(call, request.headers.get("Mesos-Stream-Id"))
            hostname = str(framework.info.get("hostname", ""))
            self.books.registry.calls.append(
                (time.time(), framework.framework_id, hostname, str(kind))
            )
            handler = self._call_handlers().get(kind)
            if handler is None:
                if kind == "UNKNOWN":
                    return web.Response(status=501)
                return web.Response(status=202)
            handler(framework, call)
            return web.Response(status=202)
        except wire.HttpError as error:
            headers = {"Allow": "POST"} if error.status == 405 else None
            return web.Response(status=error.status, text=error.message, headers=headers)

    def _subscribed_framework(self, call: JSON, stream_id: str | None) -> Framework:
        """The framework a non-SUBSCRIBE call comes from, if it may make calls."""
        framework = self.books.frameworks.get(value(call["framework_id"]) or "")
        if framework is None:
            raise wire.HttpError(400, "Framework cannot be found")
        if not framework.connected:
            raise wire.HttpError(403, "Framework is not subscribed")
        if stream_id is None:
            raise wire.HttpError(
                400, "All non-subscribe calls should include the 'Mesos-Stream-Id' header"
            )
        assert framework.stream is not None
        if stream_id != framework.stream.stream_id:
            raise wire.HttpError(
                400,
                f"The stream ID '{stream_id}' included in this request didn't match the stream "
                f"ID currently associated with framework ID {framework.framework_id}",
            )
        return framework

    def _call_handlers(self) -> dict[str, Callable[[Framework, JSON], None]]:
        return {
            "TEARDOWN": self._subscriptions.teardown,
            "ACCEPT": self._acceptance.accept,
            "DECLINE": self._allocator.decline,
            "REVIVE": self._allocator.revive,
            "SUPPRESS": self._allocator.suppress,
            "KILL": self._relay.kill,
            "SHUTDOWN": self._relay.shutdown_executor,
            "ACKNOWLEDGE": self._relay.acknowledge,
            "RECONCILE": self._reconciler.reconcile,
            "MESSAGE": self._relay.message,
        }

    # ------------------------------------------ messages from agents (Network)

    def register_agent(self, report: JSON) -> None:
        self._registrar.register_agent(report)

    def pong(self, agent_id: str) -> None:
        self._monitor.pong(agent_id)

    def status_update(
        self, agent_id: str, framework_id: str, status: JSON, latest_state: str
    ) -> None:
        self._relay.status_update(agent_id, framework_id, status, latest_state)

    def executor_message(
        self, agent_id: str, framework_id: str, executor_id: str, data: str
    ) -> None:
        self._relay.executor_message(agent_id, framework_id, executor_id, data)

    def exited_executor(
        self, agent_id: str, framework_id: str, executor_id: str, status: int | None
    ) -> None:
        self._relay.exited_executor(agent_id, framework_id, executor_id, status)

    # ------------------------------------------- operator and fault injection

    def agent_exited(self, agent_id: str) -> None:
        """The agent's socket closed (its process died)."""
        self._monitor.agent_exited(agent_id)

    def mark_gone(self, agent_id: str) -> None:
        self._monitor.mark_gone(agent_id)

    def rescind_offer(self, offer_id: str) -> bool:
        return self._allocator.rescind_offer(offer_id)
