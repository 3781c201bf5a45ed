"""The pymesos edge: scheduler callbacks in, scheduler calls out, nothing decided here.

`MesosDriver` implements `calls.MesosConnection` over one pymesos
`MesosSchedulerDriver` at a time. Its callbacks run on pymesos's IO thread; each one
turns the event into a `DriverEvent` (a status update parsed into a `StatusUpdate`
here, once) and hands it to the asyncio loop with `call_soon_threadsafe` — it never
blocks and never lets an exception escape (an escaping exception would end pymesos's
thread and, without failover, tear the framework down). Calls to the master are
blocking HTTP requests, sent on the subscription's stream id by the driver's own
lanes (`call_lane`): ordered calls on one thread, ACCEPTs on a few side by side,
acknowledgements on one of their own. The engine builds one per leadership term
through `pymesos_factory`.

pymesos pitfalls handled here (docs/framework.md, "pymesos"): `failover_timeout` is
always set (a week by default, never pymesos's 100 s); acknowledgements are explicit
(the status pipeline acknowledges once ZooKeeper is durable); `stop` always fails over
(never TEARDOWN); RECONCILE and KILL are sent with agent ids, which pymesos's helpers
drop; no call is sent once `may_call` says this process no longer leads (ZooKeeper
SUSPENDED); no SUBSCRIBE, pymesos's own reconnections included, is sent unless
`may_subscribe` confirms the leadership with a ZooKeeper round trip first (a process
resumed after being frozen past its session still believes it leads until kazoo
notices; its SUBSCRIBE would fail the real leader's framework over to it); a missing
heartbeat is detected by the engine's watchdog, which calls
`restart` (a new driver subscribing with the same framework id).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

import aiohttp

from controller.mesos.call_lane import CallLane, Lanes, Pipeline
from controller.mesos.calls import (
    ACCEPTS_IN_FLIGHT,
    ACKNOWLEDGEMENT_PIPELINES,
    AgentAccept,
    MesosCallError,
    MesosFactory,
    NotLeading,
)
from controller.mesos.events import (
    AgentLost,
    Disconnected,
    DriverEvent,
    EventSink,
    ExecutorLost,
    Heartbeat,
    JsonObject,
    MasterError,
    MessageReceived,
    OfferRescinded,
    OffersReceived,
    StatusReceived,
    Subscribed,
    SubscriptionWithheld,
)
from controller.mesos.settings import FrameworkSettings
from controller.mesos.states import Acknowledgement, MalformedStatus, StatusUpdate

log = logging.getLogger(__name__)


def framework_executors(state: Mapping[str, Any], framework_id: str) -> list[tuple[str, str]]:
    """(executor id, agent id) of the framework's executors in a master's `GET /state`
    document (`frameworks[].executors[]` with `executor_id` and `slave_id`)."""
    found: list[tuple[str, str]] = []
    for framework in state.get("frameworks") or ():
        if not isinstance(framework, Mapping) or framework.get("id") != framework_id:
            continue
        for executor in framework.get("executors") or ():
            if isinstance(executor, Mapping) and executor.get("executor_id"):
                agent = executor.get("slave_id") or executor.get("agent_id") or ""
                found.append((str(executor["executor_id"]), str(agent)))
    return found


def _value(obj: Any) -> str:
    if isinstance(obj, Mapping):
        return str(obj.get("value", ""))
    return str(obj)


class _Callbacks:
    """pymesos's Scheduler interface, forwarding every event to the loop."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sink: EventSink,
        owner: _Driver,
        may_call: Callable[[], bool],
    ) -> None:
        self._loop = loop
        self._sink = sink
        self._owner = owner
        self._may_call = may_call

    def _post(self, event: DriverEvent) -> None:
        try:
            self._loop.call_soon_threadsafe(self._sink, event)
        except RuntimeError:
            log.debug("event loop closed; dropping %s", type(event).__name__)

    def registered(self, driver: Any, framework_id: Any, master_info: Any) -> None:
        self._subscribed(framework_id, master_info, resubscribed=False)

    def reregistered(self, driver: Any, master_info: Any) -> None:
        self._subscribed(driver.framework_id, master_info, resubscribed=True)

    def _subscribed(self, framework_id: Any, master_info: Any, *, resubscribed: bool) -> None:
        master = f"{master_info.get('hostname', '')}:{master_info.get('port', '')}"
        self._post(
            Subscribed(_value(framework_id), master, self._owner.heartbeat_interval, resubscribed)
        )

    def disconnected(self, driver: Any) -> None:
        if not self._may_call():
            # pymesos would subscribe again at once, and with our framework id that
            # fails the new leader over to this process ("Framework failed over"),
            # back and forth. A process that no longer leads never subscribes again.
            driver.halt()
        self._post(Disconnected())

    def withheld(self) -> None:
        self._post(SubscriptionWithheld())

    def resourceOffers(self, driver: Any, offers: Sequence[JsonObject]) -> None:
        self._post(OffersReceived(tuple(dict(o) for o in offers)))

    def offerRescinded(self, driver: Any, offer_id: Any) -> None:
        self._post(OfferRescinded(_value(offer_id)))

    def statusUpdate(self, driver: Any, status: JsonObject) -> None:
        try:
            update = StatusUpdate.from_mesos(status)
        except (MalformedStatus, TypeError, ValueError) as error:
            log.warning("ignoring a malformed status update (%s): %.200s", error, status)
            return
        self._post(StatusReceived(update))

    def frameworkMessage(self, driver: Any, executor_id: Any, agent_id: Any, data: Any) -> None:
        self._post(MessageReceived(_value(agent_id), _value(executor_id), str(data)))

    def slaveLost(self, driver: Any, agent_id: Any) -> None:
        self._post(AgentLost(_value(agent_id)))

    def executorLost(self, driver: Any, executor_id: Any, agent_id: Any, status: Any) -> None:
        self._post(
            ExecutorLost(_value(agent_id), _value(executor_id), int(status) if status else None)
        )

    def error(self, driver: Any, message: str) -> None:
        self._post(MasterError(str(message)))

    def processHeartBeat(self, driver: Any) -> None:
        self._post(Heartbeat())

    def __getattr__(self, name: str) -> Callable[..., None]:
        # Callbacks this framework has no use for (inverse offers, operation updates).
        def ignore(*args: Any, **kwargs: Any) -> None:
            log.debug("ignoring pymesos callback %s", name)

        return ignore


