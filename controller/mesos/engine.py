"""One leadership term of the framework: lifecycle, event dispatch, operations.

`SchedulingService` builds a `FrameworkEngine` when this process becomes leader and
closes it when it stops leading. The engine is given its collaborators — the term's
`StateStore`, the `Fence`, a `MesosFactory` (pymesos in production, a fake in unit
tests), settings, metrics, the job statistics and the runtime-event sink — and wires
the parts that do the work, each of which gets what it needs passed in (the
`RunHistory` goes to the launch cycle and the status pipeline, which hand it records):

- `Inbox`: driver events in arrival order, status updates in batches;
- `StatusPipeline`: decide, persist, act, acknowledge once durable (`Acknowledger`);
- `LaunchCycle`: plan, commit, ACCEPT, settle the offer pool;
- `Reconciler`: a run per subscription, periodic runs, on-demand asks;
- `Roller`: the roll-out of edited apps (old idle executors shut down, daemons moved);
- bookkeeping: `TrackedTasks`, `KillBook`, `ExecutorRegistry`, `UnreachableExpiry`,
  `LaunchTimeout` (tasks stuck staging or starting are killed and launched again);
- `HeartbeatWatchdog`, `TransientProducer` (cron fires), `QueueGauges`.

The engine itself starts and ends the term, dispatches driver events one at a time,
reacts to the subscription's lifecycle (subscribed, disconnected, removed by the
master) and carries out the scheduling operations. Every write to the state store is
serialised by one lock shared by the parts (`StateLock`: a cron fire's record goes
first, then the scheduling operations, then bulk work such as status batches and
launch cycles), so decisions are always taken on the view they are applied to.

Longer than the other modules (~700 lines) for a reason: the nine scheduling
operations (~230 lines) each act on several parts under the one lock — the store, the
producer, the kill book, the executor registry, the launch cycle — and the engine is
the one place that holds all of them; splitting them off would mean handing another
object every part.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial

from controller.catchup import missed_of_jobs
from controller.definitions import AppDefinition, JobDefinition
from controller.executor.messages import Stop, Trigger, encode_base64
from controller.history.records import HistoryRecord, JobRemoved
from controller.mesos import history_records, runtime
from controller.mesos.acknowledger import Acknowledger
from controller.mesos.background import Background
from controller.mesos.calls import MesosCallError, MesosFactory
from controller.mesos.events import (
    AgentLost,
    Disconnected,
    DriverEvent,
    ExecutorLost,
    Heartbeat,
    MasterError,
    MessageReceived,
    OfferRescinded,
    OffersReceived,
    StatusReceived,
    Subscribed,
    SubscriptionWithheld,
)
from controller.mesos.executors import ExecutorRegistry, app_of, parsed
from controller.mesos.gauges import GAUGE_INTERVAL, QueueGauges
from controller.mesos.history_handoff import HistoryHandoff, Packed
from controller.mesos.history_port import RunHistory
from controller.mesos.inbox import Inbox
from controller.mesos.kills import KillBook, KillReason
from controller.mesos.launch_cycle import LaunchCycle
from controller.mesos.launch_timeout import LaunchTimeout
from controller.mesos.reconciler import Reconciler, ReconcileTrigger
from controller.mesos.roller import Roller
from controller.mesos.settings import FrameworkSettings
from controller.mesos.state_lock import StateLock
from controller.mesos.statistics import JobStatistics
from controller.mesos.status_updates import StatusPipeline
from controller.mesos.tracking import TrackedTasks
from controller.mesos.unreachable import UnreachableExpiry
from controller.mesos.view import StateReader
from controller.mesos.watchdog import HeartbeatWatchdog
from controller.metrics import FrameworkMetrics
from controller.operations import (
    EventKind,
    ExecutorRuntime,
    JobRuntime,
    ReconcileKind,
    RuntimeEvent,
    SchedulingError,
    TriggerResult,
)
from controller.producer import TimerKey, TransientProducer, utc_now
from controller.state import (
    Change,
    NotLeader,
    RunningTask,
    StateError,
    StateStore,
    StateUnavailable,
)
from controller.state.election import Fence
from controller.state.rules import ReadyChange, ReadyOutcome, TriggerOutcome
from controller.state.store import Also
from controller.state.transactions import Op

log = logging.getLogger(__name__)

# The master's ERROR message for a framework id it removed (src/master/master.cpp).
REMOVED_FRAMEWORK = "Framework has been removed"
# The master's word to a subscriber whose framework id another subscription took over.
FAILED_OVER = "Framework failed over"
# Mesos's default, for a master that does not say (heartbeat_interval_seconds).
DEFAULT_HEARTBEAT_SECONDS = 15.0
# How long a SUBSCRIBE waits for ZooKeeper to confirm the leadership, and how soon a
# leader whose confirmation failed tries again.
CONFIRM_TIMEOUT_SECONDS = 5.0
SUBSCRIBE_RETRY_SECONDS = 2.0
# How long before its time a cron fire planned ahead is handed over: it takes the state
# lock, then its thread waits for the time. Covers the event loop's usual busy spells:
# a fire handed at its time started up to 0.16 s late at 1,000 jobs. A fire with nothing
# planned is handed at its time: it has no launch of its own to hurry, and the lock it
# would hold while waiting is time the status pipeline and the launch cycle lose.
FIRE_HANDED_EARLY = 0.25
# `cloudjob_cron_fire_runs_total`'s outcome for a run planned ahead and sent at its fire;
# the fire's other runs are counted by their ready-queue outcome (`ReadyOutcome`).
LAUNCHED_AT_FIRE = "launched-at-fire"


class Resubscribe(StrEnum):
    """Why the engine dropped a subscription on purpose (`cloudjob_mesos_resubscribes_total`)."""

    HEARTBEAT = "heartbeat"
    FRAMEWORK_REMOVED = "framework-removed"


class FrameworkEngine:
    def __init__(
        self,
        *,
        store: StateStore,
        fence: Fence,
        connect: MesosFactory,
        settings: FrameworkSettings,
        metrics: FrameworkMetrics,
        stats: JobStatistics,
        emit: Callable[[RuntimeEvent], None],
        history: RunHistory,
    ) -> None:
        self._store = store
        self._fence = fence
        self._settings = settings
        self._metrics = metrics
        self._stats = stats
        self._emit = emit
        self._history = history
        self._handoff = handoff = HistoryHandoff(history, store.layout)
        self._closed = False
        self._subscribed = False
        # "host:port" of the master subscribed to (its state endpoint), None when not.
        self._master: str | None = None
        self._subscriptions = 0
        self._lock = StateLock()
        self._background = background = Background(asyncio.get_running_loop())
        self._inbox = Inbox(
            batch_seconds=settings.status_batch_seconds, on_resent=metrics.updates_resent.inc
        )
        self._mesos = mesos = connect(self._inbox.put, self._leading, self._confirmed)
        self._gauges = gauges = QueueGauges(
            store, stats, metrics, interval=GAUGE_INTERVAL, later=background.call_later
        )
        self._tracked = tracked = TrackedTasks()
        self._executors = executors = ExecutorRegistry()
        self._kills = KillBook(mesos, metrics)
        self._reconciler = reconciler = Reconciler(
            store=store,
            mesos=mesos,
            settings=settings,
            metrics=metrics,
            background=background,
            on_settled=self._changed,
        )
        self._launch = LaunchCycle(
            store=store,
            mesos=mesos,
            lock=self._lock,
            metrics=metrics,
            settings=settings,
            background=background,
            tracked=tracked,
            executors=executors,
            reconciler=reconciler,
            stats=stats,
            gauges=gauges,
            emit=emit,
            subscribed=lambda: self._subscribed,
            handoff=handoff,
            next_fire=lambda: self._producer.upcoming(),
            fire_early=FIRE_HANDED_EARLY,
        )
        self._acknowledger = Acknowledger(mesos, metrics)
        self._statuses = StatusPipeline(
            store=store,
            acknowledger=self._acknowledger,
            lock=self._lock,
            metrics=metrics,
            tracked=tracked,
            kills=self._kills,
            executors=executors,
            reconciler=reconciler,
            expiry=UnreachableExpiry(settings.unreachable_grace_seconds, background),
            stats=stats,
            gauges=gauges,
            emit=emit,
            on_change=self._changed,
            handoff=handoff,
        )
        self._roller = Roller(
            store=store,
            mesos=mesos,
            lock=self._lock,
            settings=settings,
            executors=executors,
            kills=self._kills,
            reconciler=reconciler,
            executor_gone=self._launch.executor_gone,
            subscribed=lambda: self._subscribed,
        )
        self._launch_timeout = LaunchTimeout(
            settings.launch_timeout_seconds,
            tasks=tracked.all,
            subscribed=lambda: self._subscribed,
            expire=self._statuses.expire_launches,
        )
        self._watchdog = HeartbeatWatchdog(
            background,
            missed_limit=settings.heartbeat_missed_limit,
            silent_for=self._inbox.silent_for,
            on_silence=self._heartbeats_stopped,
        )
        self._producer = TransientProducer(
            self._on_fire,
            misfire_threshold=settings.misfire_threshold_seconds,
            on_misfire=self._on_misfire,
            on_upcoming=self._launch.prepare,
            lead=settings.fire_plan_ahead_seconds,
            early=FIRE_HANDED_EARLY,
        )

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Load the state, catch up the fires missed while no one led, schedule every
        job, start the loops, subscribe."""
        report = await asyncio.to_thread(self._store.load)
        log.info(
            "state loaded: %d apps, %d jobs, %d ready, %d running, %d failover",
            report.apps,
            report.jobs,
            report.ready,
            report.running,
            report.failover,
        )
        for task in self._store.running().values():
            self._tracked.adopt(task)
            self._executors.task_recorded(task)
        async with self._lock:
            now = utc_now()
            await self._catch_up_locked(now)
            jobs = self._store.jobs().values()
            # Every transient timer starts at `now`, where the catch-up ended; none of them
            # runs before all are registered (no await in between).
            for job in [j for j in jobs if not j.is_daemon]:
                try:
                    self._register_locked(job, since=now)
                except ValueError as error:
                    log.error("job %s not scheduled: %s", job.key, error)
            for job in [j for j in jobs if j.is_daemon]:
                try:
                    await self._schedule_locked(job)
                except (SchedulingError, ValueError) as error:
                    log.error("job %s not scheduled: %s", job.key, error)
        self._background.spawn(self._process_inbox(), "mesos events")
        self._background.spawn(self._launch.run(), "launch cycle")
        self._background.spawn(self._acknowledger.run(), "acknowledgements")
        self._background.spawn(self._roller.run(), "app roll-out")
        self._launch_timeout.start(self._background)
        if self._settings.reconcile_interval_seconds > 0:
            self._background.spawn(
                self._reconciler.periodic(lambda: self._subscribed), "periodic reconciliation"
            )
        self._gauges.update()
        await self._mesos.start(self._store.framework_id())

    async def close(self) -> None:
        """Stop acting: disconnect from Mesos (failing over, never tearing down)."""
        if self._closed:
            return
        self._closed = True
        self._inbox.close()
        await self._background.close()
        await self._producer.close()
        self._launch.close()
        await self._mesos.close()
        self._metrics.subscribed.set(0)

    def _leading(self) -> bool:
        """Whether this process still leads; false from the moment ZooKeeper is SUSPENDED
        (the election flips it synchronously), so Mesos calls stop at once."""
        try:
            self._fence.token()
        except NotLeader:
            return False
        return not self._closed

    def _confirmed(self) -> bool:
        """Leadership confirmed by a ZooKeeper round trip (blocking: asked on pymesos's
        IO thread before it subscribes)."""
        return self._leading() and self._fence.confirm(timeout=CONFIRM_TIMEOUT_SECONDS)

    async def _subscription_withheld(self) -> None:
        """The driver did not subscribe, leadership unconfirmed. A process that lost it is
        stopped by the election soon; one that still leads (ZooKeeper was only slow)
        tries again, with a fresh driver, while it leads."""
        await asyncio.sleep(SUBSCRIBE_RETRY_SECONDS)
        if self._leading() and not self._subscribed:
            await self._mesos.restart(self._store.framework_id())

    def _changed(self) -> None:
        self._launch.changed()
        self._roller.changed()

    # ------------------------------------------------------------------ read-only view
    @property
    def subscribed(self) -> bool:
        return self._subscribed

    @property
    def reconciling(self) -> bool:
        return self._reconciler.reconciling

    @property
    def state(self) -> StateReader:
        return self._store

    def cron_timers(self) -> dict[TimerKey, tuple[str, ...]]:
        return self._producer.timers()

    # ------------------------------------------------------------------ driver events
    async def _process_inbox(self) -> None:
        while True:
            event: DriverEvent | None = await self._inbox.get()
            while event is not None:
                following: DriverEvent | None = None
                try:
                    if isinstance(event, StatusReceived):
                        batch, following = await self._inbox.statuses_behind(event)
                        await self._statuses.handle(batch)
                        # A replacement daemon task running lets the next one move.
                        self._roller.changed()
                    else:
                        await self._handle(event)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("handling %s failed", type(event).__name__)
                event = following

    async def _handle(self, event: DriverEvent) -> None:
        match event:
            case StatusReceived(update=update):
                await self._statuses.handle([update])
            case OffersReceived(offers=offers):
                self._launch.offers_received(offers)
                self._roller.changed()
            case OfferRescinded(offer_id=offer_id):
                self._launch.offer_rescinded(offer_id)
            case Subscribed():
                await self._on_subscribed(event)
            case SubscriptionWithheld():
                self._unsubscribed()
                self._master = None
                self._background.spawn(self._subscription_withheld(), "subscribe again")
            case Disconnected():
                log.warning("disconnected from the Mesos master; pymesos reconnects")
                self._unsubscribed()
                self._master = None
            case AgentLost(agent_id=agent_id):
                log.warning("agent %s lost", agent_id)
                self._launch.agent_lost(agent_id)
                self._executors.agent_lost(agent_id)
            case ExecutorLost(executor_id=lost):
                # An idle executor exiting (status 0) is no failure: its tasks, if any,
                # get their own updates from the agent.
                self._executors.forget(lost)
                self._roller.executor_ended(lost)
                if (executor := parsed(lost)) is not None:
                    self._launch.executor_gone(executor)
            case MessageReceived(executor_id=sender):
                log.debug("ignoring a message from executor %s", sender)
            case MasterError(message=message) if FAILED_OVER in message:
                # The replica elected after this one subscribed: expected by one that no
                # longer leads (a leader frozen past its session learns it so).
                level = logging.WARNING if self._leading() else logging.INFO
                log.log(level, "another subscriber took this framework over: %s", message)
            case MasterError(message=message):
                log.error("the Mesos master refused this framework: %s", message)
                if REMOVED_FRAMEWORK in message:
                    await self._register_anew()
            case Heartbeat():
                pass

    def _unsubscribed(self) -> None:
        self._subscribed = False
        self._launch.forget_offers()
        self._metrics.subscribed.set(0)

    async def _on_subscribed(self, event: Subscribed) -> None:
        self._subscriptions += 1
        first = self._subscriptions == 1
        self._subscribed = True
        self._master = event.master
        self._launch.forget_offers()
        self._metrics.subscribed.set(1)
        self._metrics.subscriptions.labels("first" if first else "again").inc()
        log.info(
            "subscribed to %s as framework %s (heartbeat %ss)",
            event.master,
            event.framework_id,
            event.heartbeat_interval,
        )
        try:
            async with self._lock:
                await asyncio.to_thread(self._store.save_framework_id, event.framework_id)
        except StateError as error:
            log.error("could not store framework id %s: %s", event.framework_id, error)
        self._reconciler.start(ReconcileTrigger.SUBSCRIBED, gate=first)
        self._background.spawn(
            self._roller.learn(event.master, event.framework_id), "list the master's executors"
        )
        self._watchdog.restart(event.heartbeat_interval or DEFAULT_HEARTBEAT_SECONDS)
        self._changed()

    async def _heartbeats_stopped(self, silent: float, interval: float) -> None:
        if not self._subscribed:
            return
        log.warning(
            "no event from the Mesos master for %.1fs (heartbeat %.1fs); resubscribing",
            silent,
            interval,
        )
        self._metrics.resubscribes.labels(Resubscribe.HEARTBEAT.value).inc()
        self._unsubscribed()
        await self._mesos.restart(self._store.framework_id())

    async def _register_anew(self) -> None:
        """The master removed the framework (no scheduler within the failover timeout,
        or torn down): its tasks are gone and its id is refused forever. Forget the id
        and subscribe as a new framework; reconciliation then reports the recorded
        tasks as gone, and their work fails over as after any lost task."""
        dead = self._store.framework_id()
        if dead is None:
            return  # already forgotten: this is an echo of the same refusal
        try:
            async with self._lock:
                await asyncio.to_thread(self._store.forget_framework_id, dead)
        except StateError as error:
            log.error("could not forget removed framework id %s: %s", dead, error)
            return
        log.warning("framework %s was removed by the master; registering a new one", dead)
        self._metrics.resubscribes.labels(Resubscribe.FRAMEWORK_REMOVED.value).inc()
        self._unsubscribed()
        await self._mesos.restart(None)

    # ------------------------------------------------------------------ producer
    async def _on_fire(self, job_keys: tuple[str, ...], fire_time: datetime) -> None:
        async with self._lock.first():
            store = self._store
            # A fire at or before a job's last handled one ran already: a previous leader
            # whose clock was ahead of this one's handled it.
            keys = [
                k
                for k in job_keys
                if store.job(k) is not None
                and ((last := store.last_fired(k)) is None or last < fire_time)
            ]
            try:
                changes, launch = await self._launch.record_fire(keys, fire_time)
            except StateError:
                if self._leading():
                    raise
                # Recorded as handled only if its transaction committed; if not, the next
                # leader catches it up.
                log.info("fire at %s left to the next leader: no longer leading", fire_time)
                return
        await self._launch.launch_fired(launch)
        if changes is None:
            # What was recorded is launched; the rest of the fire failed as a whole fire
            # that could not be recorded does.
            self._launch.changed()
            if self._leading():
                raise StateUnavailable(f"the fire at {fire_time} was recorded only in part")
            return
        self._metrics.fires.inc()
        at_fire = {r.job_key for agent in launch.plan.agents for r in agent.records}
        for job_key, change in changes.items():
            self._fired(job_key, fire_time, change, "cron fired")
            outcome = LAUNCHED_AT_FIRE if job_key in at_fire else change.outcome.value
            self._metrics.fire_runs.labels(outcome).inc()
        self._launch.fired()
        self._roller.changed()
        self._gauges.update()

    async def _catch_up_locked(self, now: datetime) -> None:
        """Queue the fires of every transient job that no leader handled up to `now`, as
        far as its starting deadline allows, in as few transactions as the size bounds
        allow (docs/semantics.md#catching-up-after-a-leader-change)."""
        store = self._store
        found = missed_of_jobs(
            [
                (job, handled)
                for job in store.jobs().values()
                if not job.is_daemon
                and not store.is_disabled(job.key)
                and (handled := store.last_fired(job.key)) is not None
            ],
            now,
            threshold=self._settings.misfire_threshold_seconds,
        )
        for job_key, missed in found.items():
            if missed.first_skipped is not None:
                log.warning(
                    "job %s: fires from %s on were missed by more than its starting deadline "
                    "and are skipped",
                    job_key,
                    missed.first_skipped.isoformat(),
                )
        runs = {job_key: missed.run for job_key, missed in found.items() if missed.run}
        if not runs:
            return
        try:
            changes = await asyncio.to_thread(store.catch_up, runs)
        except StateError as error:
            log.error("missed fires of %d jobs not caught up: %s", len(runs), error)
            return
        for job_key, change in changes.items():
            fires = runs[job_key]
            what = f"caught up {len(fires)} missed fire(s) from {fires[0].isoformat()} on"
            self._fired(job_key, fires[-1], change, what)
        log.info(
            "caught up %d missed fires of %d jobs",
            sum(len(runs[k]) for k in changes),
            len(changes),
        )

    def _fired(self, job_key: str, fire_time: datetime, change: ReadyChange, what: str) -> None:
        self._stats.fired(job_key, fire_time)
        refused = change.outcome is ReadyOutcome.REFUSED_QUEUE_FULL
        self._emit(
            RuntimeEvent(
                kind=EventKind.FIRED,
                job_key=job_key,
                message=change.message
                if refused and change.message
                else f"{what}: {change.outcome.value}",
                warning=refused,
                at=fire_time,
            )
        )

    def _on_misfire(self, key: TimerKey, fire_time: datetime) -> None:
        self._metrics.misfires.inc()

    # ------------------------------------------------------------------ runtime facts
    def job_runtime(self, job_key: str) -> JobRuntime:
        return runtime.job_runtime(
            job_key,
            store=self._store,
            tracked=self._tracked,
            producer=self._producer,
            stats=self._stats.of(job_key),
            history=self._history.job_history(job_key),
        )

    async def reconcile(self, kind: ReconcileKind, app_key: str | None = None) -> int:
        """Ask the master about tasks now: explicit → the recorded tasks (of `app_key`'s
        jobs, if given); implicit → every task it knows. Updates come back as usual."""
        if not self._subscribed:
            raise SchedulingError("not subscribed to a Mesos master; retry later")
        self._metrics.reconciliations.labels(ReconcileTrigger.REQUESTED.value).inc()
        if kind is ReconcileKind.IMPLICIT:
            self._reconciler.ask([])
            return 0
        store = self._store
        tasks: list[tuple[str, str | None]] = [
            (task.task_id, task.agent_id)
            for task in store.running().values()
            if app_key is None or ((job := store.job(task.job_key)) and job.app_key == app_key)
        ]
        if tasks:
            self._reconciler.ask(tasks)
        log.info("reconciliation asked for: %s, %d task(s)", kind.value, len(tasks))
        return len(tasks)

    def app_executors(self, app_key: str) -> list[ExecutorRuntime]:
        return self._executors.runtime(app_key, self._store.running().values())

    # ------------------------------------------------------------------ operations
    async def put_app(self, app: AppDefinition) -> None:
        async with self._lock:
            was_disabled = self._store.is_app_disabled(app.key)
            await asyncio.to_thread(self._store.put_app, app)
            if app.spec.disabled and not was_disabled:
                await self._unschedule_jobs_locked(self._store.jobs_of_app(app.key))
            elif not app.spec.disabled:
                for job in self._store.jobs_of_app(app.key):
                    await self._schedule_locked(job)
        self._changed()

    async def remove_app(self, app_key: str) -> None:
        async with self._lock:
            for job in self._store.jobs_of_app(app_key):
                self._producer.deregister(job.key)
                self._stats.forget(job.key)
            removed = [job.key for job in self._store.jobs_of_app(app_key)]
            await self._drop(
                partial(self._store.remove_app, app_key),
                KillReason.APP_REMOVED,
                removed,
            )
        executors = self._executors.of_app(app_key)
        try:
            # The master knows executors this term never heard of: idle ones a previous
            # leader started, on agents whose offers are suppressed or used up.
            master, framework_id = self._master, self._store.framework_id()
            if master is None or framework_id is None:
                raise MesosCallError("not subscribed to a Mesos master")
            for key, agent_id in await self._mesos.executors(master, framework_id):
                if app_of(key) == app_key:
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
                await self._mesos.message(agent_id, key, encode_base64(Stop()))
            except MesosCallError as error:
                log.warning("could not send STOP to executor %s: %s", key, error)
            self._executors.forget(key)
        self._gauges.update()

    async def disable_app(self, app_key: str) -> None:
        async with self._lock:
            await asyncio.to_thread(self._store.disable_app, app_key)
            await self._unschedule_jobs_locked(self._store.jobs_of_app(app_key))
        self._gauges.update()

    async def enable_app(self, app_key: str) -> None:
        async with self._lock:
            await asyncio.to_thread(self._store.enable_app, app_key)
            for job in self._store.jobs_of_app(app_key):
                await self._schedule_locked(job)
        self._changed()

    async def schedule(self, job: JobDefinition) -> None:
        async with self._lock:
            if self._in_force(job):
                return
            previous = self._store.job(job.key)
            change = await asyncio.to_thread(self._store.put_job, job)
            if self._store.is_disabled(job.key):
                await self._unschedule_jobs_locked([job])
            elif change is Change.UPDATED and previous is not None:
                await self._reschedule_locked(previous, job)
            else:
                await self._schedule_locked(job)
        self._changed()

    async def unschedule(self, job_key: str) -> None:
        async with self._lock:
            self._producer.deregister(job_key)
            self._stats.forget(job_key)  # a job of that name later starts afresh
            if self._store.job(job_key) is None:
                return
            await self._drop(
                partial(self._store.remove_job, job_key),
                KillReason.UNSCHEDULED,
                [job_key],
            )
        self._gauges.update()

    async def disable_job(self, job_key: str) -> None:
        async with self._lock:
            await asyncio.to_thread(self._store.disable_job, job_key)
            job = self._store.job(job_key)
            if job is not None:
                await self._unschedule_jobs_locked([job])
        self._gauges.update()

    async def enable_job(self, job_key: str) -> None:
        async with self._lock:
            await asyncio.to_thread(self._store.enable_job, job_key)
            job = self._store.job(job_key)
            if job is not None and not self._store.is_disabled(job_key):
                await self._schedule_locked(job)
        self._changed()

    async def trigger(self, job_key: str, token: str) -> TriggerResult:
        """One extra run per new `token`, recorded in ZooKeeper with the run it causes.

        Transient: the token and one more ready run are one fenced transaction, so a
        token runs once whichever leader sees it later. Daemon: the token is recorded
        (fenced) before the executors are told, so a leader that dies in between leaves
        at most a missed run, never a doubled one; until a task of the job runs nothing
        is recorded and the caller retries."""
        store = self._store
        job = store.job(job_key)
        if job is None:
            raise SchedulingError(f"job '{job_key}' is not scheduled; apply it first")
        if not job.is_daemon:
            async with self._lock:
                now = datetime.now(UTC)
                record = await asyncio.to_thread(store.record_trigger, job_key, token, now)
            self._changed()
            return _trigger_result(job_key, record.outcome)
        if store.last_trigger(job_key) == token:
            return TriggerResult.ALREADY_HANDLED
        if store.is_disabled(job_key):
            return _trigger_result(job_key, TriggerOutcome.REFUSED_DISABLED)
        executors = {
            (t.agent_id, t.executor_id) for t in store.running_of(job_key) if t.executor_id
        }
        if not executors:
            raise SchedulingError(
                f"daemon job '{job_key}' has no running task to trigger yet; retry once launched"
            )
        if not self._mesos.connected:
            raise SchedulingError(
                f"trigger of '{job_key}' not sent: not subscribed to a Mesos master; retry later"
            )
        async with self._lock:
            record = await asyncio.to_thread(store.record_trigger, job_key, token)
        result = _trigger_result(job_key, record.outcome)
        if result is TriggerResult.ALREADY_HANDLED:
            return result
        data = encode_base64(Trigger(job_name=job_key))
        missed = []
        for agent_id, executor in sorted(executors):
            try:
                await self._mesos.message(agent_id, executor, data)
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

    def _in_force(self, job: JobDefinition) -> bool:
        """Whether scheduling `job` would change nothing: the core holds an equal
        definition of this transient job, enabled, and its cron timer runs. Every job is so
        after a leader's start, and the operator resumes each of them then: without this
        each resume would wait, holding the lock, for a worker thread and the store's
        write lock, and the fires would queue behind thousands of them."""
        return (
            not job.is_daemon
            and not job.spec.disabled
            and self._store.job(job.key) == job
            and not self._store.is_disabled(job.key)
            and self._producer.timer_of(job.key) == TimerKey(job.spec.cron, job.spec.time_zone)
        )

    async def _schedule_locked(self, job: JobDefinition) -> None:
        """Transient → its cron timer in the producer; daemon → ready (unless running)."""
        if job.is_daemon and not self._store.is_disabled(job.key):
            self._producer.deregister(job.key)
            await asyncio.to_thread(self._store.add_ready, job.key, None)
        else:
            self._register_locked(job)

    def _register_locked(self, job: JobDefinition, since: datetime | None = None) -> None:
        """A transient job's cron timer (none while the job or its app is disabled)."""
        if self._store.is_disabled(job.key):
            self._producer.deregister(job.key)
        else:
            self._producer.register(job.key, job.spec.cron, job.spec.time_zone, since=since)

    async def _reschedule_locked(self, previous: JobDefinition, job: JobDefinition) -> None:
        if previous.is_daemon or job.is_daemon:
            # A daemon runs its definition until killed: restart it with the new one.
            await self._drop(partial(self._store.unschedule, job.key), KillReason.RESCHEDULED)
        await self._schedule_locked(job)

    async def _unschedule_jobs_locked(self, jobs: Iterable[JobDefinition]) -> None:
        for job in jobs:
            self._producer.deregister(job.key)
            await self._drop(partial(self._store.unschedule, job.key), KillReason.DISABLED)

    async def _drop(
        self,
        change: Callable[[Also], tuple[RunningTask, ...]],
        why: KillReason,
        removed: Sequence[str] = (),
    ) -> None:
        """Make a change that drops running tasks (and removes the jobs `removed`), its
        history spooled with it; then kill what it dropped."""
        now = datetime.now(UTC)
        packed: list[Packed] = []

        def spool(dropped: Sequence[RunningTask]) -> Sequence[Op]:
            records: list[HistoryRecord] = [
                r for task in dropped for r in history_records.dropped(task, why.value, now)
            ]
            records += [JobRemoved(key, uuid.uuid4().hex, now) for key in removed]
            packed.append(self._handoff.pack(records))
            return packed[-1].ops

        dropped = await asyncio.to_thread(change, spool)
        for unit in packed:
            self._handoff.hand_over(unit)
        for task in dropped:
            self._statuses.forget(task.task_id)
            await self._kills.kill(task.task_id, task.agent_id, why)


def _trigger_result(job_key: str, outcome: TriggerOutcome) -> TriggerResult:
    if outcome is TriggerOutcome.REFUSED_DISABLED:
        raise SchedulingError(f"job '{job_key}' or its app is disabled; enable it first")
    if outcome is TriggerOutcome.ALREADY_HANDLED:
        return TriggerResult.ALREADY_HANDLED
    return TriggerResult.RAN
