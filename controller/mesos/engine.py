"""One leadership term of the framework: the imperative shell around the pure decisions.

`FrameworkEngine` is built when this process becomes leader and closed when it stops
leading. It owns the term's `StateStore`, `TransientProducer`, `MesosDriver` and
`OfferPool`, and runs on the asyncio loop:

- driver events are processed one at a time, in arrival order (an inbox task);
- status updates go through `statuses.decide`; the resulting queue changes are
  written to ZooKeeper and only then is the update acknowledged;
- a launch cycle runs when something changes (a fire, a failover, a finished run, new
  offers, a settled reconciliation), after a short batching window — never on a poll;
  it commits the launch to ZooKeeper, then sends one ACCEPT per agent;
- reconciliation runs after every (re-)subscription and on an interval, one at a
  time; the first one of the term holds back launches of the jobs whose tasks it
  has not accounted for yet;
- a watchdog resubscribes when the master's heartbeats stop.

Every write to the state store is serialised by one asyncio lock, so decisions are
always taken on the view they are applied to. `controller.mesos.service` is the only
user; it maps the scheduling operations onto the engine's methods.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kazoo.client import KazooClient

from controller.definitions import AppDefinition, JobDefinition
from controller.executor.messages import Stop, Trigger, encode_base64
from controller.mesos import statuses
from controller.mesos.driver import (
    AgentLost,
    Disconnected,
    DriverEvent,
    ExecutorLost,
    Heartbeat,
    MasterError,
    MesosCallError,
    MesosDriver,
    MessageReceived,
    OfferRescinded,
    OffersReceived,
    StatusReceived,
    Subscribed,
)
from controller.mesos.launcher import AgentLaunch, LaunchInputs, LaunchPlan, plan_launch
from controller.mesos.offers import HeldOffer, OfferPool, PoolActions
from controller.mesos.reconciliation import ReconciliationRun, backoff
from controller.mesos.settings import FrameworkSettings
from controller.mesos.statuses import (
    ADRIFT_STATES,
    LIVE_STATES,
    STARTED_STATES,
    Count,
    Decision,
    Emit,
    Kill,
    ReadyDaemon,
    RecordFailover,
    RemoveRunning,
    StatusUpdate,
    TaskKnowledge,
    Track,
    TrackedTask,
)
from controller.mesos.tasks import MetaInfo, TaskId, TaskIdError, executor_id, parse_executor_id
from controller.metrics import FrameworkMetrics
from controller.operations import EventKind, RuntimeEvent, SchedulingError, TriggerResult
from controller.producer import TimerKey, TransientProducer
from controller.state import (
    Change,
    FollowUp,
    Layout,
    NotLeader,
    PartialLaunch,
    RunningTask,
    StateError,
    StateStore,
    StateUnavailable,
)
from controller.state.election import Fence
from controller.state.rules import FailoverOutcome, ReadyOutcome, TriggerOutcome

log = logging.getLogger(__name__)

# The master's ERROR message for a framework id it removed (src/master/master.cpp).
REMOVED_FRAMEWORK = "Framework has been removed"
# Status updates decided and persisted together at most (one transaction: ~1 op each).
STATUS_BATCH_LIMIT = 500
# Mesos's default, for a master that does not say (heartbeat_interval_seconds).
DEFAULT_HEARTBEAT_SECONDS = 15.0


@dataclass
class JobStats:
    """What the framework has seen of a job since this process started."""

    last_fire_time: datetime | None = None
    last_success_time: datetime | None = None
    succeeded: int = 0
    failed: int = 0
    unplaceable_reason: str | None = None


@dataclass
class _Executor:
    app_key: str
    agent_id: str
    hostname: str


@dataclass
class EngineInputs:
    """Collaborators handed to the engine by the service."""

    client: KazooClient
    fence: Fence
    settings: FrameworkSettings
    metrics: FrameworkMetrics
    stats: dict[str, JobStats]
    emit: Callable[[RuntimeEvent], None]
    layout: Layout
    zk_auth: str | None
    queue_limit: int


@dataclass
class _TrackBatch:
    """Status decisions that only track task states, waiting to be persisted together."""

    # task id → state to write
    writes: dict[str, str] = field(default_factory=dict)
    # task id → what memory held before the batch (restored if the write fails)
    previous: dict[str, TrackedTask | None] = field(default_factory=dict)
    pending: list[tuple[dict[str, Any], StatusUpdate, Decision]] = field(default_factory=list)

    def clear(self) -> None:
        self.writes.clear()
        self.previous.clear()
        self.pending.clear()


@dataclass
class _Timers:
    expiry: asyncio.TimerHandle | None = None
    adrift: asyncio.TimerHandle | None = None
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)


def _now() -> datetime:
    return datetime.now(UTC)


class FrameworkEngine:
    def __init__(self, inputs: EngineInputs) -> None:
        self._in = inputs
        self.settings = inputs.settings
        self.metrics = inputs.metrics
        self.stats = inputs.stats
        self._emit = inputs.emit
        self._loop = asyncio.get_running_loop()
        self.store = StateStore(
            inputs.client,
            inputs.fence,
            layout=inputs.layout,
            auth=inputs.zk_auth,
            queue_limit=inputs.queue_limit,
        )
        self.producer = TransientProducer(
            self._on_fire,
            misfire_threshold=self.settings.misfire_threshold_seconds,
            on_misfire=self._on_misfire,
        )
        self.driver = MesosDriver(
            self.settings, self._inbox_put, self._loop, may_call=self._leading
        )
        self.pool = OfferPool(
            hold_seconds=self.settings.offer_hold_seconds,
            busy_refuse_seconds=self.settings.decline_refuse_seconds,
            idle_refuse_seconds=self.settings.idle_refuse_seconds,
        )
        self._inbox: asyncio.Queue[DriverEvent] = asyncio.Queue()
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._work_changed = True
        self._tracked: dict[str, TrackedTask] = {}
        self._killed: dict[str, float] = {}
        self._executors: dict[str, _Executor] = {}
        self._unplaced_since: dict[str, float] = {}
        self._subscribed = False
        # "host:port" of the master subscribed to (its state endpoint), None when not.
        self._master: str | None = None
        self._subscriptions = 0
        self._last_event = time.monotonic()
        self._reconciliation: ReconciliationRun | None = None
        self._reconcile_task: asyncio.Task[None] | None = None
        self._watchdog_task: asyncio.Task[None] | None = None
        self._answered = asyncio.Event()
        self._timers = _Timers()
        self._closed = False

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        report = await asyncio.to_thread(self.store.load)
        log.info(
            "state loaded: %d apps, %d jobs, %d ready, %d running, %d failover",
            report.apps,
            report.jobs,
            report.ready,
            report.running,
            report.failover,
        )
        for task in self.store.running().values():
            if (tracked := _tracked_from(task)) is not None:
                self._tracked[task.task_id] = tracked
            self._remember_executor(task)
        async with self._lock:
            for job in self.store.jobs().values():
                try:
                    await self._schedule_locked(job)
                except (SchedulingError, ValueError) as error:
                    log.error("job %s not scheduled: %s", job.key, error)
        self._spawn(self._process_inbox(), "mesos events")
        self._spawn(self._launch_loop(), "launch cycle")
        if self.settings.reconcile_interval_seconds > 0:
            self._spawn(self._periodic_reconciliation(), "periodic reconciliation")
        self._update_gauges()
        await self.driver.start(self.store.framework_id())

    async def close(self) -> None:
        """Stop acting: disconnect from Mesos (failing over, never tearing down)."""
        if self._closed:
            return
        self._closed = True
        for handle in (self._timers.expiry, self._timers.adrift):
            if handle is not None:
                handle.cancel()
        tasks = list(self._timers.tasks)
        for extra in (self._reconcile_task, self._watchdog_task):
            if extra is not None:
                tasks.append(extra)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.producer.close()
        await self.driver.close()
        self.metrics.subscribed.set(0)

    def _leading(self) -> bool:
        """Whether this process still leads; false from the moment ZooKeeper is SUSPENDED
        (the election flips it synchronously), so Mesos calls stop at once."""
        try:
            self._in.fence.token()
        except NotLeader:
            return False
        return not self._closed

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        task = self._loop.create_task(coroutine, name=name)
        self._timers.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._timers.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s ended with an error", task.get_name(), exc_info=task.exception())

    # ------------------------------------------------------------------ driver events
    def _inbox_put(self, event: DriverEvent) -> None:
        if not self._closed:
            self._inbox.put_nowait(event)

    async def _process_inbox(self) -> None:
        while True:
            event: DriverEvent | None = await self._inbox.get()
            self._last_event = time.monotonic()
            while event is not None:
                following: DriverEvent | None = None
                try:
                    if isinstance(event, StatusReceived):
                        batch, following = await self._status_batch(event)
                        await self._on_statuses(batch)
                    else:
                        await self._handle(event)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("handling %s failed", type(event).__name__)
                event = following

    async def _status_batch(
        self, first: StatusReceived
    ) -> tuple[list[dict[str, Any]], DriverEvent | None]:
        """The status updates waiting right behind `first` (after the batching window),
        and the next other event, which is handled after them so order is kept."""
        if self.settings.status_batch_seconds > 0:
            await asyncio.sleep(self.settings.status_batch_seconds)
        batch = [first.status]
        while len(batch) < STATUS_BATCH_LIMIT:
            try:
                event = self._inbox.get_nowait()
            except asyncio.QueueEmpty:
                break
            self._last_event = time.monotonic()
            if not isinstance(event, StatusReceived):
                return batch, event
            batch.append(event.status)
        return batch, None

    async def _handle(self, event: DriverEvent) -> None:
        match event:
            case StatusReceived(status=status):
                await self._on_statuses([status])
            case OffersReceived(offers=offers):
                self._on_offers(offers)
            case OfferRescinded(offer_id=offer_id):
                if self.pool.rescind(offer_id):
                    self.metrics.offers_rescinded.inc()
                    self.metrics.offers_held.set(len(self.pool.offers))
            case Subscribed():
                await self._on_subscribed(event)
            case Disconnected():
                log.warning("disconnected from the Mesos master; pymesos reconnects")
                self._subscribed = False
                self._master = None
                self.pool.clear()
                self.metrics.subscribed.set(0)
                self.metrics.offers_held.set(0)
            case AgentLost(agent_id=agent_id):
                log.warning("agent %s lost", agent_id)
                self.pool.drop_agent(agent_id)
                for key in [k for k, e in self._executors.items() if e.agent_id == agent_id]:
                    del self._executors[key]
            case ExecutorLost(executor_id=lost):
                self._executors.pop(lost, None)
            case MessageReceived(executor_id=sender):
                log.debug("ignoring a message from executor %s", sender)
            case MasterError(message=message):
                log.error("the Mesos master refused this framework: %s", message)
                if REMOVED_FRAMEWORK in message:
                    await self._register_anew()
            case Heartbeat():
                pass

    async def _on_subscribed(self, event: Subscribed) -> None:
        self._subscriptions += 1
        first = self._subscriptions == 1
        self._subscribed = True
        self._master = event.master
        self.pool.clear()
        self.metrics.subscribed.set(1)
        self.metrics.subscriptions.labels("first" if first else "again").inc()
        log.info(
            "subscribed to %s as framework %s (heartbeat %ss)",
            event.master,
            event.framework_id,
            event.heartbeat_interval,
        )
        try:
            async with self._lock:
                stored = await asyncio.to_thread(self.store.save_framework_id, event.framework_id)
            self.driver.framework_id = stored
        except StateError as error:
            log.error("could not store framework id %s: %s", event.framework_id, error)
        self._start_reconciliation("subscribed", gate=first)
        self._restart_watchdog(event.heartbeat_interval or DEFAULT_HEARTBEAT_SECONDS)
        self._changed()

    async def _register_anew(self) -> None:
        """The master removed the framework (no scheduler within the failover timeout,
        or torn down): its tasks are gone and its id is refused forever. Forget the id
        and subscribe as a new framework; reconciliation then reports the recorded
        tasks as gone, and their work fails over as after any lost task."""
        dead = self.store.framework_id()
        if dead is None:
            return  # already forgotten: this is an echo of the same refusal
        try:
            async with self._lock:
                await asyncio.to_thread(self.store.forget_framework_id, dead)
        except StateError as error:
            log.error("could not forget removed framework id %s: %s", dead, error)
            return
        log.warning("framework %s was removed by the master; registering a new one", dead)
        self.metrics.resubscribes.labels("framework-removed").inc()
        self._subscribed = False
        self.pool.clear()
        self.metrics.subscribed.set(0)
        await self.driver.restart(None)

    def _on_offers(self, offers: Iterable[dict[str, Any]]) -> None:
        now = time.monotonic()
        for raw in offers:
            try:
                offer = HeldOffer.from_mesos(raw, now)
            except (KeyError, TypeError, ValueError):
                log.warning("ignoring a malformed offer: %.200s", raw)
                continue
            self.metrics.offers_received.inc()
            self.pool.add(offer)
            for app_key in offer.executor_apps:
                self._executors.setdefault(
                    executor_id(app_key, offer.agent_id),
                    _Executor(app_key, offer.agent_id, offer.hostname),
                )
        self.metrics.offers_held.set(len(self.pool.offers))
        self._wake.set()

    # ------------------------------------------------------------------ status updates
    async def _on_statuses(self, raw: list[dict[str, Any]]) -> None:
        """Decide every update in order; persist the state-tracking ones together (one
        transaction), each terminal one on its own; acknowledge what is durable."""
        received = [(status, StatusUpdate.from_mesos(status)) for status in raw]
        for _, update in received:
            self.metrics.task_states.labels(update.state or "unknown").inc()
            self._learn_executor(update)
        acks: list[dict[str, Any]] = []
        async with self._lock:
            batch = _TrackBatch()
            for status, update in received:
                decision = statuses.decide(update, self._knowledge(update.task_id))
                if not decision.of(RemoveRunning):
                    self._stage(batch, status, update, decision)
                    continue
                # Its transaction reads the running entries: the batch goes first. An
                # update that fails is not acknowledged (Mesos resends it); the ones
                # after it go on, as reordered updates would.
                await self._flush(batch, acks)
                if await self._apply(decision):
                    self._done(status, update, decision, acks)
            await self._flush(batch, acks)
        for status in acks:
            try:
                await self.driver.acknowledge(status)
            except MesosCallError as error:
                log.warning("acknowledging an update failed (Mesos will resend it): %s", error)

    def _stage(
        self, batch: _TrackBatch, status: dict[str, Any], update: StatusUpdate, decision: Decision
    ) -> None:
        """Take a decision that only tracks task states: memory now, ZooKeeper at flush."""
        for track in decision.of(Track):
            key = track.task.task_id.value
            if key not in batch.previous:
                batch.previous[key] = self._tracked.get(key)
            recorded = self.store.running_task(key)
            if recorded is not None and track.task.state != batch.writes.get(key, recorded.state):
                batch.writes[key] = track.task.state
            self._tracked[key] = track.task
        batch.pending.append((status, update, decision))

    async def _flush(self, batch: _TrackBatch, acks: list[dict[str, Any]]) -> bool:
        """Persist the staged task states in one transaction, then act on their decisions.
        On failure memory is restored and nothing staged is acknowledged (Mesos resends)."""
        if not batch.pending:
            return True
        try:
            if batch.writes:
                await asyncio.to_thread(self.store.update_task_states, dict(batch.writes))
        except StateError as error:
            log.warning("%d status update(s) not applied: %s", len(batch.pending), error)
            for key, previous in batch.previous.items():
                if previous is None:
                    self._tracked.pop(key, None)
                else:
                    self._tracked[key] = previous
            batch.clear()
            return False
        for status, update, decision in batch.pending:
            if any(t.task.state in ADRIFT_STATES for t in decision.of(Track)):
                self._schedule_adrift_check()
            await self._act(decision)
            self._done(status, update, decision, acks)
        if batch.pending:
            self._update_gauges()
        batch.clear()
        return True

    def _done(
        self,
        status: dict[str, Any],
        update: StatusUpdate,
        decision: Decision,
        acks: list[dict[str, Any]],
    ) -> None:
        """The update is applied: it answers reconciliation, and may be acknowledged."""
        run = self._reconciliation
        if run is not None:
            run.observe(update.task_id)
            if run.settled:
                self._answered.set()
        if decision.acknowledge:
            acks.append(status)

    def _learn_executor(self, update: StatusUpdate) -> None:
        """A live task's update names its executor: one STOP must reach on app removal."""
        executor, agent = update.executor_id, update.agent_id
        if not executor or not agent or update.state not in LIVE_STATES:
            return
        if (app_key := _app_of(executor)) is not None:
            self._executors.setdefault(executor, _Executor(app_key, agent, ""))

    def _knowledge(self, task_id: str) -> TaskKnowledge:
        try:
            meta = TaskId.parse(task_id).meta
        except TaskIdError:
            return TaskKnowledge(job=None, tracked=None)
        job = self.store.job(meta.job_key)
        recorded = self.store.running_task(task_id)
        tracked = None
        if recorded is not None:
            tracked = self._tracked.get(task_id) or _tracked_from(recorded)
            if tracked is None:
                return TaskKnowledge(job=None, tracked=None)
        app = self.store.app(job.app_key) if job else None
        return TaskKnowledge(
            job=job,
            tracked=tracked,
            job_disabled=job is not None
            and (job.spec.disabled or self.store.is_job_disabled(job.key)),
            app_disabled=job is not None
            and (
                self.store.is_app_disabled(job.app_key) or (app is not None and app.spec.disabled)
            ),
            killed_on_purpose=task_id in self._killed,
            other_shards_running=any(
                t.task_id != task_id for t in self.store.running_of(meta.job_key)
            ),
        )

    async def _apply(self, decision: Decision) -> bool:
        """Apply a decision; False when its state change could not be made durable."""
        removed = decision.of(RemoveRunning)
        failover = decision.of(RecordFailover)
        drop_failover_event = False
        try:
            if removed:
                task = removed[0].task_id
                if failover:
                    follow = FollowUp.RELAUNCH if failover[0].requeue else FollowUp.FAILOVER
                elif decision.of(ReadyDaemon):
                    follow = FollowUp.REQUEUE_DAEMON
                else:
                    follow = FollowUp.NONE
                outcome = await asyncio.to_thread(self.store.task_terminated, task.value, follow)
                drop_failover_event = outcome.failover not in (None, FailoverOutcome.RECORDED)
                self._forget_task(task.value)
                self._changed()
            for track in decision.of(Track):
                await self._track(track.task)
        except StateError as error:
            log.warning("status not applied (Mesos will resend it): %s", error)
            return False
        await self._act(decision, drop_failover_event=drop_failover_event)
        self._update_gauges()
        return True

    async def _act(self, decision: Decision, *, drop_failover_event: bool = False) -> None:
        """The side effects of a decision whose state change is durable."""
        for action in decision.actions:
            if isinstance(action, Kill):
                await self._kill(action.task_id, action.agent_id, why="status")
            elif isinstance(action, Count):
                self._count(action)
            elif isinstance(action, Emit):
                if drop_failover_event and action.event.kind is EventKind.FAILOVER:
                    continue
                self._emit(action.event)

    async def _track(self, task: TrackedTask) -> None:
        key = task.task_id.value
        recorded = self.store.running_task(key)
        if recorded is not None and recorded.state != task.state:
            await asyncio.to_thread(self.store.update_task_state, key, task.state)
        self._tracked[key] = task
        if task.state in ADRIFT_STATES:
            self._schedule_adrift_check()

    def _forget_task(self, task_id: str) -> None:
        self._tracked.pop(task_id, None)
        self._killed.pop(task_id, None)
        if self._reconciliation is not None:
            self._reconciliation.forget(task_id)
            if self._reconciliation.settled:
                self._answered.set()

    def _count(self, count: Count) -> None:
        stats = self.stats.setdefault(count.job_key, JobStats())
        if count.succeeded:
            stats.succeeded += 1
            stats.last_success_time = count.at
            self.metrics.outcomes.labels("succeeded").inc()
        else:
            stats.failed += 1
            self.metrics.outcomes.labels("failed").inc()

    async def _kill(self, task_id: str, agent_id: str | None, *, why: str) -> None:
        self._killed[task_id] = time.monotonic()
        if len(self._killed) > 10_000:
            oldest = sorted(self._killed, key=self._killed.__getitem__)[:5_000]
            for key in oldest:
                del self._killed[key]
        self.metrics.kills.labels(why).inc()
        try:
            await self.driver.kill(task_id, agent_id)
        except MesosCallError as error:
            log.warning("killing %s failed: %s", task_id, error)

    def _schedule_adrift_check(self) -> None:
        if self._timers.adrift is not None or self._closed:
            return
        if self.settings.unreachable_grace_seconds <= 0:
            return
        delay = max(1.0, self.settings.unreachable_grace_seconds / 4)

        def fire() -> None:
            self._timers.adrift = None
            self._spawn(self._expire_adrift(), "unreachable tasks")

        self._timers.adrift = self._loop.call_later(delay, fire)

    async def _expire_adrift(self) -> None:
        grace = self.settings.unreachable_grace_seconds
        async with self._lock:
            adrift = [t for t in self._tracked.values() if t.state in ADRIFT_STATES]
            for task in adrift:
                known = self._knowledge(task.task_id.value)
                decision = statuses.expire_unreachable(known, _now(), grace)
                if decision.actions:
                    log.warning("task %s unreachable for over %ss: lost", task.task_id, grace)
                    await self._apply(decision)
        if any(t.state in ADRIFT_STATES for t in self._tracked.values()):
            self._schedule_adrift_check()

    # ------------------------------------------------------------------ launching
    def _changed(self) -> None:
        """Something that may make work eligible happened: run a launch cycle soon."""
        self._work_changed = True
        self._wake.set()

    async def _launch_loop(self) -> None:
        while True:
            await self._wake.wait()
            if self.settings.launch_batch_seconds > 0:
                await asyncio.sleep(self.settings.launch_batch_seconds)
            self._wake.clear()
            try:
                await self._launch_cycle()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.metrics.launch_errors.labels("cycle").inc()
                log.exception("launch cycle failed; retrying on the next change")
            self._arm_expiry()

    def _arm_expiry(self) -> None:
        if self._timers.expiry is not None:
            self._timers.expiry.cancel()
            self._timers.expiry = None
        due = self.pool.next_expiry()
        if due is None or self._closed:
            return
        self._timers.expiry = self._loop.call_at(
            self._loop.time() + max(0.0, due - time.monotonic()), self._wake.set
        )

    def _inputs(self) -> LaunchInputs:
        store = self.store
        running = [MetaInfo(t.job_key, t.shard) for t in store.running().values()]
        jobs = store.jobs()
        run = self._reconciliation
        return LaunchInputs(
            jobs=jobs,
            apps=store.apps(),
            ready=store.ready(),
            failover=store.failover(),
            running=running,
            disabled_jobs={k for k in jobs if store.is_job_disabled(k)},
            disabled_apps={k for k in store.apps() if store.is_app_disabled(k)},
            unsettled_jobs=run.unsettled_jobs() if run is not None else set(),
        )

    def _running_executor_apps(self) -> dict[str, set[str]]:
        apps: dict[str, set[str]] = {}
        for task in self.store.running().values():
            if task.executor_id:
                try:
                    app_key, agent_id = parse_executor_id(task.executor_id)
                except TaskIdError:
                    continue
                apps.setdefault(agent_id, set()).add(app_key)
        return apps

    async def _launch_cycle(self) -> None:
        if not self._subscribed:
            return
        self.metrics.launch_cycles.inc()
        async with self._lock:
            new_work, self._work_changed = self._work_changed, False
            # Planning thousands of tasks takes a while: off the loop, on snapshots.
            plan = await asyncio.to_thread(
                plan_launch,
                self._inputs(),
                list(self.pool.offers.values()),
                self.pool.agents(running_executor_apps=self._running_executor_apps()),
                now=_now(),
            )
            await self._drop_stale(plan)
            taken = {a.agent_id: self.pool.take_agent(a.agent_id) for a in plan.agents}
            if gone := [a for a in plan.agents if not taken[a.agent_id]]:
                # Every offer of these agents was rescinded while planning.
                plan.agents = [a for a in plan.agents if taken[a.agent_id]]
                log.info("offers of %d agent(s) vanished while planning", len(gone))
                self._changed()
            recorded = await self._commit(plan, taken)
        launched = await self._accept(plan, taken, recorded)
        self._report_placement(plan, launched)
        await self._settle_pool(has_work=plan.needs_resources, new_work=new_work)
        self._update_gauges()

    async def _drop_stale(self, plan: LaunchPlan) -> None:
        """Delete queue entries that can never launch (job gone, shard beyond its count).

        Best effort: a failure is logged and the next cycle finds them again."""
        try:
            for job_key in plan.stale_ready:
                await asyncio.to_thread(self.store.remove_ready, job_key)
            if plan.stale_failover:
                stale = [(m.job_key, m.shard) for m in plan.stale_failover]
                await asyncio.to_thread(self.store.remove_failover, stale)
        except StateError as error:
            log.warning("stale queue entries not removed yet: %s", error)

    async def _commit(self, plan: LaunchPlan, taken: dict[str, list[HeldOffer]]) -> set[str]:
        """Record the plan's tasks as running; the ids recorded (the ones to launch)."""
        if not plan.records:
            return set()
        try:
            record = await asyncio.to_thread(self.store.commit_launch, plan.records)
        except PartialLaunch as partial:
            log.warning("launch recorded only in part: %s", partial)
            record = partial.record
        except (StateError, ValueError) as error:
            log.warning("launch not recorded, trying again on the next cycle: %s", error)
            self.metrics.launch_errors.labels("record").inc()
            for offers in taken.values():
                for offer in offers:
                    self.pool.add(offer)
            if not isinstance(error, NotLeader | StateUnavailable):
                self._changed()
            return set()
        ids = {task.task_id for task in record.recorded}
        for task in record.recorded:
            if (tracked := _tracked_from(task)) is not None:
                self._tracked[task.task_id] = tracked
            self._remember_executor(task)
        return ids

    async def _accept(
        self, plan: LaunchPlan, taken: dict[str, list[HeldOffer]], recorded: set[str]
    ) -> dict[str, list[str]]:
        """One ACCEPT per agent; job key → agents its tasks were sent to."""
        launched: dict[str, list[str]] = {}
        for agent in plan.agents:
            offers = taken.get(agent.agent_id, [])
            pairs = [
                (i, r)
                for i, r in zip(agent.tasks, agent.records, strict=True)
                if r.task_id in recorded
            ]
            if not pairs:
                for offer in offers:
                    self.pool.add(offer)
                continue
            try:
                await self.driver.accept(
                    [o.offer_id for o in offers],
                    [i for i, _ in pairs],
                    self.settings.decline_refuse_seconds,
                )
            except MesosCallError as error:
                log.warning(
                    "ACCEPT on agent %s failed; reconciling its %d tasks: %s",
                    agent.agent_id,
                    len(pairs),
                    error,
                )
                self.metrics.launch_errors.labels("accept").inc()
                self._reconcile_now([(r.task_id, r.agent_id) for _, r in pairs])
                await self._release(offers)
                continue
            self.metrics.accepts.inc()
            accepted_at = _now()
            for _, record in pairs:
                self.metrics.launches.labels(record.source.value).inc()
                if record.fire_time is not None:
                    skew = (accepted_at - record.fire_time).total_seconds()
                    self.metrics.fire_to_accept.observe(max(0.0, skew))
                launched.setdefault(record.job_key, []).append(_where(agent))
        return launched

    async def _release(self, offers: list[HeldOffer]) -> None:
        """Decline the offers of an ACCEPT that failed: if the master never saw it, they
        would stay allocated to this framework for good (Mesos has no default offer
        timeout); if it did, the master ignores a decline of used offers."""
        if not offers:
            return
        try:
            await self.driver.decline([o.offer_id for o in offers], 0.0)
            self.metrics.offers_declined.labels("accept-failed").inc(len(offers))
        except MesosCallError as error:
            log.warning("declining the offers of a failed ACCEPT failed: %s", error)

    def _report_placement(self, plan: LaunchPlan, launched: dict[str, list[str]]) -> None:
        """Emit LAUNCHED events; report work unplaceable for longer than the grace."""
        now = time.monotonic()
        grace = self.settings.unplaceable_report_seconds
        for job_key, agents in launched.items():
            self._emit(
                RuntimeEvent(
                    kind=EventKind.LAUNCHED,
                    job_key=job_key,
                    message=f"launched {len(agents)} task(s) on {', '.join(sorted(set(agents)))}",
                    at=_now(),
                )
            )
        blocked = {**plan.unplaced, **plan.invalid}
        for job_key in list(self._unplaced_since):
            if job_key not in blocked:
                del self._unplaced_since[job_key]
                if (stats := self.stats.get(job_key)) is not None:
                    stats.unplaceable_reason = None
        recheck: float | None = None
        for job_key, reason in blocked.items():
            since = self._unplaced_since.setdefault(job_key, now)
            if job_key not in plan.invalid and now - since < grace:
                left = grace - (now - since)
                recheck = left if recheck is None else min(recheck, left)
                continue
            stats = self.stats.setdefault(job_key, JobStats())
            if stats.unplaceable_reason == reason:
                continue
            stats.unplaceable_reason = reason
            log.warning("job %s not launched: %s", job_key, reason)
            self._emit(
                RuntimeEvent(
                    kind=EventKind.UNPLACEABLE,
                    job_key=job_key,
                    message=reason,
                    warning=True,
                    at=_now(),
                )
            )
        if recheck is not None and not self._closed:
            self._loop.call_later(recheck + 0.01, self._wake.set)

    async def _settle_pool(self, *, has_work: bool, new_work: bool) -> None:
        actions: PoolActions = self.pool.settle(
            time.monotonic(), has_work=has_work, new_work=new_work
        )
        try:
            if actions.decline:
                await self.driver.decline(
                    [o.offer_id for o in actions.decline], actions.refuse_seconds
                )
                why = "idle" if actions.suppress or not has_work else "expired"
                self.metrics.offers_declined.labels(why).inc(len(actions.decline))
            if actions.revive:
                await self.driver.revive()
                self.metrics.revives.inc()
            if actions.suppress:
                await self.driver.suppress()
                self.metrics.suppressions.inc()
        except MesosCallError as error:
            log.warning("offer pool call failed: %s", error)
        self.metrics.offers_held.set(len(self.pool.offers))

    # ------------------------------------------------------------------ reconciliation
    def _start_reconciliation(self, trigger: str, *, gate: bool) -> None:
        current = self._reconciliation
        task = self._reconcile_task
        if task is not None and not task.done():
            if trigger == "periodic":
                return
            gate = gate or (current is not None and current.gate_launches)
            task.cancel()
        running = {t.task_id: t.agent_id or None for t in self.store.running().values()}
        run = ReconciliationRun.start(running, gate_launches=gate)
        self._reconciliation = run
        self._answered = asyncio.Event()
        self.metrics.reconciliations.labels(trigger).inc()
        self._reconcile_task = self._loop.create_task(
            self._reconcile(run), name=f"reconciliation ({trigger})"
        )

    def _reconcile_now(self, tasks: list[tuple[str, str | None]]) -> None:
        """Ask about a few tasks right away (an ACCEPT whose outcome is unknown)."""

        async def ask() -> None:
            try:
                await self.driver.reconcile(tasks)
            except MesosCallError as error:
                log.warning("reconciling %d tasks failed: %s", len(tasks), error)

        self._spawn(ask(), "reconcile tasks")

    async def _reconcile(self, run: ReconciliationRun) -> None:
        started = time.monotonic()
        attempt = 0
        try:
            while not run.settled:
                request = run.next_round()
                if not request:
                    break
                await self.driver.reconcile(request)
                self.metrics.reconciliation_rounds.inc()
                wait = backoff(
                    attempt,
                    base=self.settings.reconcile_backoff_seconds,
                    cap=self.settings.reconcile_backoff_max_seconds,
                )
                try:
                    await asyncio.wait_for(self._answered.wait(), wait)
                except TimeoutError:
                    log.info(
                        "reconciliation: %d task(s) not answered yet (round %d)",
                        len(run.remaining),
                        run.rounds,
                    )
                attempt += 1
            await self.driver.reconcile([])
            self.metrics.reconciliation_seconds.observe(time.monotonic() - started)
            log.info("reconciliation settled after %d round(s)", run.rounds)
        except MesosCallError as error:
            log.warning("reconciliation interrupted (it restarts on resubscription): %s", error)
        finally:
            if self._reconciliation is run and run.settled:
                self._reconciliation = None
                self._changed()

    async def _periodic_reconciliation(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reconcile_interval_seconds)
            if self._subscribed:
                self._start_reconciliation("periodic", gate=False)

    # ------------------------------------------------------------------ watchdog
    def _restart_watchdog(self, interval: float) -> None:
        if self._watchdog_task is not None:
            self._watchdog_task.cancel()
        self._watchdog_task = self._loop.create_task(
            self._watchdog(interval), name="heartbeat watchdog"
        )

    async def _watchdog(self, interval: float) -> None:
        limit = self.settings.heartbeat_missed_limit * interval
        while True:
            silent = time.monotonic() - self._last_event
            if silent <= limit:
                await asyncio.sleep(limit - silent + interval / 10)
                continue
            if not self._subscribed:
                return
            log.warning(
                "no event from the Mesos master for %.1fs (heartbeat %.1fs); resubscribing",
                silent,
                interval,
            )
            self.metrics.resubscribes.labels("heartbeat").inc()
            self._subscribed = False
            self.pool.clear()
            self.metrics.subscribed.set(0)
            await self.driver.restart(self.store.framework_id())
            return

    # ------------------------------------------------------------------ producer
    async def _on_fire(self, job_keys: tuple[str, ...], fire_time: datetime) -> None:
        async with self._lock:
            keys = [k for k in job_keys if self.store.job(k) is not None]
            changes = await asyncio.to_thread(self.store.fire, keys, fire_time)
        self.metrics.fires.inc()
        for job_key, change in changes.items():
            self.stats.setdefault(job_key, JobStats()).last_fire_time = fire_time
            refused = change.outcome is ReadyOutcome.REFUSED_QUEUE_FULL
            self._emit(
                RuntimeEvent(
                    kind=EventKind.FIRED,
                    job_key=job_key,
                    message=change.message
                    if refused and change.message
                    else f"cron fired: {change.outcome.value}",
                    warning=refused,
                    at=fire_time,
                )
            )
        self._changed()
        self._update_gauges()

    def _on_misfire(self, key: TimerKey, fire_time: datetime) -> None:
        self.metrics.misfires.inc()

    # ------------------------------------------------------------------ operations
    async def put_app(self, app: AppDefinition) -> None:
        async with self._lock:
            was_disabled = self.store.is_app_disabled(app.key)
            await asyncio.to_thread(self.store.put_app, app)
            if app.spec.disabled and not was_disabled:
                await self._unschedule_jobs_locked(self.store.jobs_of_app(app.key))
            elif not app.spec.disabled:
                for job in self.store.jobs_of_app(app.key):
                    await self._schedule_locked(job)
        self._changed()

    async def remove_app(self, app_key: str) -> None:
        async with self._lock:
            for job in self.store.jobs_of_app(app_key):
                self.producer.deregister(job.key)
                self.stats.pop(job.key, None)
            dropped = await asyncio.to_thread(self.store.remove_app, app_key)
            await self._kill_dropped(dropped, why="app removed")
        executors = {k: e.agent_id for k, e in self._executors.items() if e.app_key == app_key}
        try:
            # The master knows executors this term never heard of: idle ones a previous
            # leader started, on agents whose offers are suppressed or used up.
            master, framework_id = self._master, self.store.framework_id()
            if master is None or framework_id is None:
                raise MesosCallError("not subscribed to a Mesos master")
            for key, agent_id in await self.driver.executors(master, framework_id):
                if _app_of(key) == app_key:
                    executors.setdefault(key, agent_id)
        except MesosCallError as error:
            log.warning(
                "could not list app %s's executors on the master; STOP goes to the %d "
                "known here: %s",
                app_key,
                len(executors),
                error,
            )
        for key, agent_id in sorted(executors.items()):
            try:
                await self.driver.message(agent_id, key, encode_base64(Stop()))
            except MesosCallError as error:
                log.warning("could not send STOP to executor %s: %s", key, error)
            self._executors.pop(key, None)
        self._update_gauges()

    async def disable_app(self, app_key: str) -> None:
        async with self._lock:
            await asyncio.to_thread(self.store.disable_app, app_key)
            await self._unschedule_jobs_locked(self.store.jobs_of_app(app_key))
        self._update_gauges()

    async def enable_app(self, app_key: str) -> None:
        async with self._lock:
            await asyncio.to_thread(self.store.enable_app, app_key)
            for job in self.store.jobs_of_app(app_key):
                await self._schedule_locked(job)
        self._changed()

    async def schedule(self, job: JobDefinition) -> None:
        async with self._lock:
            previous = self.store.job(job.key)
            change = await asyncio.to_thread(self.store.put_job, job)
            if self.store.is_disabled(job.key):
                await self._unschedule_jobs_locked([job])
            elif change is Change.UPDATED and previous is not None:
                await self._reschedule_locked(previous, job)
            else:
                await self._schedule_locked(job)
        self._changed()

    async def unschedule(self, job_key: str) -> None:
        async with self._lock:
            self.producer.deregister(job_key)
            self.stats.pop(job_key, None)  # a job of that name later starts afresh
            if self.store.job(job_key) is None:
                return
            dropped = await asyncio.to_thread(self.store.remove_job, job_key)
            await self._kill_dropped(dropped, why="unscheduled")
        self._update_gauges()

    async def disable_job(self, job_key: str) -> None:
        async with self._lock:
            await asyncio.to_thread(self.store.disable_job, job_key)
            job = self.store.job(job_key)
            if job is not None:
                await self._unschedule_jobs_locked([job])
        self._update_gauges()

    async def enable_job(self, job_key: str) -> None:
        async with self._lock:
            await asyncio.to_thread(self.store.enable_job, job_key)
            job = self.store.job(job_key)
            if job is not None and not self.store.is_disabled(job_key):
                await self._schedule_locked(job)
        self._changed()

    async def trigger(self, job_key: str, token: str) -> TriggerResult:
        """One extra run per new `token`, recorded in ZooKeeper with the run it causes.

        Transient: the token and one more ready run are one fenced transaction, so a
        token runs once whichever leader sees it later. Daemon: the token is recorded
        (fenced) before the executors are told, so a leader that dies in between leaves
        at most a missed run, never a doubled one; until a task of the job runs nothing
        is recorded and the caller retries."""
        job = self.store.job(job_key)
        if job is None:
            raise SchedulingError(f"job '{job_key}' is not scheduled; apply it first")
        if not job.is_daemon:
            async with self._lock:
                record = await asyncio.to_thread(self.store.record_trigger, job_key, token, _now())
            self._changed()
            return self._trigger_result(job_key, record.outcome)
        if self.store.last_trigger(job_key) == token:
            return TriggerResult.ALREADY_HANDLED
        if self.store.is_disabled(job_key):
            return self._trigger_result(job_key, TriggerOutcome.REFUSED_DISABLED)
        executors = {
            (t.agent_id, t.executor_id) for t in self.store.running_of(job_key) if t.executor_id
        }
        if not executors:
            raise SchedulingError(
                f"daemon job '{job_key}' has no running task to trigger yet; retry once launched"
            )
        if not self.driver.connected:
            raise SchedulingError(
                f"trigger of '{job_key}' not sent: not subscribed to a Mesos master; retry later"
            )
        async with self._lock:
            record = await asyncio.to_thread(self.store.record_trigger, job_key, token)
        result = self._trigger_result(job_key, record.outcome)
        if result is TriggerResult.ALREADY_HANDLED:
            return result
        data = encode_base64(Trigger(job_name=job_key))
        missed = []
        for agent_id, executor in sorted(executors):
            try:
                await self.driver.message(agent_id, executor, data)
            except MesosCallError as error:
                missed.append(f"{executor}: {error}")
        if missed:
            # Not sent again: the token is recorded, and a message that did arrive must not
            # run twice.
            raise SchedulingError(
                f"trigger {token!r} of '{job_key}' not delivered to {'; '.join(missed)} — "
                "those executors miss this run; set a new trigger value to run again"
            )
        return result

    @staticmethod
    def _trigger_result(job_key: str, outcome: TriggerOutcome) -> TriggerResult:
        if outcome is TriggerOutcome.REFUSED_DISABLED:
            raise SchedulingError(f"job '{job_key}' or its app is disabled; enable it first")
        if outcome is TriggerOutcome.ALREADY_HANDLED:
            return TriggerResult.ALREADY_HANDLED
        return TriggerResult.RAN

    async def _schedule_locked(self, job: JobDefinition) -> None:
        """SPEC §4 schedule: transient → the producer; daemon → ready (unless running)."""
        if self.store.is_disabled(job.key):
            self.producer.deregister(job.key)
            return
        if job.is_daemon:
            self.producer.deregister(job.key)
            await asyncio.to_thread(self.store.add_ready, job.key, None)
        else:
            self.producer.register(job.key, job.spec.cron, job.spec.time_zone)

    async def _reschedule_locked(self, previous: JobDefinition, job: JobDefinition) -> None:
        if previous.is_daemon or job.is_daemon:
            # A daemon runs its definition until killed: restart it with the new one.
            dropped = await asyncio.to_thread(self.store.unschedule, job.key)
            await self._kill_dropped(dropped, why="rescheduled")
        await self._schedule_locked(job)

    async def _unschedule_jobs_locked(self, jobs: Iterable[JobDefinition]) -> None:
        for job in jobs:
            self.producer.deregister(job.key)
            dropped = await asyncio.to_thread(self.store.unschedule, job.key)
            await self._kill_dropped(dropped, why="disabled")

    async def _kill_dropped(self, dropped: Iterable[RunningTask], *, why: str) -> None:
        for task in dropped:
            self._forget_task(task.task_id)
            await self._kill(task.task_id, task.agent_id, why=why)

    # ------------------------------------------------------------------ views
    def _remember_executor(self, task: RunningTask) -> None:
        if task.executor_id:
            try:
                app_key, agent_id = parse_executor_id(task.executor_id)
            except TaskIdError:
                return
            self._executors[task.executor_id] = _Executor(app_key, agent_id, task.hostname)

    def tracked(self, task_id: str) -> TrackedTask | None:
        recorded = self.store.running_task(task_id)
        if recorded is None:
            return None
        return self._tracked.get(task_id) or _tracked_from(recorded)

    def executors_of(self, app_key: str) -> list[tuple[str, str, str, int]]:
        """(agent id, hostname, executor id, running tasks) of the app's known executors."""
        counts: dict[str, int] = {}
        for task in self.store.running().values():
            if task.executor_id:
                counts[task.executor_id] = counts.get(task.executor_id, 0) + 1
        return sorted(
            (e.agent_id, e.hostname, key, counts.get(key, 0))
            for key, e in self._executors.items()
            if e.app_key == app_key
        )

    @property
    def subscribed(self) -> bool:
        return self._subscribed

    @property
    def reconciling(self) -> bool:
        return self._reconciliation is not None

    def _update_gauges(self) -> None:
        store = self.store
        ready = store.ready()
        self.metrics.ready_jobs.set(len(ready))
        self.metrics.ready_runs.set(sum(e.count for e in ready.values()))
        self.metrics.failover_shards.set(len(store.failover()))
        self.metrics.running_tasks.set(len(store.running()))
        self.metrics.unplaceable_jobs.set(
            sum(1 for s in self.stats.values() if s.unplaceable_reason)
        )


def _tracked_from(task: RunningTask) -> TrackedTask | None:
    try:
        task_id = TaskId.parse(task.task_id)
    except TaskIdError:
        log.warning("running task %s has a foreign id; it is not tracked", task.task_id)
        return None
    return TrackedTask(
        task_id=task_id,
        hostname=task.hostname,
        state=task.state,
        since=task.launched_at,
        started=task.state in STARTED_STATES,
    )


def _app_of(executor: str) -> str | None:
    try:
        return parse_executor_id(executor)[0]
    except TaskIdError:
        return None


def _where(agent: AgentLaunch) -> str:
    return agent.hostname or agent.agent_id
