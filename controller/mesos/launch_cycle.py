"""The launch cycle: plan, commit, accept, release, settle the offer pool.

`LaunchCycle` owns the term's `OfferPool` and runs a cycle whenever something may have
made work launchable (`changed`: a failover entry, a finished task, new offers, a
settled reconciliation), an offer reaches its hold bound or the next cron fire comes
within the fire lead (offers are asked for and held ahead of it) — after a short
batching window, never on a poll — and at once after a cron fire (`fired`). One
cycle, under the state lock (as bulk work, after fires and changes):

1. plan (`launcher.plan_launch`, on a worker thread) from snapshots of the queues,
   the held offers and the jobs the open reconciliation has not settled, and take the
   planned agents' offers out of the pool (in turn with a fire's plan ahead);
2. drop stale queue entries;
3. commit the plan's tasks as running in ZooKeeper (`StateStore.commit_launch`),
   before Mesos hears of them, with their run history records spooled in the same
   transaction, and hand those to the history (an append to its buffer: the database
   is never waited for);

then, outside the lock: one ACCEPT per agent, all in flight together (a failed ACCEPT
has its tasks reconciled at once and its offers declined), placement reporting
(LAUNCHED events; unplaceable work after its grace, see `unplaceable`), and the pool's
declines, REVIVE and SUPPRESS.

A cron fire's own launch is planned before it comes (`prepare`, announced by the
producer; it writes no state, so it takes no state lock) and recorded with the fire,
whose own thread then sends the ACCEPTs (`record_fire`); `ahead` says how and when such
a plan is dropped. Its collaborators come from the engine.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeVar

from controller.mesos import history_records
from controller.mesos.ahead import (
    FireLaunch,
    PackedAhead,
    PreparedFire,
    launches,
    recorded_plan,
    usable,
)
from controller.mesos.background import Background
from controller.mesos.calls import MesosCallError, MesosCalls, refusal_level
from controller.mesos.events import JsonObject
from controller.mesos.executors import ExecutorRegistry
from controller.mesos.gauges import QueueGauges
from controller.mesos.history_handoff import HistoryHandoff, Packed
from controller.mesos.launcher import AgentLaunch, LaunchInputs, LaunchPlan, plan_launch
from controller.mesos.offers import HeldOffer, OfferPool
from controller.mesos.reconciler import Reconciler
from controller.mesos.settings import FrameworkSettings
from controller.mesos.state_lock import StateLock
from controller.mesos.statistics import JobStatistics
from controller.mesos.tasks import AppVersion, ExecutorId, MetaInfo, TaskIdError
from controller.mesos.tracking import TrackedTasks
from controller.mesos.unplaceable import UnplaceableGrace
from controller.mesos.woken import run_when_woken
from controller.metrics import FrameworkMetrics
from controller.operations import EventKind, RuntimeEvent
from controller.state import (
    Also,
    NotLeader,
    PartialLaunch,
    ReadyChange,
    ReadyEntry,
    RunningTask,
    StateError,
    StateStore,
    StateUnavailable,
)
from controller.state.transactions import Op

log = logging.getLogger(__name__)

T = TypeVar("T")
A = TypeVar("A")


class DeclineReason(StrEnum):
    """The `why` label of `cloudjob_offers_declined_total`."""

    IDLE = "idle"
    EXPIRED = "expired"
    ACCEPT_FAILED = "accept-failed"


class LaunchStage(StrEnum):
    """Where a launch failed (the `stage` label of `cloudjob_launch_errors_total`)."""

    CYCLE = "cycle"
    RECORD = "record"
    ACCEPT = "accept"


def _now() -> datetime:
    return datetime.now(UTC)


class LaunchCycle:
    def __init__(
        self,
        *,
        store: StateStore,
        mesos: MesosCalls,
        lock: StateLock,
        metrics: FrameworkMetrics,
        settings: FrameworkSettings,
        background: Background,
        tracked: TrackedTasks,
        executors: ExecutorRegistry,
        reconciler: Reconciler,
        stats: JobStatistics,
        gauges: QueueGauges,
        emit: Callable[[RuntimeEvent], None],
        subscribed: Callable[[], bool],
        handoff: HistoryHandoff,
        next_fire: Callable[[], datetime | None],
        fire_early: float = 0.0,
    ) -> None:
        self._store = store
        self._mesos = mesos
        self._lock = lock
        self._metrics = metrics
        self._settings = settings
        self._background = background
        self._tracked = tracked
        self._executors = executors
        self._reconciler = reconciler
        self._stats = stats
        self._gauges = gauges
        self._emit = emit
        self._subscribed = subscribed
        self._handoff = handoff
        self._next_fire = next_fire
        self._pool = OfferPool(
            hold_seconds=settings.offer_hold_seconds,
            busy_refuse_seconds=settings.decline_refuse_seconds,
            idle_refuse_seconds=settings.idle_refuse_seconds,
        )
        self._grace = UnplaceableGrace(settings.unplaceable_report_seconds)
        self._wake = asyncio.Event()
        self._work_changed = True
        # Set by a fire: the cycle runs now, even if a batching window already began.
        self._urgent = asyncio.Event()
        self._expiry: asyncio.TimerHandle | None = None
        self._prepared: list[PreparedFire] = []
        # A cycle's plan and a fire's plan ahead take turns on the held offers.
        self._planning = asyncio.Lock()
        self._fire_early = fire_early
        # A fire's own thread, so that no other work on the shared pool holds it up.
        self._fire_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cron-fire")

    # ------------------------------------------------------------------ inputs
    def changed(self) -> None:
        """Something that may make work eligible happened: run a cycle soon."""
        self._work_changed = True
        self._wake.set()

    def fired(self) -> None:
        """Runs were just added for a fire: run a cycle now. A fire's runs come in at once,
        so waiting to batch more would only make them late."""
        self._urgent.set()
        self.changed()

    def offers_received(self, offers: Iterable[dict[str, Any]]) -> None:
        now = time.monotonic()
        for raw in offers:
            try:
                offer = HeldOffer.from_mesos(raw, now)
            except (KeyError, TypeError, ValueError):
                log.warning("ignoring a malformed offer: %.200s", raw)
                continue
            self._metrics.offers_received.inc()
            self._pool.add(offer)
            self._executors.offered(offer)
        self._metrics.offers_held.set(len(self._pool.offers))
        self._wake.set()

    def offer_rescinded(self, offer_id: str) -> None:
        held = self._pool.rescind(offer_id)
        for prepared in self._prepared:
            if (agent_id := prepared.agent_of(offer_id)) is not None:
                # Placement counted all the agent's offers: its tasks wait for the queue.
                held = True
                rest = [o for o in prepared.lose_agent(agent_id) if o.offer_id != offer_id]
                self._return_offers([rest])
        if held:
            self._metrics.offers_rescinded.inc()
            self._metrics.offers_held.set(len(self._pool.offers))

    def agent_lost(self, agent_id: str) -> None:
        self._pool.drop_agent(agent_id)
        for prepared in self._prepared:
            prepared.lose_agent(agent_id)

    def executor_gone(self, executor: ExecutorId) -> None:
        self._pool.executor_gone(executor)

    def held_offers(self) -> list[str]:
        """The ids of the offers held now."""
        return list(self._pool.offers)

    def forget_offers(self) -> None:
        """The subscription ended or began anew: the master has rescinded every offer."""
        self._pool.clear()
        self._prepared.clear()
        self._metrics.offers_held.set(0)

    # ------------------------------------------------------------------ the loop
    async def run(self) -> None:
        await run_when_woken(
            self._wake,
            self._step,
            what="launch cycle",
            delay=lambda: 0.0 if self._urgent.is_set() else self._settings.launch_batch_seconds,
            failed=self._metrics.launch_errors.labels(LaunchStage.CYCLE.value).inc,
            hurry=self._urgent,
        )

    async def _step(self) -> None:
        self._urgent.clear()
        try:
            await self.cycle()
        finally:
            self._arm_expiry()

    def _arm_expiry(self) -> None:
        """Wake when the oldest held offer reaches its hold bound, or when the next cron
        fire comes within the fire lead (to ask for offers ahead of it)."""
        self._background.cancel_timer(self._expiry)
        self._expiry = None
        now = time.monotonic()
        wakes = []
        if (expiry := self._pool.next_expiry()) is not None:
            wakes.append(expiry - now)
        if (lead := self._until_lead()) > 0:
            wakes.append(lead)
        if wakes:
            self._expiry = self._background.call_later(min(wakes), self._wake.set)

    def _until_lead(self) -> float:
        """Seconds until the next cron fire is within the fire lead (0 or less: it is
        now; infinity: no fire is known)."""
        fire = self._next_fire()
        if fire is None:
            return float("inf")
        return (fire - _now()).total_seconds() - self._settings.fire_lead_seconds

    async def cycle(self) -> None:
        if not self._subscribed():
            return
        self._metrics.launch_cycles.inc()
        async with self._lock.last():
            self._release_passed()
            new_work, self._work_changed = self._work_changed, False
            async with self._planning:
                plan = await self._plan(self._inputs())
                taken, left_out = self._take_planned(plan)
            await self._drop_stale(plan)
            recorded = await self._commit(plan, taken)
        launched = await self._accept(plan, taken, recorded)
        self._report_placement(plan, launched)
        if left_out:
            # Their work still waits, on offers already held: plan it again at once.
            self.changed()
        await self._settle_pool(has_work=plan.needs_resources or left_out, new_work=new_work)
        self._gauges.update()

    # ------------------------------------------------------------------ ahead of a fire
    async def prepare(self, job_keys: Sequence[str], fire_time: datetime) -> bool:
        """Plan the coming fire's launch of the idle jobs among `job_keys` on the offers
        held now, and hold those offers back for it (see `ahead`); whether anything was
        planned (then the fire is worth handing over early, see `record_fire`).

        It writes nothing to the state, so it does not take the state lock: at 5,000
        jobs a fire's plan held it for up to 2 s while status batches, changes and the
        fire's own record waited. It takes turns with a launch cycle's plan instead, so
        that the two never place work on the same held offers; the fire re-checks every
        job when it is recorded."""
        if not self._subscribed():
            return False
        async with self._planning:
            self._release_passed()
            unsettled = self._reconciler.unsettled_jobs()
            idle = [k for k in self._store.idle_jobs(job_keys) if k not in unsettled]
            if not idle or not self._pool.offers:
                return False
            jobs, apps = self._store.jobs(), self._store.apps()
            inputs = LaunchInputs(
                jobs=jobs,
                apps=apps,
                ready={k: ReadyEntry(1, (fire_time,)) for k in idle},
                failover={},
                running=(),
                disabled_jobs=(),
                disabled_apps=(),
                unsettled_jobs=(),
                executor=self._settings.executor_options,
            )
            plan = await self._plan(inputs)
            # Jobs of an agent left out here take the ordinary path at their fire.
            offers, _ = self._take_planned(plan)
        if not plan.agents:
            return False
        built_from = {}
        for record in plan.records:
            job = jobs[record.job_key]
            built_from[job.key] = (job, apps[job.app_key])
        # Their history too: packing a unit per job was half the work left at the fire.
        history = {
            key: (tuple(tasks), self._pack_launched(tasks))
            for key, tasks in launches(plan, set(built_from), fire_time).items()
        }
        self._prepared.append(
            PreparedFire(fire_time, tuple(job_keys), plan, offers, built_from, history)
        )
        self._metrics.offers_held.set(len(self._pool.offers))
        return True

    async def record_fire(
        self, job_keys: Sequence[str], fire_time: datetime
    ) -> tuple[dict[str, ReadyChange] | None, FireLaunch]:
        """Record a cron fire of `job_keys` (the caller holds the lock), launching the
        runs planned ahead for it that are still valid: on the fire's thread, their
        transaction as soon as the fire is handed over, then, at the fire time, their
        ACCEPTs, sent without waiting for the event loop; `launch_fired` then waits for
        the master's answers. The changes are None when the fire was recorded only in
        part (what was recorded is launched). Raises StateError when nothing was
        recorded."""
        prepared = self._take_prepared(job_keys, fire_time)
        if prepared is None:
            fired = await self._on_fire_thread(
                fire_time, lambda: None, lambda _: self._store.fire(job_keys, fire_time)
            )
            return fired, FireLaunch(LaunchPlan(), {}, [])
        valid = usable(prepared, self._store.jobs(), self._store.apps())
        ready = launches(prepared.plan, valid, fire_time)
        packed: dict[str, Packed] = {}
        spool = self._spooler(packed, prepared.history)
        refuse = self._settings.decline_refuse_seconds

        def commit() -> tuple[dict[str, ReadyChange] | None, FireLaunch]:
            try:
                changes, record = self._store.fire_and_launch(job_keys, fire_time, ready, spool)
            except PartialLaunch as stopped:
                log.warning("fire recorded only in part: %s", stopped)
                changes, record = None, stopped.record
            plan = recorded_plan(prepared, record.recorded)
            taken = {a.agent_id: prepared.offers.get(a.agent_id, []) for a in plan.agents}
            return changes, FireLaunch(plan, taken, [])

        def send(
            committed: tuple[dict[str, ReadyChange] | None, FireLaunch],
        ) -> tuple[dict[str, ReadyChange] | None, FireLaunch]:
            changes, launch = committed
            plan, taken = launch.plan, launch.taken
            calls = [([o.offer_id for o in taken[a.agent_id]], a.tasks) for a in plan.agents]
            sending = self._mesos.accept_now(calls, refuse) if calls else []
            return changes, FireLaunch(plan, taken, sending)

        try:
            changes, launch = await self._on_fire_thread(fire_time, commit, send)
        except StateError:
            self._return_offers(prepared.offers.values())
            raise
        self._recorded([r for a in launch.plan.agents for r in a.records], packed)
        self._return_offers(o for a, o in prepared.offers.items() if a not in launch.taken)
        return changes, launch

    async def _on_fire_thread(
        self, fire_time: datetime, ahead: Callable[[], A], due: Callable[[A], T]
    ) -> T:
        """Run `ahead` on the fire's thread at once, then, once the wall clock reaches
        `fire_time`, `due` with its result.

        A fire planned ahead is handed over up to `fire_early` seconds before its time,
        with the state lock taken: its transaction commits while the fire waits, so the
        fire time finds nothing left but its ACCEPTs, and an event loop busy at the fire
        time no longer makes them late. The thread waits no longer than that bound from
        the handover, so a wall clock stepped back does not hold the lock."""
        early = self._fire_early

        def when_due() -> T:
            until = (fire_time - _now()).total_seconds()
            at = time.monotonic() + (min(until, early) if early > 0 else 0.0)
            done = ahead()
            if (left := at - time.monotonic()) > 0:
                time.sleep(left)
            return due(done)

        return await asyncio.get_running_loop().run_in_executor(self._fire_thread, when_due)

    def close(self) -> None:
        """End the fire's thread once its work is done."""
        self._fire_thread.shutdown(wait=False)

    async def launch_fired(self, launch: FireLaunch) -> None:
        """Wait for the master's answers to a fire's ACCEPTs sent by `record_fire`, and
        account for them."""
        if not launch.plan.agents:
            return
        answers = await asyncio.gather(
            *(asyncio.wrap_future(f) for f in launch.sending), return_exceptions=True
        )
        launched: dict[str, list[str]] = {}
        for agent, answer in zip(launch.plan.agents, answers, strict=True):
            refusal = None
            if isinstance(answer, MesosCallError):
                refusal = answer
            elif isinstance(answer, BaseException):  # the lanes closed under it
                refusal = MesosCallError(f"ACCEPT not sent: {answer!r}")
            pairs = list(zip(agent.tasks, agent.records, strict=True))
            taken = launch.taken[agent.agent_id]
            for record in await self._accepted(agent, pairs, taken, refusal):
                launched.setdefault(record.job_key, []).append(_where(agent))
        self._report_launched(launched)

    def _take_prepared(self, job_keys: Sequence[str], fire_time: datetime) -> PreparedFire | None:
        keys = set(job_keys)
        for prepared in self._prepared:
            if prepared.fire_time == fire_time and keys.intersection(prepared.jobs):
                self._prepared.remove(prepared)
                return prepared
        return None

    def _release_passed(self) -> None:
        """Give back the offers held for fires that have passed without using them."""
        too_late = _now() - timedelta(seconds=self._settings.misfire_threshold_seconds)
        passed = [p for p in self._prepared if p.fire_time < too_late]
        for prepared in passed:
            self._prepared.remove(prepared)
            self._return_offers(prepared.offers.values())

    def _return_offers(self, offers: Iterable[Iterable[HeldOffer]]) -> None:
        for agent_offers in offers:
            for offer in agent_offers:
                self._pool.add(offer)
        self._metrics.offers_held.set(len(self._pool.offers))

    def _inputs(self) -> LaunchInputs:
        store = self._store
        pending = store.pending_work()
        return LaunchInputs(
            jobs=store.jobs(),
            apps=store.apps(),
            ready=pending.ready,
            failover=pending.failover,
            running=[MetaInfo(k, s) for k, shards in pending.running.items() for s in shards],
            disabled_jobs=pending.disabled_jobs,
            disabled_apps=pending.disabled_apps,
            unsettled_jobs=self._reconciler.unsettled_jobs(),
            executor=self._settings.executor_options,
        )

    async def _plan(self, inputs: LaunchInputs) -> LaunchPlan:
        """Place `inputs` on the offers held now (the caller holds the lock). Planning
        thousands of tasks takes a while: off the loop, on snapshots."""
        return await asyncio.to_thread(
            plan_launch,
            inputs,
            list(self._pool.offers.values()),
            self._pool.agents(running_executors=self._running_executors()),
            now=_now(),
        )

    def _take_planned(self, plan: LaunchPlan) -> tuple[dict[str, list[HeldOffer]], bool]:
        """Take the offers each agent's part of `plan` was placed on, and whether an
        agent left the plan: one whose offers were declined or rescinded while planning
        does, its other offers stay held and its work waits."""
        taken: dict[str, list[HeldOffer]] = {}
        for agent in plan.agents:
            offers = self._pool.take(agent.offer_ids)
            if offers is not None:
                taken[agent.agent_id] = offers
        left_out = len(plan.agents) - len(taken)
        if left_out:
            log.info("offers of %d agent(s) went while planning", left_out)
            plan.agents = [a for a in plan.agents if a.agent_id in taken]
        return taken, left_out > 0

    def _running_executors(self) -> dict[str, set[AppVersion]]:
        """Agent id → app versions whose executor a recorded task of ours uses there."""
        versions: dict[str, set[AppVersion]] = {}
        for executor_id in self._store.running_executors():
            try:
                executor = ExecutorId.parse(executor_id)
            except TaskIdError:
                continue
            versions.setdefault(executor.agent_id, set()).add(executor.version)
        return versions

    async def _drop_stale(self, plan: LaunchPlan) -> None:
        """Delete queue entries that can never launch (job gone, shard beyond its count).

        Best effort: a failure is logged and the next cycle finds them again."""
        try:
            for job_key in plan.stale_ready:
                await asyncio.to_thread(self._store.remove_ready, job_key)
            if plan.stale_failover:
                stale = [(m.job_key, m.shard) for m in plan.stale_failover]
                await asyncio.to_thread(self._store.remove_failover, stale)
        except StateError as error:
            log.log(refusal_level(error), "stale queue entries not removed yet: %s", error)

    async def _commit(self, plan: LaunchPlan, taken: dict[str, list[HeldOffer]]) -> set[str]:
        """Record the plan's tasks as running; the ids recorded (the ones to launch)."""
        if not plan.records:
            return set()
        packed: dict[str, Packed] = {}
        try:
            record = await asyncio.to_thread(
                self._store.commit_launch, plan.records, self._spooler(packed)
            )
        except PartialLaunch as partial:
            log.warning("launch recorded only in part: %s", partial)
            record = partial.record
        except (StateError, ValueError) as error:
            log.log(
                refusal_level(error),
                "launch not recorded, trying again on the next cycle: %s",
                error,
            )
            self._metrics.launch_errors.labels(LaunchStage.RECORD.value).inc()
            for offers in taken.values():
                for offer in offers:
                    self._pool.add(offer)
            if not isinstance(error, NotLeader | StateUnavailable):
                self.changed()
            return set()
        self._recorded(record.recorded, packed)
        return {task.task_id for task in record.recorded}

    def _spooler(
        self, packed: dict[str, Packed], ahead: Mapping[str, PackedAhead] = MappingProxyType({})
    ) -> Also:
        """The `also` of a launch's commit: each job's launch history records, spooled in
        the same transaction; `packed` keeps each job's unit to hand over once committed.
        A unit packed `ahead` for exactly these tasks is used as it is."""

        def spool(tasks: Sequence[RunningTask]) -> tuple[Op, ...]:
            job_key = tasks[0].job_key
            found = ahead.get(job_key)
            if found is not None and found[0] == tuple(tasks):
                unit = found[1]
            else:
                unit = self._pack_launched(tasks)
            packed[job_key] = unit
            return unit.ops

        return spool

    def _pack_launched(self, tasks: Sequence[RunningTask]) -> Packed:
        return self._handoff.pack(
            [r for t in tasks for r in history_records.launched(t, self._store.job(t.job_key))]
        )

    def _recorded(self, recorded: Sequence[RunningTask], packed: dict[str, Packed]) -> None:
        for task in recorded:
            self._tracked.adopt(task)
            self._executors.task_recorded(task)
        for job_key in dict.fromkeys(task.job_key for task in recorded):
            self._handoff.hand_over(packed[job_key])

    async def _accept(
        self, plan: LaunchPlan, taken: dict[str, list[HeldOffer]], recorded: set[str]
    ) -> dict[str, list[str]]:
        """One ACCEPT per agent, all in flight together; job key → agents its tasks
        were sent to."""
        launched: dict[str, list[str]] = {}
        sent = await asyncio.gather(
            *(self._accept_agent(a, taken.get(a.agent_id, []), recorded) for a in plan.agents)
        )
        for agent, records in zip(plan.agents, sent, strict=True):
            for record in records:
                launched.setdefault(record.job_key, []).append(_where(agent))
        return launched

    async def _accept_agent(
        self, agent: AgentLaunch, offers: list[HeldOffer], recorded: set[str]
    ) -> list[RunningTask]:
        """The ACCEPT of one agent's recorded tasks; the records of those launched."""
        pairs = [
            (i, r) for i, r in zip(agent.tasks, agent.records, strict=True) if r.task_id in recorded
        ]
        if not pairs:
            for offer in offers:
                self._pool.add(offer)
            return []
        refusal: MesosCallError | None = None
        try:
            await self._mesos.accept(
                [o.offer_id for o in offers],
                [i for i, _ in pairs],
                self._settings.decline_refuse_seconds,
            )
        except MesosCallError as error:
            refusal = error
        return await self._accepted(agent, pairs, offers, refusal)

    async def _accepted(
        self,
        agent: AgentLaunch,
        pairs: list[tuple[JsonObject, RunningTask]],
        offers: list[HeldOffer],
        refusal: MesosCallError | None,
    ) -> list[RunningTask]:
        """Account for the ACCEPT of one agent's `pairs`; the records of those launched.
        A refused one has its tasks reconciled at once and its offers declined."""
        if refusal is not None:
            log.log(
                refusal_level(refusal),
                "ACCEPT on agent %s failed; reconciling its %d tasks: %s",
                agent.agent_id,
                len(pairs),
                refusal,
            )
            self._metrics.launch_errors.labels(LaunchStage.ACCEPT.value).inc()
            self._reconciler.ask([(r.task_id, r.agent_id) for _, r in pairs])
            await self._release(offers)
            return []
        self._metrics.accepts.inc()
        accepted_at = _now()
        for _, record in pairs:
            self._metrics.launches.labels(record.source.value).inc()
            if record.fire_time is not None:
                skew = (accepted_at - record.fire_time).total_seconds()
                self._metrics.fire_to_accept.observe(max(0.0, skew))
        return [r for _, r in pairs]

    async def _release(self, offers: list[HeldOffer]) -> None:
        """Decline the offers of an ACCEPT that failed: if the master never saw it, they
        would stay allocated to this framework for good (Mesos has no default offer
        timeout); if it did, the master ignores a decline of used offers."""
        if not offers:
            return
        try:
            await self._mesos.decline([o.offer_id for o in offers], 0.0)
            self._metrics.offers_declined.labels(DeclineReason.ACCEPT_FAILED.value).inc(len(offers))
        except MesosCallError as error:
            level = refusal_level(error)
            log.log(level, "declining the offers of a failed ACCEPT failed: %s", error)

    def _report_launched(self, launched: dict[str, list[str]]) -> None:
        for job_key, agents in launched.items():
            self._emit(
                RuntimeEvent(
                    kind=EventKind.LAUNCHED,
                    job_key=job_key,
                    message=f"launched {len(agents)} task(s) on {', '.join(sorted(set(agents)))}",
                    at=_now(),
                )
            )

    def _report_placement(self, plan: LaunchPlan, launched: dict[str, list[str]]) -> None:
        """Emit LAUNCHED events; report work unplaceable for longer than the grace."""
        self._report_launched(launched)
        verdict = self._grace.update(plan.unplaced, plan.invalid, time.monotonic())
        for job_key in verdict.cleared:
            self._stats.placeable(job_key)
        for job_key, reason in verdict.due.items():
            if not self._stats.unplaceable(job_key, reason):
                continue
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
        if verdict.recheck_in is not None:
            self._background.call_later(verdict.recheck_in + 0.01, self._wake.set)

    async def _settle_pool(self, *, has_work: bool, new_work: bool) -> None:
        actions = self._pool.settle(
            time.monotonic(),
            has_work=has_work,
            new_work=new_work,
            fire_due=self._until_lead() <= 0,
        )
        try:
            if actions.decline:
                await self._mesos.decline(
                    [o.offer_id for o in actions.decline], actions.refuse_seconds
                )
                why = (
                    DeclineReason.IDLE
                    if actions.suppress or not has_work
                    else DeclineReason.EXPIRED
                )
                self._metrics.offers_declined.labels(why.value).inc(len(actions.decline))
            if actions.revive:
                await self._mesos.revive()
                self._metrics.revives.inc()
            if actions.suppress:
                await self._mesos.suppress()
                self._metrics.suppressions.inc()
        except MesosCallError as error:
            log.log(refusal_level(error), "offer pool call failed: %s", error)
        self._metrics.offers_held.set(len(self._pool.offers))


def _where(agent: AgentLaunch) -> str:
    return agent.hostname or agent.agent_id
