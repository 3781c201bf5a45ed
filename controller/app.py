"""The leader-gated controller: only the ZooKeeper leader runs kopf and the Mesos framework.

`Controller.run` connects to ZooKeeper, serves the health and metrics endpoints, runs
the run history's writer (`HistoryWriter`, for the life of the process) and contends
in the `LeaderElection`. On election it starts a `LeaderTerm`: the scheduling
core (`SchedulingService.start`, fenced by the election) and then the kopf operator
(an explicit `kopf.OperatorRegistry`, standalone — kopf peering is off because the
election is the one fencing authority), with the status refresher, the drift sweep,
the Event recorder and the orphan sweep beside it. The queue of dirty objects
(`controller.dirty`) lives as long as the process: the scheduling core and the run
history mark it, each term's refresher drains it. On losing
leadership the term ends: the core stops first (no more Mesos calls or ZooKeeper
writes), then the operator; the process stays up as a standby and contends again.
Nothing here exits the process.

kopf cancels every task created on its event loop while it runs, so the controller
must own its loop: `ControllerThread` runs a `Controller` on a loop of its own in a
thread (the `run` command, the `dev` stack and tests all use it).

About 650 lines: the composition root, the one module that wires the Kubernetes layer to
the scheduling core (docs/architecture.md#layering), with the replica's lifecycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from enum import StrEnum
from typing import Any, TypeVar, cast

import aiohttp
import kopf
import kubernetes
from kazoo.client import KazooClient, KazooState
from prometheus_client import CollectorRegistry

from controller.api.console import ConsoleAssets
from controller.api.server import HistoryApi
from controller.dirty import DirtyQueue, ObjectKind
from controller.endpoints import Endpoints, Health
from controller.handlers import (
    APPS,
    EVENT_COMPONENT,
    JOBS,
    USER_AGENT,
    OperatorMemo,
    app_entry,
    register_handlers,
)
from controller.history.writer import HistoryWriter
from controller.loop_metrics import LoopMetrics
from controller.mesos.service import SchedulingService
from controller.operations import ReconcileKind, RuntimeEvent, SchedulingError
from controller.reconcilers.drift import DriftSweep
from controller.reconcilers.handling import ObjectView, Reconciliation
from controller.reconcilers.indexing import ObjectIndex
from controller.reconcilers.kubeapi import ApiError, KubeApi, status_path
from controller.reconcilers.pacing import TokenBucket
from controller.reconcilers.recording import EventPolicy, EventRecorder
from controller.reconcilers.refreshing import RefreshMetrics, StatusRefresher, StatusWrite
from controller.reconcilers.sweeping import Exists, OrphanSweep, SweepMetrics
from controller.settings import KubernetesSettings, Settings
from controller.state import (
    AsyncLeadership,
    Layout,
    LeaderElection,
    NotLeader,
    TermFence,
    open_client,
)
from controller.state.view import View

log = logging.getLogger(__name__)
T = TypeVar("T")

CONNECT_POLL = 0.1
TERM_RETRY_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)
OPERATOR_STOP_TIMEOUT = 30.0
RECONCILE_TIMEOUT = 30.0


class Role(StrEnum):
    STARTING = "starting"
    STANDBY = "standby"
    LEADER = "leader"
    STOPPING = "stopping"
    STOPPED = "stopped"


class CredentialsError(RuntimeError):
    """No usable Kubernetes credentials (neither in-cluster nor a kubeconfig)."""


def kubernetes_credentials(settings: KubernetesSettings) -> kopf.ConnectionInfo:
    """How to reach the API server: the kubeconfig named in the settings, else the
    in-cluster service account, else $KUBECONFIG / ~/.kube/config. Read afresh on every
    call, so rotated tokens are picked up when kopf logs in again."""
    config = kubernetes.client.Configuration()
    try:
        if settings.kubeconfig is None and "KUBERNETES_SERVICE_HOST" in os.environ:
            kubernetes.config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=config
            )
        else:
            kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(settings.kubeconfig) if settings.kubeconfig else None,
                context=settings.context,
                client_configuration=config,
                persist_config=False,
            )
    except (kubernetes.config.ConfigException, OSError) as error:
        raise CredentialsError(
            f"no Kubernetes credentials: {error}; set --kubernetes.kubeconfig "
            "(CLOUDJOB_KUBERNETES__KUBECONFIG) or run in a pod with a service account"
        ) from error
    header = config.get_api_key_with_prefix("BearerToken") or config.get_api_key_with_prefix(
        "authorization"
    )
    scheme, token = None, None
    if header:
        first, _, rest = header.partition(" ")
        scheme, token = (first, rest) if rest else (None, first)
    return kopf.ConnectionInfo(
        server=config.host,
        ca_path=config.ssl_ca_cert,
        insecure=not config.verify_ssl,
        username=config.username or None,
        password=config.password or None,
        scheme=scheme,
        token=token,
        certificate_path=config.cert_file,
        private_key_path=config.key_file,
    )


class LeaderTerm:
    """One period of leadership: the scheduling core, the event pump and the operator."""

    def __init__(
        self,
        *,
        service: SchedulingService,
        election: LeaderElection,
        registry: kopf.OperatorRegistry,
        settings: Settings,
        listeners: Sequence[EventListener],
        sweep_metrics: SweepMetrics,
        refresh_metrics: RefreshMetrics,
    ) -> None:
        self._service = service
        self._election = election
        # This term's scheduling core writes only while this term lasts.
        self._fence = TermFence(election, election.term)
        self._registry = registry
        self._settings = settings
        self._listeners = listeners
        self._sweep_metrics = sweep_metrics
        self._refresh_metrics = refresh_metrics
        self._stop = asyncio.Event()
        self.task = asyncio.create_task(self._run(), name="leader term")

    async def _run(self) -> None:
        async def start() -> bool:
            await self._service.start(self._fence)
            return True

        started = await self._retrying("scheduling core did not start", start, (Exception,))
        if not started or self._stop.is_set():
            return
        status, kube = self._settings.status, self._settings.kubernetes
        leading = self._leading()
        reconciliation = Reconciliation(
            ops=self._service, dirty=self._service.dirty, leading=leading
        )

        def credentials() -> kopf.ConnectionInfo:
            return kubernetes_credentials(kube)

        api = KubeApi(credentials, user_agent=f"{USER_AGENT} ({self._settings.identity})")
        recorder = EventRecorder(
            api,
            component=EVENT_COMPONENT,
            instance=self._settings.identity,
            leading=leading,
            policy=EventPolicy(pace=status.event_pace),
            bucket=TokenBucket(status.events_per_second, status.event_burst),
        )
        memo = OperatorMemo(
            reconciliation=reconciliation,
            credentials=credentials,
            recorder=recorder,
            watches=2 * max(1, len(kube.namespaces)),
        )
        indexes = memo.indexes
        refresher = StatusRefresher(
            queue=self._service.dirty,
            reconciliation=reconciliation,
            known=indexes.known,
            apps_now=indexes.app_lookup,
            recorder=recorder,
            write=_status_writer(api),
            bucket=TokenBucket(status.writes_per_second, status.write_burst),
            metrics=self._refresh_metrics,
        )
        drift = DriftSweep(
            objects=indexes.objects,
            reapply=reconciliation.request_reapply,
            period=status.refresh_interval,
        )
        sweep = OrphanSweep(
            ops=self._service,
            reconciliation=reconciliation,
            jobs_present=memo.indexes.job_keys,
            apps_present=memo.indexes.app_keys,
            exists=_existence(api),
            metrics=self._sweep_metrics,
            namespaces=tuple(kube.namespaces),
            interval=kube.orphan_sweep_interval,
        )
        listed = indexes.apps_listed

        async def once_apps_listed(work: Coroutine[Any, Any, None]) -> None:
            # A job's app read before the listing could look missing (and unschedule it).
            await listed.wait()
            await work

        helpers = [
            asyncio.create_task(self._seed_apps(api, indexes), name="app listing"),
            asyncio.create_task(self._pump(refresher), name="runtime events"),
            asyncio.create_task(once_apps_listed(refresher.run(self._stop)), name="refresher"),
            asyncio.create_task(once_apps_listed(drift.run(self._stop)), name="drift sweep"),
            asyncio.create_task(once_apps_listed(sweep.run(self._stop)), name="orphan sweep"),
            asyncio.create_task(recorder.run(self._stop), name="event recorder"),
        ]
        try:
            await kopf.operator(
                registry=self._registry,
                memo=memo,
                standalone=True,
                clusterwide=not kube.namespaces,
                namespaces=kube.namespaces,
                stop_flag=self._stop,
            )
        finally:
            for helper in helpers:
                helper.cancel()
            for helper in helpers:
                with contextlib.suppress(asyncio.CancelledError):
                    await helper
            await api.close()

    async def _seed_apps(self, api: KubeApi, indexes: ObjectIndex) -> None:
        """List the CloudApps once into the object index, retrying until it works."""
        namespaces: list[str | None] = list(self._settings.kubernetes.namespaces) or [None]

        async def listing() -> list[dict[str, Any]]:
            objects: list[dict[str, Any]] = []
            for namespace in namespaces:
                try:
                    objects += await api.listed(APPS, namespace)
                except ApiError as error:
                    if error.code not in (403, 404):
                        raise
                    # A watched namespace that does not exist (yet), or whose Role is not
                    # granted yet, holds no app of ours; its apps come through events.
                    log.info("no CloudApps listed in %s: %s", namespace, error)
            return objects

        errors = (ApiError, aiohttp.ClientError, TimeoutError)
        objects = await self._retrying("could not list the CloudApps", listing, errors)
        if objects is not None:
            indexes.seed_apps(app_entry(kopf.Body(cast(kopf.RawBody, o))) for o in objects)
            log.info("%d CloudApp(s) listed", len(objects))

    async def _retrying(
        self,
        what: str,
        work: Callable[[], Awaitable[T]],
        errors: tuple[type[Exception], ...],
    ) -> T | None:
        """What `work` returns, tried again after a growing pause while it fails with one
        of `errors`; None once the term is told to stop."""
        for attempt in itertools.count():
            try:
                return await work()
            except errors as error:
                delay = TERM_RETRY_DELAYS[min(attempt, len(TERM_RETRY_DELAYS) - 1)]
                log.warning("%s (%s); retrying in %.0fs", what, error, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                if self._stop.is_set():
                    return None
        raise AssertionError("itertools.count() never ends")

    def _leading(self) -> Callable[[], bool]:
        """Whether the election's current term is still the one this term started in."""
        election, term = self._election, self._election.term

        def leading() -> bool:
            return term is not None and election.term is term

        return leading

    async def _pump(self, refresher: StatusRefresher) -> None:
        while True:
            event = await self._service.events.get()
            refresher.runtime_event(event)
            for listener in self._listeners:
                try:
                    listener(event)
                except Exception:
                    log.exception("a runtime event listener failed on %s", event.kind)

    async def end(self) -> None:
        """Stop acting at once (the core), then wind the operator down."""
        self._stop.set()
        await self._service.stop()
        try:
            await asyncio.wait_for(asyncio.shield(self.task), OPERATOR_STOP_TIMEOUT)
        except TimeoutError:
            log.error("the operator did not stop in %.0fs; cancelling it", OPERATOR_STOP_TIMEOUT)
            self.task.cancel()
        except Exception:
            log.exception("the operator ended with an error")
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task


