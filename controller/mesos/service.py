"""`SchedulingService`: the scheduling core the Kubernetes layer constructs and calls.

It implements `controller.operations.SchedulingOperations` on top of the Mesos framework
and its ZooKeeper state. It lives as long as the process; leadership comes and goes:

    service = SchedulingService(kazoo_client, FrameworkSettings(master="zk://zk:2181/mesos"),
                                registry=prometheus_registry)
    await service.start(election)   # on became_leader: `election` is the fence (token())
    ...                             # operations; `service.events` yields RuntimeEvents
    await service.stop()            # on must_stop / shutdown: Mesos failover, no teardown

What outlives a term is owned here: the metrics, the runtime-event queue, the job
statistics and the run history it is given (told `lead` / `follow` as terms start and
end). `start` builds the term — its `StateStore` over the kazoo client, fenced
by the election, and a `FrameworkEngine` given the store, the statistics and the Mesos
factory (pymesos unless the caller passes another) — and starts it; `stop` closes it.
The operations are the current term's: called while not leading they raise
`NotLeader` (a `SchedulingError`: retry later), and `job_runtime` answers from the
statistics alone. `view()` gives read-only access to the running term (`TermView`).
`RuntimeEvent`s are put on the bounded `events` queue (the oldest is dropped when a
consumer falls behind, counted in `cloudjob_runtime_events_dropped_total`).

Whatever changes a job's status marks it in `dirty` (`controller.dirty`): every
runtime event and every change of the job statistics; an event about a job's tasks
also marks its app (its executors' task counts). The run history marks what its
summaries change (wired by `controller.app`).
"""

from __future__ import annotations

import asyncio
import logging

from kazoo.client import KazooClient
from prometheus_client import CollectorRegistry

from controller.definitions import AppDefinition, JobDefinition
from controller.dirty import DirtyQueue, ObjectKind
from controller.mesos import runtime
from controller.mesos.calls import MesosFactory
from controller.mesos.driver import pymesos_factory
from controller.mesos.engine import FrameworkEngine
from controller.mesos.history_port import NoHistory, RunHistory
from controller.mesos.history_spool import ZkSpool
from controller.mesos.job_metrics import JobMetrics
from controller.mesos.settings import FrameworkSettings
from controller.mesos.statistics import JobStatistics
from controller.mesos.view import TermView
from controller.metrics import FrameworkMetrics
from controller.operations import (
    EventKind,
    ExecutorRuntime,
    JobRuntime,
    ReconcileKind,
    RuntimeEvent,
    TriggerResult,
)
from controller.state import DEFAULT_QUEUE_LIMIT, Layout, NotLeader, StateStore
from controller.state.election import Fence

log = logging.getLogger(__name__)
JOB_FACTS_TIMEOUT = 30.0
# Events that say nothing about a job's tasks, so nothing about its app's executors.
_JOB_ONLY = frozenset({EventKind.FIRED, EventKind.UNPLACEABLE})


