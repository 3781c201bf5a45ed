"""The parts of one leadership term, wired over the in-memory fakes, for unit tests.

`World` builds the real parts (status pipeline, launch cycle, reconciler, bookkeeping)
the way the engine wires them, over a `FakeGateway`-backed `StateStore` and a
`FakeMesos`; a test drives the part it is about and looks at the fakes. `seed` stores
an app and a job and records some of its shards as running, through the store's own
operations.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry

from controller.definitions import JobDefinition
from controller.history.records import HistoryRecord
from controller.history.spool import SpoolUnit
from controller.mesos import launch_cycle
from controller.mesos.acknowledger import Acknowledger
from controller.mesos.background import Background
from controller.mesos.executors import ExecutorRegistry
from controller.mesos.gauges import QueueGauges
from controller.mesos.history_handoff import HistoryHandoff
from controller.mesos.history_port import NoHistory
from controller.mesos.kills import KillBook
from controller.mesos.launch_cycle import LaunchCycle
from controller.mesos.reconciler import Reconciler
from controller.mesos.settings import FrameworkSettings
from controller.mesos.state_lock import StateLock
from controller.mesos.states import StatusUpdate, TaskState
from controller.mesos.statistics import JobStatistics
from controller.mesos.status_updates import StatusPipeline
from controller.mesos.tasks import MetaInfo, TaskId
from controller.mesos.tracking import TrackedTasks
from controller.mesos.unreachable import UnreachableExpiry
from controller.metrics import FrameworkMetrics
from controller.operations import RuntimeEvent
from controller.state import LaunchSource, RunningTask, StateStore
from tests.framework.factories import make_app, make_job
from tests.framework.fakes import FakeGateway, FakeMesos, Journal, loaded_store

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def settings(**overrides: Any) -> FrameworkSettings:
    values: dict[str, Any] = {
        "master": "127.0.0.1:5050",
        "user": "root",
        "hostname": "127.0.0.1",
        "launch_batch_seconds": 0,
        "status_batch_seconds": 0,
        "reconcile_interval_seconds": 0,
        "reconcile_backoff_seconds": 0.01,
        "reconcile_backoff_max_seconds": 0.05,
        "unplaceable_report_seconds": 0,
    }
    values.update(overrides)
    return FrameworkSettings(**values)


def uuid(n: int) -> str:
    return base64.b64encode(n.to_bytes(16, "big")).decode()


def update(task: str, state: TaskState, *, uid: int | None = 1, **extra: Any) -> StatusUpdate:
    return StatusUpdate(
        task_id=task,
        state=state,
        agent_id=TaskId.parse(task).agent_id,
        uuid=uuid(uid) if uid is not None else None,
        timestamp=T0.timestamp(),
        **extra,
    )


def offer(offer_id: str, agent_id: str, cpus: float = 8.0, mem: float = 8192.0) -> dict[str, Any]:
    return {
        "id": {"value": offer_id},
        "agent_id": {"value": agent_id},
        "hostname": f"host-{agent_id}",
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}},
        ],
    }


class Recorded(NoHistory):
    """A spooled history that keeps the records of every unit handed over."""

    def __init__(self, records: list[HistoryRecord]) -> None:
        self.records = records

    @property
    def spooled(self) -> bool:
        return True

    def submit(self, unit: SpoolUnit) -> None:
        self.records.extend(unit.records)


@dataclass
class World:
    settings: FrameworkSettings = field(default_factory=settings)
    journal: Journal = field(default_factory=Journal)
    events: list[RuntimeEvent] = field(default_factory=list)
    subscribed: bool = True
    # The producer's next fire time, as the launch cycle asks for it.
    next_fire: datetime | None = None
    # How long before its time a fire may be handed to the launch cycle.
    fire_early: float = 0.0

    def __post_init__(self) -> None:
        self.gateway = FakeGateway(self.journal)
        self.store: StateStore = loaded_store(self.gateway)
        self.mesos = FakeMesos(self.journal)
        self.registry = CollectorRegistry()
        self.metrics = FrameworkMetrics(self.registry)
        self.lock = StateLock()
        self.background = Background(asyncio.get_running_loop())
        self.stats = JobStatistics()
        # What the parts handed the run history, in order.
        self.history: list[HistoryRecord] = []
        self.handoff = HistoryHandoff(Recorded(self.history), self.store.layout)
        self.gauges = QueueGauges(self.store, self.stats, self.metrics)
        self.tracked = TrackedTasks()
        self.executors = ExecutorRegistry()
        self.kills = KillBook(self.mesos, self.metrics)
        self.settled = asyncio.Event()
        self.reconciler = Reconciler(
            store=self.store,
            mesos=self.mesos,
            settings=self.settings,
            metrics=self.metrics,
            background=self.background,
            on_settled=self._on_settled,
        )
        self.launch = LaunchCycle(
            store=self.store,
            mesos=self.mesos,
            lock=self.lock,
            metrics=self.metrics,
            settings=self.settings,
            background=self.background,
            tracked=self.tracked,
            executors=self.executors,
            reconciler=self.reconciler,
            stats=self.stats,
            gauges=self.gauges,
            emit=self.events.append,
            subscribed=lambda: self.subscribed,
            handoff=self.handoff,
            next_fire=lambda: self.next_fire,
            fire_early=self.fire_early,
        )
        self.expiry = UnreachableExpiry(self.settings.unreachable_grace_seconds, self.background)
        self.acknowledger = Acknowledger(self.mesos, self.metrics)
        self.background.spawn(self.acknowledger.run(), "acknowledgements")
        self.statuses = StatusPipeline(
            store=self.store,
            acknowledger=self.acknowledger,
            lock=self.lock,
            metrics=self.metrics,
            tracked=self.tracked,
            kills=self.kills,
            executors=self.executors,
            reconciler=self.reconciler,
            expiry=self.expiry,
            stats=self.stats,
            gauges=self.gauges,
            emit=self.events.append,
            on_change=self.launch.changed,
            handoff=self.handoff,
        )

    def _on_settled(self) -> None:
        self.settled.set()
        self.launch.changed()

    def seed(self, job: JobDefinition | None = None, *, running: int = 0) -> list[str]:
        """Store the app and `job` (3 shards by default), and record its first
        `running` shards as running on agent "a1"; their task ids."""
        job = job or make_job("job", shards=3)
        self.store.put_app(make_app("app"))
        self.store.put_job(job)
        if not running:
            return []
        self.store.fire([job.key], T0)
        fire = self.store.ready()[job.key].next_fire
        tasks = [
            RunningTask(
                task_id=TaskId.new(MetaInfo(job.key, shard), LaunchSource.READY, "a1").value,
                job_key=job.key,
                shard=shard,
                source=LaunchSource.READY,
                agent_id="a1",
                hostname="host-a1",
                launched_at=T0,
                fire_time=fire,
            )
            for shard in range(running)
        ]
        self.store.commit_launch(tasks)
        for task in tasks:
            self.tracked.adopt(task)
        self.journal.entries.clear()
        return [t.task_id for t in tasks]

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels or None) or 0.0

    async def handle(self, updates: list[StatusUpdate]) -> None:
        """Hand the pipeline a batch, then wait until its acknowledgements are sent."""
        await self.statuses.handle(updates)
        await self.acknowledger.drained()

    def while_planning(self, happen: Callable[[], None]) -> Callable[..., Any]:
        """A stand-in for `plan_launch` that plans, then has `happen` run on the event
        loop before the plan is handed back: what the loop may do meanwhile."""
        loop = asyncio.get_running_loop()
        real = launch_cycle.plan_launch

        async def on_loop() -> None:
            happen()

        def planning(*args: Any, **kwargs: Any) -> Any:
            plan = real(*args, **kwargs)
            asyncio.run_coroutine_threadsafe(on_loop(), loop).result()
            return plan

        return planning

    async def close(self) -> None:
        await self.background.close()
        self.launch.close()