async def _namespace_gone(api: KubeApi, namespace: str) -> bool:
    """Whether the server is sure `namespace` does not exist (False when it cannot say)."""
    try:
        return not await api.namespace_named(namespace)
    except ApiError:
        return False


def _status_writer(api: KubeApi) -> StatusWrite:
    plurals = {ObjectKind.JOB: JOBS, ObjectKind.APP: APPS}

    async def write(kind: ObjectKind, view: ObjectView, patch: dict[str, Any]) -> None:
        await api.patch(status_path(plurals[kind], view.namespace, view.name), {"status": patch})

    return write


def _existence(api: KubeApi) -> Exists:
    plurals = {"CloudJob": JOBS, "CloudApp": APPS}

    async def exists(kind: str, namespace: str, name: str) -> bool | None:
        try:
            return bool(await api.named(plurals[kind], namespace, name))
        except ApiError as error:
            if error.code == 403 and await _namespace_gone(api, namespace):
                # Granted per namespace, the controller's Role goes with its namespace.
                return False
            log.warning("could not read %s %s/%s: %s", kind, namespace, name, error)
            return None

    return exists


EventListener = Callable[[RuntimeEvent], None]
"""Called on the controller's loop for each runtime event of the leader; must not block."""


class Controller:
    """One replica of the controller; see the module docstring.

    `registry`: where the metrics go (default: a fresh registry). `listeners`: extra
    consumers of the scheduling core's runtime events (the `dev` stack prints them).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        registry: CollectorRegistry | None = None,
        listeners: Sequence[EventListener] = (),
    ) -> None:
        self.settings = settings
        self._listeners = tuple(listeners)
        self.registry = registry if registry is not None else CollectorRegistry()
        self._operator_registry = kopf.OperatorRegistry()
        register_handlers(self._operator_registry)
        self.dirty = DirtyQueue(min_gap=settings.status.min_interval)
        self._lock = threading.Lock()
        self._role = Role.STARTING
        self._zookeeper = "disconnected"
        self._terms = 0
        self._client: KazooClient | None = None
        self._service: SchedulingService | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.history = HistoryWriter(
            settings.history, registry=self.registry, summary_changed=self._summary_changed
        )
        self.api = HistoryApi(
            database_url=settings.history.url(),
            timeout=settings.history.timeout_seconds,
            zookeeper=lambda: self._client,
            layout=Layout(settings.zookeeper.namespace),
            reconcile=self._reconcile_now,
            leading=self._leading_view,
            namespaces=settings.shown_namespaces(),
        )
        self.console = ConsoleAssets(enabled=settings.console.enabled)
        self.endpoints = Endpoints(
            host=settings.http.host,
            health_port=settings.http.health_port,
            metrics_port=settings.http.metrics_port,
            registry=self.registry,
            snapshot=self.health,
            api=self.api.answer,
            console=self.console.answer,
        )
        self.endpoints_up = threading.Event()
        self._sweep_metrics = SweepMetrics(self.registry)
        self._refresh_metrics = RefreshMetrics(self.registry)
        self.registry.register(LoopMetrics(lambda: self._loop))

    def _summary_changed(self, job_key: str) -> None:
        self.dirty.mark(ObjectKind.JOB, job_key)

    @property
    def role(self) -> Role:
        with self._lock:
            return self._role

    def health(self) -> Health:
        with self._lock:
            return Health(
                role=self._role.value,
                zookeeper=self._zookeeper,
                ready=self._role in (Role.LEADER, Role.STANDBY) and self._zookeeper == "connected",
                identity=self.settings.identity,
                terms=self._terms,
                history=self.history.health,
            )

    def _reconcile_now(self, kind: ReconcileKind, app_key: str | None) -> int:
        """From the API's thread: a reconciliation by the scheduling core, if it leads."""
        service, loop = self._service, self._loop
        if service is None or loop is None or not service.active:
            raise SchedulingError("this replica does not lead; ask the leader (see /readyz)")
        future = asyncio.run_coroutine_threadsafe(service.reconcile(kind, app_key), loop)
        return future.result(RECONCILE_TIMEOUT)

    def _leading_view(self) -> View | None:
        """From the API's thread: a copy of the leading store's view (None: not leading)."""
        service = self._service
        if service is None or not service.active:
            return None
        try:
            return service.view().state.snapshot()
        except NotLeader:
            return None

    @property
    def zookeeper_client(self) -> KazooClient | None:
        """The replica's ZooKeeper client while it runs (for diagnostics)."""
        return self._client

    def _set(self, *, role: Role | None = None, zookeeper: str | None = None) -> None:
        with self._lock:
            if role is not None:
                if role is Role.LEADER:
                    self._terms += 1
                self._role = role
            if zookeeper is not None:
                self._zookeeper = zookeeper

    def _on_zookeeper(self, state: KazooState) -> None:
        self._set(zookeeper={"CONNECTED": "connected", "SUSPENDED": "suspended"}.get(state, "lost"))

    async def run(self, stop: asyncio.Event) -> None:
        """Serve, contend and lead until `stop` is set; then withdraw cleanly."""
        self._loop = asyncio.get_running_loop()
        self.api.start()
        self.endpoints.start()
        self.endpoints_up.set()
        log.info(
            "health on :%d, metrics on :%d",
            self.endpoints.health_port,
            self.endpoints.metrics_port,
        )
        zk = self.settings.zookeeper
        digest = zk.digest.get_secret_value() if zk.digest else None
        client = open_client(zk.hosts, auth=digest, session_timeout=zk.session_timeout)
        client.add_listener(self._on_zookeeper)
        self._client = client
        history_stop = asyncio.Event()
        # Created before any kopf operator runs, so no operator's shutdown cancels it.
        history = asyncio.create_task(self.history.run(history_stop), name="run history")
        try:
            if await self._connect(client, stop):
                await self._contend(client, digest, stop)
        finally:
            self._set(role=Role.STOPPING)
            history_stop.set()
            await history
            await asyncio.to_thread(client.stop)
            client.close()
            self._client = None
            self.endpoints.stop()
            await asyncio.to_thread(self.api.stop)
            self._loop = None
            self._set(role=Role.STOPPED)

    async def _connect(self, client: KazooClient, stop: asyncio.Event) -> bool:
        client.start_async()
        warned = time.monotonic()
        while not client.connected:
            if stop.is_set():
                return False
            if time.monotonic() - warned > 10:
                log.warning("still connecting to ZooKeeper at %s", self.settings.zookeeper.hosts)
                warned = time.monotonic()
            await asyncio.sleep(CONNECT_POLL)
        self._set(zookeeper="connected")
        return True

    async def _contend(self, client: KazooClient, digest: str | None, stop: asyncio.Event) -> None:
        layout = Layout(self.settings.zookeeper.namespace)
        leadership = AsyncLeadership(asyncio.get_running_loop())
        service = SchedulingService(
            client,
            self.settings.mesos,
            layout=layout,
            zk_auth=digest,
            registry=self.registry,
            history=self.history,
            dirty=self.dirty,
        )
        self._service = service
        election = LeaderElection(
            client, leadership, layout=layout, identity=self.settings.identity, auth=digest
        )
        await asyncio.to_thread(election.start)
        self._set(role=Role.STANDBY)
        term: LeaderTerm | None = None
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                change = asyncio.ensure_future(leadership.changes.get())
                waiting: set[asyncio.Future[Any]] = {stopping, change}
                if term is not None:
                    waiting.add(term.task)
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if not change.done():
                    change.cancel()
                if stop.is_set():
                    break
                if term is not None and term.task.done() and not change.done():
                    log.error("the operator stopped on its own; starting a new term")
                    await term.end()
                    term = self._begin(service, election) if election.is_leading else None
                    continue
                leading = change.result().leading
                if leading and term is None and election.is_leading:
                    log.info("leading: starting the scheduling core and the operator")
                    term = self._begin(service, election)
                elif not leading and term is not None:
                    log.warning("leadership lost (%s): stopping", change.result().reason)
                    # Not the leader from this moment, however long the term takes to end.
                    self._set(role=Role.STANDBY)
                    await term.end()
                    term = None
        finally:
            stopping.cancel()
            # Withdraw first, so a standby leads at once rather than after this term has
            # wound down: from this moment its writes are fenced and its Mesos calls
            # refused, however long kopf takes to stop.
            self._set(role=Role.STOPPING)
            await asyncio.to_thread(election.stop)
            log.info("withdrawn from the leader election")
            if term is not None:
                await term.end()
            await service.stop()

    def _begin(self, service: SchedulingService, election: LeaderElection) -> LeaderTerm:
        self._set(role=Role.LEADER)
        return LeaderTerm(
            service=service,
            election=election,
            registry=self._operator_registry,
            settings=self.settings,
            listeners=self._listeners,
            sweep_metrics=self._sweep_metrics,
            refresh_metrics=self._refresh_metrics,
        )