class SchedulingService:
    """See the module docstring."""

    def __init__(
        self,
        client: KazooClient,
        settings: FrameworkSettings,
        *,
        layout: Layout | None = None,
        zk_auth: str | None = None,
        queue_limit: int = DEFAULT_QUEUE_LIMIT,
        registry: CollectorRegistry | None = None,
        connect: MesosFactory | None = None,
        history: RunHistory | None = None,
        dirty: DirtyQueue | None = None,
    ) -> None:
        self.settings = settings
        self.dirty = dirty if dirty is not None else DirtyQueue()
        registry = registry if registry is not None else CollectorRegistry()
        self.metrics = FrameworkMetrics(registry)
        self.events: asyncio.Queue[RuntimeEvent] = asyncio.Queue(settings.event_queue_size)
        self._client = client
        self._layout = layout or Layout()
        self._zk_auth = zk_auth
        self._queue_limit = queue_limit
        self._connect = connect or pymesos_factory(settings)
        self._stats = JobStatistics(self._job_changed)
        self._history: RunHistory = history if history is not None else NoHistory()
        self._spool = ZkSpool(client, self._layout)
        self._engine: FrameworkEngine | None = None
        self._transition = asyncio.Lock()
        self._loop = asyncio.get_running_loop()
        registry.register(JobMetrics(self._job_facts))

    # ------------------------------------------------------------------ leadership
    async def start(self, fence: Fence) -> None:
        """Take over as the active framework (call when elected leader)."""
        async with self._transition:
            if self._engine is not None:
                return
            store = StateStore.on_kazoo(
                self._client,
                fence,
                layout=self._layout,
                auth=self._zk_auth,
                queue_limit=self._queue_limit,
            )
            engine = FrameworkEngine(
                store=store,
                fence=fence,
                connect=self._connect,
                settings=self.settings,
                metrics=self.metrics,
                stats=self._stats,
                emit=self._emit,
                history=self._history,
            )
            self._history.lead(self._spool)
            try:
                await engine.start()
            except BaseException:
                await engine.close()
                self._history.follow()
                raise
            self._engine = engine
            self.metrics.leading.set(1)

    async def stop(self) -> None:
        """Stop acting (call on must_stop and at shutdown); idempotent."""
        async with self._transition:
            engine, self._engine = self._engine, None
            self.metrics.leading.set(0)
            if engine is not None:
                await engine.close()
                self._history.follow()

    @property
    def active(self) -> bool:
        return self._engine is not None

    def view(self) -> TermView:
        """The running term, read-only; raises NotLeader between terms."""
        return self._term()

    def _term(self) -> FrameworkEngine:
        if self._engine is None:
            raise NotLeader("the scheduling service is not running (not the leader)")
        return self._engine

    def _job_changed(self, job_key: str) -> None:
        self.dirty.mark(ObjectKind.JOB, job_key)

    def _emit(self, event: RuntimeEvent) -> None:
        self.dirty.mark(ObjectKind.JOB, event.job_key)
        if event.kind not in _JOB_ONLY and self._engine is not None:
            job = self._engine.state.job(event.job_key)
            if job is not None:
                self.dirty.mark(ObjectKind.APP, job.app_key)
        if self.events.full():
            self.events.get_nowait()
            self.metrics.events_dropped.inc()
        self.events.put_nowait(event)

    # ------------------------------------------------------------------ operations
    # Each is carried out by the current term; between terms `_term` refuses.
    async def put_app(self, app: AppDefinition) -> None:
        await self._term().put_app(app)

    async def remove_app(self, app_key: str) -> None:
        await self._term().remove_app(app_key)

    async def disable_app(self, app_key: str) -> None:
        await self._term().disable_app(app_key)

    async def enable_app(self, app_key: str) -> None:
        await self._term().enable_app(app_key)

    async def schedule(self, job: JobDefinition) -> None:
        await self._term().schedule(job)

    async def unschedule(self, job_key: str) -> None:
        await self._term().unschedule(job_key)

    async def disable_job(self, job_key: str) -> None:
        await self._term().disable_job(job_key)

    async def enable_job(self, job_key: str) -> None:
        await self._term().enable_job(job_key)

    async def trigger(self, job_key: str, token: str) -> TriggerResult:
        return await self._term().trigger(job_key, token)

    async def reconcile(self, kind: ReconcileKind, app_key: str | None = None) -> int:
        return await self._term().reconcile(kind, app_key)

    # ------------------------------------------------------------------ runtime facts
    def job_runtime(self, job_key: str) -> JobRuntime:
        if self._engine is None:
            return runtime.between_terms(
                job_key, self._stats.of(job_key), self._history.job_history(job_key)
            )
        return self._engine.job_runtime(job_key)

    def job_keys(self) -> frozenset[str]:
        """Keys of every job whose definition the core holds (raises NotLeader between terms)."""
        return frozenset(self._term().state.jobs())

    def app_keys(self) -> frozenset[str]:
        """Keys of every app whose definition the core holds (raises NotLeader between terms)."""
        return frozenset(self._term().state.apps())

    def _job_facts(self) -> list[tuple[JobDefinition, JobRuntime]]:
        """Every job of the current term with its runtime (none between terms), read on
        the service's loop: the per-job metrics call this from the scrape's thread."""

        def read() -> list[tuple[JobDefinition, JobRuntime]]:
            engine = self._engine
            if engine is None:
                return []
            return [(job, engine.job_runtime(job.key)) for job in engine.state.jobs().values()]

        async def on_loop() -> list[tuple[JobDefinition, JobRuntime]]:
            return read()

        try:
            if asyncio.get_running_loop() is self._loop:
                return read()  # a collection asked for on the loop itself
        except RuntimeError:
            pass
        return asyncio.run_coroutine_threadsafe(on_loop(), self._loop).result(JOB_FACTS_TIMEOUT)

    def app_executors(self, app_key: str) -> list[ExecutorRuntime]:
        if self._engine is None:
            return []
        return self._engine.app_executors(app_key)
