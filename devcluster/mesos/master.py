"""The emulated Mesos master: the v1 scheduler API, offers, tasks and agent health.

Serves `POST /api/v1/scheduler` (docs/scheduler-http-api.md), `GET /state`,
`/master/state`, `/version` and `/health`. Behaviour follows the master in
apache/mesos (src/master/master.cpp, http.cpp, validation.cpp) as summarised
in docs/mesos-emulator.md: framework failover and failover timeouts, offers
with refuse filters, launch validation, status update forwarding and
acknowledgement, reconciliation, agent ping timeouts (unreachable), operator
"mark gone", and re-registration after a partition or a master failover.
The master keeps no durable state except the agent registry, which LocalMesos
hands to the next master on restart, as Mesos' replicated log would.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import struct
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from devcluster.mesos import state as state_json
from devcluster.mesos import wire
from devcluster.mesos.config import AgentSpec, EmulatorConfig
from devcluster.mesos.faults import DROP_AT_AGENT, DROP_AT_MASTER, Faults
from devcluster.mesos.protocol import (
    JSON,
    MESOS_VERSION,
    REASON_AGENT_DISCONNECTED,
    REASON_AGENT_REMOVED,
    REASON_AGENT_REMOVED_BY_OPERATOR,
    REASON_AGENT_REREGISTERED,
    REASON_FRAMEWORK_REMOVED,
    REASON_INVALID_OFFERS,
    REASON_TASK_INVALID,
    SOURCE_MASTER,
    TASK_DROPPED,
    TASK_ERROR,
    TASK_GONE_BY_OPERATOR,
    TASK_KILLED,
    TASK_LOST,
    TASK_STAGING,
    TASK_UNREACHABLE,
    ident,
    is_terminal,
    make_status,
    state_for,
    value,
)
from devcluster.mesos.reconcile import ClusterView, KnownTask, reconcile
from devcluster.mesos.resources import Resources
from devcluster.mesos.streams import SHUTDOWN_TIMEOUT, EventStream
from devcluster.mesos.validation import (
    OfferRef,
    TaskContext,
    executor_with_framework,
    validate_framework_info,
    validate_offers,
    validate_scheduler_call,
    validate_task,
)

if TYPE_CHECKING:
    from devcluster.mesos.network import Network

log = logging.getLogger(__name__)

MIN_CPUS = 0.01
MIN_MEM = 32.0


@dataclass
class MasterTask:
    info: JSON
    framework_id: str
    agent_id: str
    executor_id: str | None
    resources: Resources
    state: str = TASK_STAGING
    status_update_state: str | None = None
    status_update_uuid: str | None = None
    statuses: list[JSON] = field(default_factory=list)

    @property
    def task_id(self) -> str:
        return value(self.info.get("task_id")) or ""

    def reported_state(self) -> str:
        return self.status_update_state or self.state


@dataclass
class Offer:
    offer_id: str
    framework_id: str
    agent_id: str
    resources: Resources


@dataclass
class Framework:
    framework_id: str
    info: JSON
    registered_time: float
    stream: EventStream | None = None
    active: bool = False
    recovered: bool = False
    tasks: dict[str, MasterTask] = field(default_factory=dict)
    unreachable_tasks: dict[str, MasterTask] = field(default_factory=dict)
    completed_tasks: deque[MasterTask] = field(default_factory=lambda: deque(maxlen=1000))
    executors: dict[str, dict[str, JSON]] = field(default_factory=dict)
    offers: set[str] = field(default_factory=set)
    filters: dict[str, tuple[float, Resources]] = field(default_factory=dict)
    suppressed: bool = False
    failover_timer: asyncio.TimerHandle | None = None
    heartbeat: asyncio.Task[None] | None = None
    unregistered_time: float | None = None
    held_update: JSON | None = None
    held_timer: asyncio.TimerHandle | None = None

    @property
    def connected(self) -> bool:
        return self.stream is not None and not self.stream.closed

    @property
    def capabilities(self) -> set[str]:
        return {
            str(c.get("type")) for c in self.info.get("capabilities", []) if isinstance(c, dict)
        }

    @property
    def partition_aware(self) -> bool:
        return "PARTITION_AWARE" in self.capabilities

    @property
    def role(self) -> str:
        roles = self.info.get("roles") or []
        return str(roles[0]) if roles else str(self.info.get("role", "*"))

    @property
    def failover_timeout(self) -> float:
        return float(self.info.get("failover_timeout", 0.0))


@dataclass
class AgentRecord:
    agent_id: str
    hostname: str
    port: int
    spec: AgentSpec
    registered_time: float
    connected: bool = True
    active: bool = True
    tasks: dict[str, dict[str, MasterTask]] = field(default_factory=dict)
    executors: dict[str, dict[str, JSON]] = field(default_factory=dict)
    offers: set[str] = field(default_factory=set)
    # KILLs sent to the agent, resent when it re-registers (it may have missed them).
    killed_tasks: set[tuple[str, str]] = field(default_factory=set)
    missed_pings: int = 0
    pong: bool = True
    reregistered_time: float | None = None

    @property
    def total(self) -> Resources:
        return self.spec.resources()

    def used(self) -> Resources:
        used = Resources()
        for tasks in self.tasks.values():
            for task in tasks.values():
                if not is_terminal(task.state):
                    used = used + task.resources
        for executors in self.executors.values():
            for info in executors.values():
                used = used + Resources.parse(info.get("resources"))
        return used


@dataclass
class Registry:
    """What a Mesos master keeps durably about agents (survives master failover)."""

    agents: dict[str, JSON] = field(default_factory=dict)
    unreachable: dict[str, float] = field(default_factory=dict)
    gone: dict[str, float] = field(default_factory=dict)


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
        self.faults = faults
        self.registry = registry
        self.port = port
        self.master_id = str(uuid.uuid4())
        self.start_time = time.time()
        self.running = False
        self.frameworks: dict[str, Framework] = {}
        self.completed_frameworks: dict[str, Framework] = {}
        self.agents: dict[str, AgentRecord] = {}
        self.recovered: dict[str, asyncio.TimerHandle] = {}
        self.offers: dict[str, Offer] = {}
        self._framework_ids = itertools.count()
        self._offer_ids = itertools.count()
        self._loop = asyncio.get_running_loop()
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._allocation_pending = False

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
        for agent_id in self.registry.agents:
            if agent_id in self.registry.unreachable or agent_id in self.registry.gone:
                continue
            self.recovered[agent_id] = self._loop.call_later(
                self.config.agent_reregister_timeout, self._recovery_timed_out, agent_id
            )
        self._tasks.append(self._loop.create_task(self._allocation_loop()))
        self._tasks.append(self._loop.create_task(self._ping_loop()))

    async def stop(self) -> None:
        """Crash: drop every stream and forget all in-memory state."""
        self.running = False
        if self.network.master is self:
            self.network.master = None
        for task in self._tasks:
            task.cancel()
        for timer in self.recovered.values():
            timer.cancel()
        for framework in self.frameworks.values():
            if framework.failover_timer is not None:
                framework.failover_timer.cancel()
            if framework.heartbeat is not None:
                framework.heartbeat.cancel()
            if framework.held_timer is not None:
                framework.held_timer.cancel()
            if framework.stream is not None:
                framework.stream.abort()
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
                return await self._serve_subscription(
                    request, subscribe["framework_info"], bool(subscribe.get("suppressed_roles"))
                )
            framework = self.frameworks.get(value(call["framework_id"]) or "")
            if framework is None:
                raise wire.HttpError(400, "Framework cannot be found")
            if not framework.connected:
                raise wire.HttpError(403, "Framework is not subscribed")
            stream_id = request.headers.get("Mesos-Stream-Id")
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

    def _call_handlers(self) -> dict[str, Callable[[Framework, JSON], None]]:
        return {
            "TEARDOWN": lambda fw, call: self.remove_framework(fw),
            "ACCEPT": self._accept,
            "DECLINE": self._decline,
            "REVIVE": self._revive,
            "SUPPRESS": self._suppress,
            "KILL": self._kill,
            "SHUTDOWN": self._shutdown_executor,
            "ACKNOWLEDGE": self._acknowledge,
            "RECONCILE": self._reconcile,
            "MESSAGE": self._message,
        }

    async def _serve_subscription(
        self, request: web.Request, info: JSON, suppressed: bool
    ) -> web.StreamResponse:
        stream = EventStream(with_stream_id=True, chunk_size=self.faults.stream_chunk_size)
        framework = self._subscribe(stream, info, suppressed)
        try:
            return await stream.serve(request)
        finally:
            if framework is not None:
                self._stream_closed(framework, stream)

    def _subscribe(self, stream: EventStream, info: JSON, suppressed: bool) -> Framework | None:
        def refuse(message: str) -> None:
            log.info("refusing subscription of framework '%s': %s", info.get("name"), message)
            stream.send({"type": "ERROR", "error": {"message": message}})
            stream.close()

        problem = validate_framework_info(info)
        if problem is not None:
            refuse(problem)
            return None
        framework_id = value(info.get("id"))
        if framework_id and framework_id in self.completed_frameworks:
            refuse("Framework has been removed")
            return None
        now = time.time()
        if not framework_id:
            framework_id = f"{self.master_id}-{next(self._framework_ids):04d}"
            framework = Framework(framework_id, {**info, "id": ident(framework_id)}, now)
            self.frameworks[framework_id] = framework
        else:
            framework = self.frameworks.get(framework_id) or Framework(framework_id, info, now)
            self.frameworks[framework_id] = framework
            if framework.connected:
                assert framework.stream is not None
                framework.stream.send(
                    {"type": "ERROR", "error": {"message": "Framework failed over"}}
                )
                framework.stream.close()
            framework.info = {**info, "id": ident(framework_id)}
        if framework.failover_timer is not None:
            framework.failover_timer.cancel()
            framework.failover_timer = None
        if framework.heartbeat is not None:
            framework.heartbeat.cancel()
        for offer_id in list(framework.offers):
            self._remove_offer(offer_id)
        framework.stream = stream
        framework.active = True
        # A (re-)subscription states the suppressed roles afresh (Call.Subscribe's
        # suppressed_roles): an earlier SUPPRESS does not outlive it.
        framework.suppressed = suppressed
        framework.recovered = False
        framework.unregistered_time = None
        stream.send(
            {
                "type": "SUBSCRIBED",
                "subscribed": {
                    "framework_id": ident(framework_id),
                    "heartbeat_interval_seconds": self.config.heartbeat_interval,
                    "master_info": self.master_info(),
                },
            }
        )
        framework.heartbeat = self._loop.create_task(self._heartbeats(stream))
        framework_info = framework.info
        for agent_id in self.agents:
            self.network.to_agent(agent_id, lambda a: a.update_framework(framework_info))
        self._allocate_soon()
        return framework

    async def _heartbeats(self, stream: EventStream) -> None:
        while not stream.closed:
            await asyncio.sleep(self.config.heartbeat_interval)
            stream.send({"type": "HEARTBEAT"})

    def _stream_closed(self, framework: Framework, stream: EventStream) -> None:
        if framework.stream is not stream or not self.running:
            return
        framework.stream = None
        framework.active = False
        framework.unregistered_time = time.time()
        if framework.heartbeat is not None:
            framework.heartbeat.cancel()
            framework.heartbeat = None
        if framework.framework_id not in self.frameworks:
            return
        for offer_id in list(framework.offers):
            self._remove_offer(offer_id)
        framework_id = framework.framework_id
        framework.failover_timer = self._loop.call_later(
            framework.failover_timeout, self._failover_expired, framework_id
        )

    def _failover_expired(self, framework_id: str) -> None:
        framework = self.frameworks.get(framework_id)
        if framework is not None and not framework.connected:
            log.info("framework %s did not fail over in time; removing it", framework_id)
            self.remove_framework(framework)

    def remove_framework(self, framework: Framework) -> None:
        framework_id = framework.framework_id
        message = f"Framework {framework_id} removed"
        for task in list(framework.tasks.values()):
            if not is_terminal(task.state):
                status = make_status(
                    task_id=task.task_id,
                    state=TASK_KILLED,
                    source=SOURCE_MASTER,
                    agent_id=task.agent_id,
                    reason=REASON_FRAMEWORK_REMOVED,
                    message=message,
                )
                self._record_status(task, status)
            self._remove_task(framework, task)
        for task in framework.unreachable_tasks.values():
            framework.completed_tasks.append(task)
        framework.unreachable_tasks.clear()
        for offer_id in list(framework.offers):
            self._remove_offer(offer_id)
        for agent in self.agents.values():
            agent.executors.pop(framework_id, None)
            agent.tasks.pop(framework_id, None)
            self._shutdown_framework_on(agent.agent_id, framework_id)
        framework.executors.clear()
        for timer in (framework.failover_timer, framework.held_timer):
            if timer is not None:
                timer.cancel()
        if framework.heartbeat is not None:
            framework.heartbeat.cancel()
        framework.active = False
        framework.unregistered_time = time.time()
        stream, framework.stream = framework.stream, None
        if stream is not None:
            stream.close()
        self.frameworks.pop(framework_id, None)
        self.completed_frameworks[framework_id] = framework

    def _shutdown_framework_on(self, agent_id: str, framework_id: str) -> None:
        self.network.to_agent(agent_id, lambda a: a.shutdown_framework(framework_id))

    # ------------------------------------------------------------- events out

    def _send(self, framework: Framework, event: JSON) -> None:
        if framework.connected:
            assert framework.stream is not None
            framework.stream.send(event)

    def _forward(self, framework: Framework, status: JSON) -> None:
        """Send an UPDATE event through the configured delivery faults."""
        status = dict(status)
        status["state"] = state_for(str(status["state"]), framework.partition_aware)
        event = {"type": "UPDATE", "update": {"status": status}}
        if self.faults.update_delay > 0:
            stream = framework.stream
            self._loop.call_later(
                self.faults.update_delay, self._deliver_update, framework, stream, event
            )
        else:
            self._deliver_update(framework, framework.stream, event)

    def _deliver_update(
        self, framework: Framework, stream: EventStream | None, event: JSON
    ) -> None:
        if stream is None or framework.stream is not stream or not framework.connected:
            return
        if self.faults.reorder_updates:
            if framework.held_update is None:
                framework.held_update = event
                framework.held_timer = self._loop.call_later(
                    self.faults.reorder_window, self._release_held, framework, stream
                )
                return
            self._emit_update(framework, event)
            self._release_held(framework, stream)
            return
        self._emit_update(framework, event)

    def _release_held(self, framework: Framework, stream: EventStream) -> None:
        held, framework.held_update = framework.held_update, None
        if framework.held_timer is not None:
            framework.held_timer.cancel()
            framework.held_timer = None
        if held is not None and framework.stream is stream:
            self._emit_update(framework, held)

    def _emit_update(self, framework: Framework, event: JSON) -> None:
        self._send(framework, event)
        if self.faults.duplicate_updates:
            self._send(framework, event)

    # ------------------------------------------------------------ allocation

    def _allocate_soon(self) -> None:
        if not self._allocation_pending:
            self._allocation_pending = True
            self._loop.call_soon(self._allocate)

    async def _allocation_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.offer_refresh)
            self._allocate()

    def _offered(self, agent: AgentRecord) -> Resources:
        total = Resources()
        for offer_id in agent.offers:
            total = total + self.offers[offer_id].resources
        return total

    def _allocated_cpus(self, framework: Framework) -> float:
        cpus = sum(
            t.resources.scalars.get("cpus", 0.0)
            for t in framework.tasks.values()
            if not is_terminal(t.state)
        )
        return cpus + sum(
            self.offers[o].resources.scalars.get("cpus", 0.0) for o in framework.offers
        )

    def _allocate(self) -> None:
        self._allocation_pending = False
        if not self.running:
            return
        candidates = [
            fw
            for fw in self.frameworks.values()
            if fw.connected and fw.active and not fw.suppressed
        ]
        if not candidates:
            return
        now = self._loop.time()
        batches: dict[str, list[JSON]] = {}
        shares = {fw.framework_id: self._allocated_cpus(fw) for fw in candidates}
        for agent in self.agents.values():
            if not agent.active or not agent.connected:
                continue
            available = agent.total - agent.used() - self._offered(agent)
            if (
                available.scalars.get("cpus", 0.0) < MIN_CPUS
                and available.scalars.get("mem", 0.0) < MIN_MEM
            ):
                continue
            eligible = [
                fw for fw in candidates if not self._filtered(fw, agent.agent_id, available, now)
            ]
            if not eligible:
                continue
            chosen = min(eligible, key=lambda fw: (shares[fw.framework_id], fw.framework_id))
            shares[chosen.framework_id] += available.scalars.get("cpus", 0.0)
            offer = Offer(
                f"{self.master_id}-O{next(self._offer_ids)}",
                chosen.framework_id,
                agent.agent_id,
                available,
            )
            self.offers[offer.offer_id] = offer
            chosen.offers.add(offer.offer_id)
            agent.offers.add(offer.offer_id)
            batches.setdefault(chosen.framework_id, []).append(
                self._offer_json(offer, chosen, agent)
            )
        for framework_id, offers in batches.items():
            self._send(
                self.frameworks[framework_id], {"type": "OFFERS", "offers": {"offers": offers}}
            )

    @staticmethod
    def _filtered(framework: Framework, agent_id: str, available: Resources, now: float) -> bool:
        entry = framework.filters.get(agent_id)
        if entry is None:
            return False
        expiry, refused = entry
        if expiry <= now:
            del framework.filters[agent_id]
            return False
        return refused.contains(available)

    def _offer_json(self, offer: Offer, framework: Framework, agent: AgentRecord) -> JSON:
        endpoint = {"hostname": agent.hostname, "ip": "127.0.0.1", "port": agent.port}
        return {
            "id": ident(offer.offer_id),
            "framework_id": ident(framework.framework_id),
            "agent_id": ident(agent.agent_id),
            "hostname": agent.hostname,
            "url": {"scheme": "http", "address": endpoint, "path": "/slave(1)"},
            "resources": offer.resources.to_json(allocation_role=framework.role),
            "attributes": agent.spec.attributes_json(),
            "executor_ids": [ident(e) for e in framework.executors.get(agent.agent_id, {})],
            "allocation_info": {"role": framework.role},
        }

    def _remove_offer(self, offer_id: str) -> Offer | None:
        offer = self.offers.pop(offer_id, None)
        if offer is None:
            return None
        framework = self.frameworks.get(offer.framework_id)
        if framework is not None:
            framework.offers.discard(offer_id)
        agent = self.agents.get(offer.agent_id)
        if agent is not None:
            agent.offers.discard(offer_id)
        return offer

    def rescind_offer(self, offer_id: str) -> bool:
        offer = self._remove_offer(offer_id)
        if offer is None:
            return False
        framework = self.frameworks.get(offer.framework_id)
        if framework is not None:
            self._send(framework, {"type": "RESCIND", "rescind": {"offer_id": ident(offer_id)}})
        return True

    def _refuse(
        self, framework: Framework, agent_id: str, resources: Resources, filters: JSON | None
    ) -> None:
        seconds = self.config.default_refuse_seconds
        if filters and "refuse_seconds" in filters:
            seconds = float(filters["refuse_seconds"])
        if seconds > 0 and not resources.is_empty():
            framework.filters[agent_id] = (self._loop.time() + seconds, resources)

    # ------------------------------------------------------------ calls

    def _decline(self, framework: Framework, call: JSON) -> None:
        decline = call["decline"]
        for offer_ref in decline.get("offer_ids", []):
            offer_id = value(offer_ref) or ""
            offer = self.offers.get(offer_id)
            if offer is None or offer.framework_id != framework.framework_id:
                continue
            self._remove_offer(offer_id)
            self._refuse(framework, offer.agent_id, offer.resources, decline.get("filters"))

    def _revive(self, framework: Framework, call: JSON) -> None:
        framework.filters.clear()
        framework.suppressed = False
        self._allocate_soon()

    def _suppress(self, framework: Framework, call: JSON) -> None:
        framework.suppressed = True

    def _accept(self, framework: Framework, call: JSON) -> None:
        accept = call["accept"]
        offer_ids = [value(o) or "" for o in accept.get("offer_ids", [])]
        operations = accept.get("operations", [])
        refs = {
            oid: OfferRef(oid, o.framework_id, o.agent_id)
            for oid, o in self.offers.items()
            if oid in offer_ids
        }
        problem = validate_offers(offer_ids, refs, framework.framework_id)
        if problem is not None:
            for offer_id in offer_ids:
                offer = self.offers.get(offer_id)
                if offer is not None and offer.framework_id == framework.framework_id:
                    self._remove_offer(offer_id)
            lost_state = TASK_DROPPED if framework.partition_aware else TASK_LOST
            for operation in operations:
                for task in (operation.get("launch") or {}).get("task_infos", []):
                    self._forward(
                        framework,
                        make_status(
                            task_id=value(task.get("task_id")) or "",
                            state=lost_state,
                            source=SOURCE_MASTER,
                            agent_id=value(task.get("agent_id")),
                            reason=REASON_INVALID_OFFERS,
                            message=f"Task launched with invalid offers: {problem}",
                        ),
                    )
            return
        offered = Resources()
        agent_id = ""
        for offer_id in offer_ids:
            offer = self._remove_offer(offer_id)
            assert offer is not None
            offered = offered + offer.resources
            agent_id = offer.agent_id
        agent = self.agents[agent_id]
        remaining = offered
        for operation in operations:
            kind = operation.get("type")
            if kind == "LAUNCH":
                for task in (operation.get("launch") or {}).get("task_infos", []):
                    remaining = self._launch(framework, agent, task, remaining)
            elif kind == "LAUNCH_GROUP":
                for task in ((operation.get("launch_group") or {}).get("task_group") or {}).get(
                    "tasks", []
                ):
                    self._task_error(
                        framework, task, "LAUNCH_GROUP is not supported by this emulator"
                    )
            else:
                log.warning(
                    "dropping unsupported %s operation from framework %s",
                    kind,
                    framework.framework_id,
                )
        self._refuse(framework, agent_id, remaining, accept.get("filters"))

    def _task_error(self, framework: Framework, task: JSON, message: str) -> None:
        self._forward(
            framework,
            make_status(
                task_id=value(task.get("task_id")) or "",
                state=TASK_ERROR,
                source=SOURCE_MASTER,
                agent_id=value(task.get("agent_id")),
                reason=REASON_TASK_INVALID,
                message=message,
            ),
        )

    def _launch(
        self, framework: Framework, agent: AgentRecord, task: JSON, available: Resources
    ) -> Resources:
        context = TaskContext(
            framework_id=framework.framework_id,
            agent_id=agent.agent_id,
            known_task_ids=framework.tasks.keys(),
            unreachable_task_ids=framework.unreachable_tasks.keys(),
            executors_on_agent=framework.executors.get(agent.agent_id, {}),
        )
        problem, consumed = validate_task(task, context, available)
        if problem is not None:
            self._task_error(framework, task, problem)
            return available
        where = self.faults.take_launch_drop(value(task["task_id"]) or "")
        if where == DROP_AT_MASTER:
            log.warning(
                "fault injection: launch of task %s lost before the master", value(task["task_id"])
            )
            return available - consumed
        executor_id: str | None = None
        if "executor" in task:
            executor = executor_with_framework(task["executor"], framework.framework_id)
            task = {**task, "executor": executor}
            executor_id = value(executor["executor_id"])
            assert executor_id is not None
            framework.executors.setdefault(agent.agent_id, {})[executor_id] = executor
            agent.executors.setdefault(framework.framework_id, {})[executor_id] = executor
        own = Resources.parse(task.get("resources"))
        record = MasterTask(task, framework.framework_id, agent.agent_id, executor_id, own)
        record.statuses.append({"state": TASK_STAGING, "timestamp": time.time()})
        framework.tasks[record.task_id] = record
        agent.tasks.setdefault(framework.framework_id, {})[record.task_id] = record
        if where == DROP_AT_AGENT:
            log.warning("fault injection: launch of task %s lost before the agent", record.task_id)
        else:
            framework_info = framework.info
            self.network.to_agent(agent.agent_id, lambda a: a.run_task(framework_info, task))
        return available - consumed

    def _kill(self, framework: Framework, call: JSON) -> None:
        kill = call["kill"]
        task_id = value(kill["task_id"]) or ""
        agent_id = value(kill.get("agent_id"))
        task = framework.tasks.get(task_id)
        if task is None:
            for status in reconcile(
                [(task_id, agent_id)], self._view(framework), framework.partition_aware
            ):
                self._forward(framework, status)
            return
        agent = self.agents.get(task.agent_id)
        if agent is None:
            return
        if agent_id is not None and agent_id != task.agent_id:
            log.warning(
                "not killing task %s: it runs on agent %s, not %s", task_id, task.agent_id, agent_id
            )
            return
        agent.killed_tasks.add((framework.framework_id, task_id))
        if agent.connected:
            self._kill_on(agent.agent_id, framework.framework_id, task_id, kill.get("kill_policy"))

    def _shutdown_executor(self, framework: Framework, call: JSON) -> None:
        shutdown = call["shutdown"]
        agent_id = value(shutdown["agent_id"]) or ""
        executor_id = value(shutdown["executor_id"]) or ""
        if agent_id not in self.agents:
            return
        framework_id = framework.framework_id
        self.network.to_agent(agent_id, lambda a: a.shutdown_executor(framework_id, executor_id))

    def _acknowledge(self, framework: Framework, call: JSON) -> None:
        ack = call["acknowledge"]
        agent_id = value(ack["agent_id"]) or ""
        task_id = value(ack["task_id"]) or ""
        status_uuid = str(ack["uuid"])
        agent = self.agents.get(agent_id)
        if agent is None or not agent.connected:
            return
        task = framework.tasks.get(task_id)
        if (
            task is not None
            and task.status_update_uuid == status_uuid
            and task.status_update_state is not None
            and is_terminal(task.status_update_state)
        ):
            self._remove_task(framework, task)
        framework_id = framework.framework_id
        self.network.to_agent(agent_id, lambda a: a.acknowledge(framework_id, task_id, status_uuid))

    def _view(self, framework: Framework) -> ClusterView:
        return ClusterView(
            tasks={
                tid: KnownTask(t.agent_id, t.reported_state(), t.executor_id)
                for tid, t in framework.tasks.items()
            },
            registered_agents=self.agents.keys(),
            recovering_agents=self.recovered.keys(),
            unreachable_agents=self.registry.unreachable,
            gone_agents=self.registry.gone.keys(),
        )

    def _reconcile(self, framework: Framework, call: JSON) -> None:
        requested = [
            (value(t["task_id"]) or "", value(t.get("agent_id")))
            for t in call["reconcile"].get("tasks", [])
        ]
        for status in reconcile(requested, self._view(framework), framework.partition_aware):
            self._forward(framework, status)

    def _message(self, framework: Framework, call: JSON) -> None:
        message = call["message"]
        agent_id = value(message["agent_id"]) or ""
        executor_id = value(message["executor_id"]) or ""
        data = str(message["data"])
        agent = self.agents.get(agent_id)
        if agent is None or not agent.connected:
            return
        framework_id = framework.framework_id
        self.network.to_agent(
            agent_id, lambda a: a.framework_message(framework_id, executor_id, data)
        )

    # ---------------------------------------------------------- task records

    def _record_status(self, task: MasterTask, status: JSON) -> None:
        task.state = str(status["state"])
        task.status_update_state = task.state
        task.statuses.append({"state": task.state, "timestamp": status.get("timestamp")})

    def _remove_task(self, framework: Framework, task: MasterTask) -> None:
        framework.tasks.pop(task.task_id, None)
        agent = self.agents.get(task.agent_id)
        if agent is not None:
            agent.tasks.get(framework.framework_id, {}).pop(task.task_id, None)
            agent.killed_tasks.discard((framework.framework_id, task.task_id))
        framework.completed_tasks.append(task)

    # --------------------------------------------------------- agent messages

    def register_agent(self, report: JSON) -> None:
        agent_id = str(report["agent_id"])
        if agent_id in self.registry.gone:
            self.network.to_agent(agent_id, lambda a: a.on_shutdown("Agent has been marked gone"))
            return
        existing = self.agents.get(agent_id)
        if existing is not None:
            existing.connected = True
            existing.active = True
            existing.missed_pings = 0
            existing.pong = True
            self._reconcile_known_agent(existing, report)
            self.network.to_agent(agent_id, lambda a: a.on_registered())
            self._allocate_soon()
            return
        was_unreachable = agent_id in self.registry.unreachable
        was_recovering = agent_id in self.recovered
        now = time.time()
        agent = AgentRecord(
            agent_id, str(report["hostname"]), int(report["port"]), report["spec"], now
        )
        if was_unreachable or was_recovering:
            agent.reregistered_time = now
        self.agents[agent_id] = agent
        timer = self.recovered.pop(agent_id, None)
        if timer is not None:
            timer.cancel()
        self.registry.unreachable.pop(agent_id, None)
        self.registry.agents[agent_id] = {"hostname": agent.hostname}
        for framework_info in report["frameworks"]:
            framework_id = value(framework_info.get("id")) or ""
            if framework_id in self.completed_frameworks:
                self._shutdown_framework_on(agent_id, framework_id)
            elif framework_id not in self.frameworks:
                self.frameworks[framework_id] = Framework(
                    framework_id, framework_info, now, recovered=True
                )
        for executor in report["executors"]:
            framework_id = value(executor.get("framework_id")) or ""
            framework = self.frameworks.get(framework_id)
            if framework is None:
                continue
            executor_id = value(executor["executor_id"]) or ""
            framework.executors.setdefault(agent_id, {})[executor_id] = executor
            agent.executors.setdefault(framework_id, {})[executor_id] = executor
        for reported in report["tasks"]:
            framework = self.frameworks.get(str(reported["framework_id"]))
            if framework is None:
                continue
            task = MasterTask(
                reported["info"],
                framework.framework_id,
                agent_id,
                reported["executor_id"],
                Resources.parse(reported["info"].get("resources")),
                state=str(reported["state"]),
                status_update_state=str(reported["status_update_state"]),
                statuses=list(reported["statuses"]),
            )
            framework.unreachable_tasks.pop(task.task_id, None)
            framework.tasks[task.task_id] = task
            agent.tasks.setdefault(framework.framework_id, {})[task.task_id] = task
            if not was_recovering:
                message = (
                    "Unreachable agent re-reregistered"
                    if was_unreachable
                    else "Unknown agent reregistered"
                )
                self._forward(
                    framework,
                    make_status(
                        task_id=task.task_id,
                        state=task.state,
                        source=SOURCE_MASTER,
                        agent_id=agent_id,
                        executor_id=task.executor_id,
                        reason=REASON_AGENT_REREGISTERED,
                        message=message,
                    ),
                )
        self.network.to_agent(agent_id, lambda a: a.on_registered())
        self._allocate_soon()

    def _reconcile_known_agent(self, agent: AgentRecord, report: JSON) -> None:
        """A known agent re-registered (after a disconnection or a restart);
        `Master::reconcileKnownSlave`. Tasks it did not report are reconciled
        through it (it answers TASK_DROPPED/TASK_LOST for those it does not
        know), executors it did not report are removed (their resources
        released), and KILLs it may have missed are sent again."""
        agent_id = agent.agent_id
        reported = {
            (str(t["framework_id"]), value(t["info"].get("task_id")) or ""): str(t["state"])
            for t in report["tasks"]
        }
        for framework_id, tasks in agent.tasks.items():
            framework = self.frameworks.get(framework_id)
            missing = [task_id for task_id in tasks if (framework_id, task_id) not in reported]
            if framework is not None and missing:
                self._reconcile_through_agent(agent_id, framework.info, missing)
        executors = {
            (value(e.get("framework_id")) or "", value(e.get("executor_id")) or "")
            for e in report["executors"]
        }
        for framework_id, known in agent.executors.items():
            for executor_id in [e for e in known if (framework_id, e) not in executors]:
                log.warning(
                    "executor %s of framework %s is unknown to re-registered agent %s",
                    executor_id,
                    framework_id,
                    agent_id,
                )
                del known[executor_id]
                framework = self.frameworks.get(framework_id)
                if framework is not None:
                    framework.executors.get(agent_id, {}).pop(executor_id, None)
        for framework_id, task_id in sorted(agent.killed_tasks):
            state = reported.get((framework_id, task_id))
            if state is not None and not is_terminal(state):
                self._kill_on(agent_id, framework_id, task_id, None)

    def _reconcile_through_agent(
        self, agent_id: str, framework_info: JSON, task_ids: list[str]
    ) -> None:
        self.network.to_agent(
            agent_id, lambda a: a.reconcile_unknown_tasks(framework_info, task_ids)
        )

    def _kill_on(
        self, agent_id: str, framework_id: str, task_id: str, kill_policy: JSON | None
    ) -> None:
        self.network.to_agent(agent_id, lambda a: a.kill_task(framework_id, task_id, kill_policy))

    def pong(self, agent_id: str) -> None:
        agent = self.agents.get(agent_id)
        if agent is not None:
            agent.pong = True

    def status_update(
        self, agent_id: str, framework_id: str, status: JSON, latest_state: str
    ) -> None:
        if agent_id not in self.agents:
            return
        framework = self.frameworks.get(framework_id)
        if framework is None:
            return
        task = framework.tasks.get(value(status["task_id"]) or "")
        if task is not None:
            task.state = latest_state
            task.status_update_state = str(status["state"])
            task.status_update_uuid = status.get("uuid")
            task.statuses.append({"state": status["state"], "timestamp": status.get("timestamp")})
        self._forward(framework, status)

    def executor_message(
        self, agent_id: str, framework_id: str, executor_id: str, data: str
    ) -> None:
        framework = self.frameworks.get(framework_id)
        if framework is None or agent_id not in self.agents:
            return
        self._send(
            framework,
            {
                "type": "MESSAGE",
                "message": {
                    "agent_id": ident(agent_id),
                    "executor_id": ident(executor_id),
                    "data": data,
                },
            },
        )

    def exited_executor(
        self, agent_id: str, framework_id: str, executor_id: str, status: int | None
    ) -> None:
        agent = self.agents.get(agent_id)
        if agent is not None:
            agent.executors.get(framework_id, {}).pop(executor_id, None)
        framework = self.frameworks.get(framework_id)
        if framework is None:
            return
        framework.executors.get(agent_id, {}).pop(executor_id, None)
        # pymesos reads `status` whenever `executor_id` is present.
        failure = {
            "agent_id": ident(agent_id),
            "executor_id": ident(executor_id),
            "status": status if status is not None else 1 << 8,
        }
        self._send(framework, {"type": "FAILURE", "failure": failure})

    # ----------------------------------------------------------- agent health

    async def _ping_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.agent_ping_timeout)
            for agent in list(self.agents.values()):
                if agent.pong:
                    agent.missed_pings = 0
                else:
                    agent.missed_pings += 1
                if agent.missed_pings >= self.config.max_agent_ping_timeouts:
                    self.mark_unreachable(agent.agent_id, "health check timed out")
                    continue
                agent.pong = False
                self.network.to_agent(agent.agent_id, lambda a: a.on_ping())

    def _recovery_timed_out(self, agent_id: str) -> None:
        if self.recovered.pop(agent_id, None) is None:
            return
        self.registry.unreachable[agent_id] = time.time()
        self._agent_lost(agent_id)

    def _agent_lost(self, agent_id: str) -> None:
        for framework in self.frameworks.values():
            self._send(framework, {"type": "FAILURE", "failure": {"agent_id": ident(agent_id)}})

    def agent_exited(self, agent_id: str) -> None:
        """The agent's socket closed (its process died)."""
        agent = self.agents.get(agent_id)
        if agent is None or not agent.connected:
            return
        agent.connected = False
        agent.active = False
        for offer_id in list(agent.offers):
            self.rescind_offer(offer_id)
        for framework_id in list({*agent.tasks, *agent.executors}):
            framework = self.frameworks.get(framework_id)
            if framework is None or framework.info.get("checkpoint"):
                continue
            for task in list(agent.tasks.get(framework_id, {}).values()):
                status = make_status(
                    task_id=task.task_id,
                    state=TASK_LOST,
                    source=SOURCE_MASTER,
                    agent_id=agent_id,
                    executor_id=task.executor_id,
                    reason=REASON_AGENT_DISCONNECTED,
                    message=f"Agent {agent.hostname} disconnected",
                )
                self._record_status(task, status)
                self._remove_task(framework, task)
                self._forward(framework, status)
            agent.executors.pop(framework_id, None)
            framework.executors.pop(agent_id, None)

    def mark_unreachable(self, agent_id: str, message: str) -> None:
        agent = self.agents.pop(agent_id, None)
        if agent is None:
            return
        unreachable_time = time.time()
        self.registry.unreachable[agent_id] = unreachable_time
        nanos = {"nanoseconds": int(unreachable_time * 1e9)}
        for framework_id, tasks in agent.tasks.items():
            framework = self.frameworks.get(framework_id)
            if framework is None:
                continue
            for task in list(tasks.values()):
                status = make_status(
                    task_id=task.task_id,
                    state=state_for(TASK_UNREACHABLE, framework.partition_aware),
                    source=SOURCE_MASTER,
                    agent_id=agent_id,
                    executor_id=task.executor_id,
                    reason=REASON_AGENT_REMOVED,
                    message=message,
                    extra={"unreachable_time": nanos},
                )
                self._record_status(task, status)
                framework.tasks.pop(task.task_id, None)
                framework.unreachable_tasks[task.task_id] = task
                self._forward(framework, status)
        for framework_id in agent.executors:
            framework = self.frameworks.get(framework_id)
            if framework is not None:
                framework.executors.pop(agent_id, None)
        for offer_id in list(agent.offers):
            offer = self.offers.pop(offer_id, None)
            if offer is None:
                continue
            framework = self.frameworks.get(offer.framework_id)
            if framework is not None:
                framework.offers.discard(offer_id)
                self._send(framework, {"type": "RESCIND", "rescind": {"offer_id": ident(offer_id)}})
        self._agent_lost(agent_id)

    def mark_gone(self, agent_id: str) -> None:
        message = "Agent has been marked gone"
        now = time.time()
        agent = self.agents.pop(agent_id, None)
        if agent is not None:
            for framework_id, tasks in agent.tasks.items():
                framework = self.frameworks.get(framework_id)
                if framework is None:
                    continue
                for task in list(tasks.values()):
                    self._gone_by_operator(framework, task, message)
            for framework_id in agent.executors:
                framework = self.frameworks.get(framework_id)
                if framework is not None:
                    framework.executors.pop(agent_id, None)
            for offer_id in list(agent.offers):
                self.rescind_offer(offer_id)
            self.network.to_agent(agent_id, lambda a: a.on_shutdown(message))
            self._agent_lost(agent_id)
        elif agent_id in self.registry.unreachable:
            del self.registry.unreachable[agent_id]
            for framework in self.frameworks.values():
                for task in [
                    t for t in framework.unreachable_tasks.values() if t.agent_id == agent_id
                ]:
                    framework.unreachable_tasks.pop(task.task_id)
                    self._gone_by_operator(framework, task, message)
        elif agent_id in self.recovered:
            self.recovered.pop(agent_id).cancel()
        elif agent_id not in self.registry.gone:
            raise KeyError(f"agent {agent_id} is not known to the master")
        self.registry.gone[agent_id] = now

    def _gone_by_operator(self, framework: Framework, task: MasterTask, message: str) -> None:
        if framework.partition_aware:
            state, reason = TASK_GONE_BY_OPERATOR, REASON_AGENT_REMOVED_BY_OPERATOR
        else:
            state, reason = TASK_LOST, REASON_AGENT_REMOVED
        status = make_status(
            task_id=task.task_id,
            state=state,
            source=SOURCE_MASTER,
            agent_id=task.agent_id,
            executor_id=task.executor_id,
            reason=reason,
            message=message,
        )
        self._record_status(task, status)
        self._remove_task(framework, task)
        self._forward(framework, status)