def preload_mesos_driver() -> None:
    """Import pymesos now if this is the main thread.

    Its first import installs a SIGINT handler, which Python allows only in the main
    thread; the controller's loop runs in a thread of its own and would fail there.
    """
    if threading.current_thread() is threading.main_thread():
        importlib.import_module("pymesos")


class ControllerThread:
    """Runs a `Controller` on an event loop of its own, in a thread.

    `start()` returns once the endpoints listen; `stop()` withdraws from the election,
    stops the term (if leading) and joins. `error` holds what ended `run` abnormally.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        registry: CollectorRegistry | None = None,
        listeners: Sequence[EventListener] = (),
    ) -> None:
        self.controller = Controller(settings, registry=registry, listeners=listeners)
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(
            target=self._main, name=f"controller-{settings.identity}", daemon=True
        )

    def _main(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await self.controller.run(self._stop)

        try:
            asyncio.run(main())
        except BaseException as error:  # reported through `error`, the thread must not die loud
            self.error = error
            log.exception("the controller stopped with an error")
        finally:
            self.controller.endpoints_up.set()

    def start(self, timeout: float = 30.0) -> None:
        """Call from the main thread (see `preload_mesos_driver`)."""
        preload_mesos_driver()
        self._thread.start()
        if not self.controller.endpoints_up.wait(timeout):
            raise TimeoutError(f"the controller's endpoints did not come up in {timeout}s")
        if self.error is not None:
            raise RuntimeError(f"the controller did not start: {self.error}") from self.error

    def stop(self, timeout: float = 60.0) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the controller did not stop in {timeout}s")

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def wait_for_role(self, role: Role, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.controller.role is role:
                return True
            if not self._thread.is_alive():
                return False
            time.sleep(0.05)
        return self.controller.role is role