def _driver_class() -> type[Any]:
    # pymesos installs a log handler and a SIGINT handler when imported: import it only
    # when a driver is actually built, never at module import.
    from pymesos import MesosSchedulerDriver

    class Driver(MesosSchedulerDriver):  # type: ignore[misc]
        heartbeat_interval: float | None = None

        def on_subscribed(self, info: Mapping[str, Any]) -> None:
            interval = info.get("heartbeat_interval_seconds")
            self.heartbeat_interval = float(interval) if interval else None
            super().on_subscribed(info)

        may_subscribe: Callable[[], bool] = staticmethod(lambda: True)
        withheld: Callable[[], None] = staticmethod(lambda: None)

        def gen_request(self) -> bytes:
            # pymesos builds the SUBSCRIBE request for every connection it opens, its own
            # reconnections included, on its IO thread: the one place to ask first.
            if not self.may_subscribe():
                log.warning("not subscribing to Mesos: leadership not confirmed in ZooKeeper")
                # The loop sees the stop before it writes the request.
                self.halt()
                self.withheld()
            request: bytes = super().gen_request()
            return request

        def halt(self) -> None:
            """End the IO thread without reconnecting; never blocks (callback-safe).
            `stop(failover=True)` later releases the rest (the master detector)."""
            super(MesosSchedulerDriver, self).stop()

        def on_event(self, event: Mapping[str, Any]) -> None:
            try:
                super().on_event(event)
            except Exception:
                log.exception("ignoring a Mesos event pymesos could not handle: %.200s", event)

    return Driver


class _Driver:
    """The attributes `_Callbacks` reads from the live pymesos driver."""

    def __init__(self) -> None:
        self.pymesos: Any = None

    @property
    def heartbeat_interval(self) -> float | None:
        return getattr(self.pymesos, "heartbeat_interval", None)


