"""`SchedulingService`: the scheduling core the Kubernetes layer constructs and calls.

It implements `controller.operations.SchedulingOperations` on top of the Mesos framework
and its ZooKeeper state. It lives as long as the process; leadership comes and goes:

    service = SchedulingService(kazoo_client, FrameworkSettings(master="zk://zk:2181/mesos"),
                                registry=prometheus_registry)
    await service.start(election)   # on became_leader: `election` is the fence (token())
    ...                             # operations; `service.events` yields RuntimeEvents
    await service.stop()            # on must_stop / shutdown: Mesos failover, no teardown

`start` builds a `FrameworkEngine` for the term (loads the state, re-registers every
transient cron, subscribes with the stored framework id); `stop` closes it. Operations
called while not leading raise `NotLeader` (a `SchedulingError`: retry later).
`RuntimeEvent`s are put on the bounded `events` queue (the oldest is dropped when a
consumer falls behind, counted in `cloudjob_runtime_events_dropped_total`).
"""

from __future__ import annotations

import asyncio
import logging

from kazoo.client import KazooClient
from prometheus_client import CollectorRegistry

from controller.definitions import AppDefinition, JobDefinition
from controller.mesos.engine import EngineInputs, FrameworkEngine, JobStats
from controller.mesos.settings import FrameworkSettings
from controller.metrics import FrameworkMetrics
from controller.operations import (
    ExecutorRuntime,
    JobRuntime,
    RuntimeEvent,
    ShardRuntime,
    TriggerResult,
)
from controller.state import DEFAULT_QUEUE_LIMIT, Layout, NotLeader
from controller.state.election import Fence

log = logging.getLogger(__name__)


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
    ) -> None:
        self.settings = settings
        self.metrics = FrameworkMetrics(registry if registry is not None else CollectorRegistry())
        self.events: asyncio.Queue[RuntimeEvent] = asyncio.Queue(settings.event_queue_size)
        self._client = client
        self._layout = layout or Layout()
        self._zk_auth = zk_auth
        self._queue_limit = queue_limit
        self._stats: dict[str, JobStats] = {}
        self._engine: FrameworkEngine | None = None
        self._transition = asyncio.Lock()

    # ------------------------------------------------------------------ leadership
    async def start(self, fence: Fence) -> None:
        """Take over as the active framework (call when elected leader)."""
        async with self._transition:
            if self._engine is not None:
                return
            engine = FrameworkEngine(
                EngineInputs(
                    client=self._client,
                    fence=fence,
                    settings=self.settings,
                    metrics=self.metrics,
                    stats=self._stats,
                    emit=self._emit,
                    layout=self._layout,
                    zk_auth=self._zk_auth,
                    queue_limit=self._queue_limit,
                )
            )
            try:
                await engine.start()
            except BaseException:
                await engine.close()
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

    @property
    def active(self) -> bool:
        return self._engine is not None

    @property
    def engine(self) -> FrameworkEngine:
        """The current term's engine; raises NotLeader between terms."""
        if self._engine is None:
            raise NotLeader("the scheduling service is not running (not the leader)")
        return self._engine

    def _emit(self, event: RuntimeEvent) -> None:
        if self.events.full():
            self.events.get_nowait()
            self.metrics.events_dropped.inc()
        self.events.put_nowait(event)

    # ------------------------------------------------------------------ operations
    async def put_app(self, app: AppDefinition) -> None:
        await self.engine.put_app(app)

    async def remove_app(self, app_key: str) -> None:
        await self.engine.remove_app(app_key)

    async def disable_app(self, app_key: str) -> None:
        await self.engine.disable_app(app_key)

    async def enable_app(self, app_key: str) -> None:
        await self.engine.enable_app(app_key)

    async def schedule(self, job: JobDefinition) -> None:
        await self.engine.schedule(job)

    async def unschedule(self, job_key: str) -> None:
        await self.engine.unschedule(job_key)

    async def disable_job(self, job_key: str) -> None:
        await self.engine.disable_job(job_key)

    async def enable_job(self, job_key: str) -> None:
        await self.engine.enable_job(job_key)

    async def trigger(self, job_key: str, token: str) -> TriggerResult:
        return await self.engine.trigger(job_key, token)

    # ------------------------------------------------------------------ runtime facts
    def job_runtime(self, job_key: str) -> JobRuntime:
        stats = self._stats.get(job_key, JobStats())
        engine = self._engine
        if engine is None:
            return JobRuntime(
                job_key=job_key,
                scheduled=False,
                last_fire_time=stats.last_fire_time,
                last_success_time=stats.last_success_time,
                succeeded=stats.succeeded,
                failed=stats.failed,
            )
        store = engine.store
        job = store.job(job_key)
        shards = []
        for task in sorted(store.running_of(job_key), key=lambda t: t.shard):
            tracked = engine.tracked(task.task_id)
            shards.append(
                ShardRuntime(
                    shard=task.shard,
                    task_id=task.task_id,
                    agent_id=task.agent_id,
                    hostname=task.hostname,
                    state=tracked.state if tracked else task.state,
                    since=tracked.since if tracked else task.launched_at,
                )
            )
        ready = store.ready().get(job_key)
        scheduled = job is not None and not store.is_disabled(job_key)
        if scheduled and job is not None and not job.is_daemon:
            scheduled = engine.producer.is_registered(job_key)
        return JobRuntime(
            job_key=job_key,
            scheduled=scheduled,
            active_shards=tuple(shards),
            last_fire_time=stats.last_fire_time,
            next_fire_time=engine.producer.next_fire(job_key),
            last_success_time=stats.last_success_time,
            succeeded=stats.succeeded,
            failed=stats.failed,
            pending_runs=ready.count if ready else 0,
            unplaceable_reason=stats.unplaceable_reason,
        )

    def job_keys(self) -> frozenset[str]:
        """Keys of every job whose definition the core holds (raises NotLeader between terms)."""
        return frozenset(self.engine.store.jobs())

    def app_keys(self) -> frozenset[str]:
        """Keys of every app whose definition the core holds (raises NotLeader between terms)."""
        return frozenset(self.engine.store.apps())

    def app_executors(self, app_key: str) -> list[ExecutorRuntime]:
        engine = self._engine
        if engine is None:
            return []
        return [
            ExecutorRuntime(agent_id=agent, hostname=host, executor_id=executor, tasks=tasks)
            for agent, host, executor, tasks in engine.executors_of(app_key)
        ]