class MesosDriver:
    """Subscribe to the master and talk to it; see the module docstring."""

    def __init__(
        self,
        settings: FrameworkSettings,
        sink: EventSink,
        loop: asyncio.AbstractEventLoop,
        *,
        may_call: Callable[[], bool] = lambda: True,
        may_subscribe: Callable[[], bool] = lambda: True,
    ) -> None:
        self._settings = settings
        self._sink = sink
        self._loop = loop
        self._may_call = may_call
        self._may_subscribe = may_subscribe
        self._holder = _Driver()
        # Two lanes, each a thread with its own connection (see `call_lane`).
        timeout = settings.mesos_call_timeout_seconds
        self._calls = Lanes(1, lambda: CallLane(timeout), "mesos-calls")
        self._accepts = Lanes(ACCEPTS_IN_FLIGHT, lambda: CallLane(timeout), "mesos-accepts")
        self._acks = Lanes(ACKNOWLEDGEMENT_PIPELINES, lambda: Pipeline(timeout), "mesos-acks")
        self._authorization = _basic_authorization(settings)
        self._lock = threading.Lock()

    # lifecycle ------------------------------------------------------------------------
    async def start(self, framework_id: str | None) -> None:
        # The first pymesos import installs a SIGINT handler, which only the main
        # thread may do: import on the loop's thread, start on a worker.
        driver_class = _driver_class()
        await asyncio.to_thread(self._start_blocking, driver_class, framework_id)

    def _start_blocking(self, driver_class: type[Any], framework_id: str | None) -> None:
        settings = self._settings
        callbacks = _Callbacks(self._loop, self._sink, self._holder, self._may_call)
        driver = driver_class(
            callbacks,
            settings.framework_info(framework_id),
            settings.master,
            use_addict=False,
            implicit_acknowledgements=False,
            principal=settings.principal,
            secret=settings.secret.get_secret_value() if settings.secret else None,
            failover=True,
            timeout=10 * 365 * 24 * 3600,
        )
        driver.may_subscribe = self._may_subscribe
        driver.withheld = callbacks.withheld
        with self._lock:
            self._holder.pymesos = driver
        driver.start()

    async def stop(self) -> None:
        """Disconnect without tearing the framework down (its tasks keep running)."""
        await asyncio.to_thread(self._stop_blocking)

    def _stop_blocking(self) -> None:
        with self._lock:
            driver, self._holder.pymesos = self._holder.pymesos, None
        if driver is not None:
            driver.stop(failover=True)
            driver.join()

    async def restart(self, framework_id: str | None) -> None:
        """Drop the connection and subscribe again with a fresh driver."""
        await self.stop()
        await self.start(framework_id)

    async def close(self) -> None:
        await self.stop()
        for lanes in (self._calls, self._accepts, self._acks):
            lanes.close()

    @property
    def connected(self) -> bool:
        driver = self._holder.pymesos
        return driver is not None and bool(driver.connected)

    # calls ----------------------------------------------------------------------------
    async def _call(self, what: str, body: JsonObject) -> None:
        await self._calls.run(lambda lane: self._send(lane, what, body))

    def _send_all(self, lane: Pipeline, what: str, bodies: Sequence[JsonObject]) -> int:
        """Send calls of one type pipelined; how many the master refused."""
        framework_id, master, stream_id = self._subscription(what)
        calls = [{"type": what, "framework_id": {"value": framework_id}, **b} for b in bodies]
        try:
            return lane.send(master, stream_id, self._authorization, calls)
        except Exception as error:
            raise MesosCallError(f"{what} failed: {error}") from error

    def _subscription(self, what: str) -> tuple[str, str, str]:
        """Framework id, master and stream id to send a call with. Checked on the lane's
        thread right before sending: leadership can end (ZooKeeper SUSPENDED) at any
        moment, and a call queued before that must not go out after."""
        if not self._may_call():
            raise NotLeading(f"{what}: not sent, this process no longer leads")
        driver = self._holder.pymesos
        master, stream_id = (driver.master, driver.stream_id) if driver else (None, None)
        if not master or not stream_id or not driver.framework_id:
            raise MesosCallError(f"{what}: not subscribed to a Mesos master")
        return str(driver.framework_id), str(master), str(stream_id)

    def _send(self, lane: CallLane, what: str, body: JsonObject) -> None:
        framework_id, master, stream_id = self._subscription(what)
        call = {"type": what, "framework_id": {"value": framework_id}, **body}
        try:
            lane.send(master, stream_id, self._authorization, call)
        except Exception as error:
            raise MesosCallError(f"{what} failed: {error}") from error

    async def accept(
        self, offer_ids: Sequence[str], tasks: Sequence[JsonObject], refuse_seconds: float
    ) -> None:
        """LAUNCH `tasks` on the offers of one agent (all offers of a call from one agent).

        ACCEPTs of different agents go out side by side, each on a free lane."""
        body = _accept_body(offer_ids, tasks, refuse_seconds)
        await self._accepts.run(functools.partial(self._send_accept, body=body))

    def accept_now(
        self, launches: Sequence[AgentAccept], refuse_seconds: float
    ) -> list[Future[None]]:
        sending: list[Future[None]] = []
        for offer_ids, tasks in launches:
            body = _accept_body(offer_ids, tasks, refuse_seconds)
            try:
                sending.append(
                    self._accepts.submit(functools.partial(self._send_accept, body=body))
                )
            except RuntimeError as error:  # the lanes are closed: the term is ending
                refused: Future[None] = Future()
                refused.set_exception(MesosCallError(f"ACCEPT not sent: {error}"))
                sending.append(refused)
        return sending

    def _send_accept(self, lane: CallLane, body: JsonObject) -> None:
        self._send(lane, "ACCEPT", body)

    async def decline(self, offer_ids: Sequence[str], refuse_seconds: float) -> None:
        await self._call(
            "DECLINE",
            {
                "decline": {
                    "offer_ids": [{"value": o} for o in offer_ids],
                    "filters": {"refuse_seconds": refuse_seconds},
                }
            },
        )

    async def revive(self) -> None:
        await self._call("REVIVE", self._roles("revive"))

    async def suppress(self) -> None:
        await self._call("SUPPRESS", self._roles("suppress"))

    def _roles(self, key: str) -> JsonObject:
        return {key: {"roles": [self._settings.role]}}

    async def kill(self, task_id: str, agent_id: str | None) -> None:
        kill: JsonObject = {"task_id": {"value": task_id}}
        if agent_id:
            kill["agent_id"] = {"value": agent_id}
        await self._call("KILL", {"kill": kill})

    async def acknowledge(self, acks: Sequence[Acknowledgement]) -> None:
        """ACKNOWLEDGE each update, pipelined on one connection."""
        calls = [
            {
                "acknowledge": {
                    "agent_id": {"value": ack.agent_id},
                    "task_id": {"value": ack.task_id},
                    "uuid": ack.uuid,
                }
            }
            for ack in acks
        ]
        refused = await self._acks.run(lambda lane: self._send_all(lane, "ACKNOWLEDGE", calls))
        if refused:
            raise MesosCallError(f"ACKNOWLEDGE: the master refused {refused} of {len(calls)}")

    async def reconcile(self, tasks: Sequence[tuple[str, str | None]]) -> None:
        """Explicit reconciliation of `tasks` (task id, agent id); implicit when empty."""
        entries: list[JsonObject] = []
        for task_id, agent_id in tasks:
            entry: JsonObject = {"task_id": {"value": task_id}}
            if agent_id:
                entry["agent_id"] = {"value": agent_id}
            entries.append(entry)
        await self._call("RECONCILE", {"reconcile": {"tasks": entries}})

    async def executors(self, master: str, framework_id: str) -> list[tuple[str, str]]:
        """(executor id, agent id) of every executor of the framework that `master`
        ("host:port", the one subscribed to) runs, from its state endpoint. Unlike
        offers' `executor_ids`, this also covers agents with nothing left to offer."""
        settings = self._settings
        auth = None
        if settings.principal and settings.secret:
            auth = aiohttp.BasicAuth(settings.principal, settings.secret.get_secret_value())
        timeout = aiohttp.ClientTimeout(total=settings.mesos_call_timeout_seconds)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout, auth=auth) as session,
                session.get(f"http://{master}/master/state") as response,
            ):
                response.raise_for_status()
                state = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise MesosCallError(f"master state from {master} failed: {error!r}") from error
        if not isinstance(state, Mapping):
            raise MesosCallError(f"master state from {master} is not a JSON object")
        return framework_executors(state, framework_id)

    async def shutdown(self, agent_id: str, executor_id: str) -> None:
        await self._call(
            "SHUTDOWN",
            {
                "shutdown": {
                    "executor_id": {"value": executor_id},
                    "agent_id": {"value": agent_id},
                }
            },
        )

    async def message(self, agent_id: str, executor_id: str, data_base64: str) -> None:
        await self._call(
            "MESSAGE",
            {
                "message": {
                    "agent_id": {"value": agent_id},
                    "executor_id": {"value": executor_id},
                    "data": data_base64,
                }
            },
        )


def _accept_body(
    offer_ids: Sequence[str], tasks: Sequence[JsonObject], refuse_seconds: float
) -> JsonObject:
    return {
        "accept": {
            "offer_ids": [{"value": o} for o in offer_ids],
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": list(tasks)}}],
            "filters": {"refuse_seconds": refuse_seconds},
        }
    }


def _basic_authorization(settings: FrameworkSettings) -> str | None:
    """The Authorization header of calls when the framework authenticates."""
    if not settings.principal or not settings.secret:
        return None
    pair = f"{settings.principal}:{settings.secret.get_secret_value()}".encode()
    return f"Basic {base64.b64encode(pair).decode('ascii')}"


def pymesos_factory(settings: FrameworkSettings) -> MesosFactory:
    """Builds the `MesosDriver` of each term, on the running loop."""

    def build(
        sink: EventSink, may_call: Callable[[], bool], may_subscribe: Callable[[], bool]
    ) -> MesosDriver:
        return MesosDriver(
            settings,
            sink,
            asyncio.get_running_loop(),
            may_call=may_call,
            may_subscribe=may_subscribe,
        )

    return build
