"""The status-update pipeline: decide, persist, act, and only then acknowledge.

The engine hands `StatusPipeline.handle` a batch of updates in arrival order (the
inbox collects them). Under the state lock each one is decided by `statuses.decide`
on what the framework knows of its task. Decisions that only track a task's state are
staged: memory changes at once, and their ZooKeeper writes go out together in one
transaction (`flush`) — before any terminal update, whose own transaction reads the
running entries. A terminal update is applied on its own (`apply`). An update is
acknowledged only once its change is durable; when a transaction fails, the staged
memory is restored and none of its updates is acknowledged, so Mesos sends them
again. The updates after a failed one go on, as reordered updates would.

Side effects of an applied decision: KILLs through the kill book, outcome counts into
the job statistics, runtime events, the run history's records (`history_records`,
spooled in the same transaction as the decision's state change — a daemon's BEGIN
and COMPLETE, which change no state, commit their unit alone — and handed to the
history writer once committed), and a launch cycle when the queues changed. Each
applied update also answers the open reconciliation run. `expire_unreachable` is the
sweep `UnreachableExpiry` runs; it applies `statuses.expire_unreachable` the same way.
`expire_launches` is what `LaunchTimeout` runs: it applies `statuses.expire_launch`,
then kills the task.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from controller.history.records import HistoryRecord
from controller.mesos import history_records, statuses
from controller.mesos.calls import MesosCallError, MesosCalls, refusal_level
from controller.mesos.executors import ExecutorRegistry
from controller.mesos.gauges import QueueGauges
from controller.mesos.history_handoff import HistoryHandoff, Packed
from controller.mesos.kills import KillBook, KillReason
from controller.mesos.reconciler import Reconciler
from controller.mesos.states import ADRIFT_STATES, Acknowledgement, StatusUpdate
from controller.mesos.statistics import JobStatistics
from controller.mesos.statuses import (
    Count,
    Decision,
    Emit,
    Kill,
    ReadyDaemon,
    RecordFailover,
    RemoveRunning,
    TaskKnowledge,
    Track,
    TrackedTask,
)
from controller.mesos.tasks import TaskId, TaskIdError
from controller.mesos.tracking import TrackedTasks
from controller.mesos.unreachable import UnreachableExpiry
from controller.metrics import FrameworkMetrics
from controller.operations import EventKind, RuntimeEvent
from controller.state import FollowUp, StateError, StateStore
from controller.state.rules import FailoverOutcome

log = logging.getLogger(__name__)


@dataclass
class _Staged:
    """Decisions that only track task states, waiting to be persisted together."""

    # task id → state to write
    writes: dict[str, str] = field(default_factory=dict)
    # task id → what memory held before (restored if the write fails)
    previous: dict[str, TrackedTask | None] = field(default_factory=dict)
    pending: list[tuple[StatusUpdate, Decision, list[HistoryRecord]]] = field(default_factory=list)

    def clear(self) -> None:
        self.writes.clear()
        self.previous.clear()
        self.pending.clear()


class StatusPipeline:
    def __init__(
        self,
        *,
        store: StateStore,
        mesos: MesosCalls,
        lock: asyncio.Lock,
        metrics: FrameworkMetrics,
        tracked: TrackedTasks,
        kills: KillBook,
        executors: ExecutorRegistry,
        reconciler: Reconciler,
        expiry: UnreachableExpiry,
        stats: JobStatistics,
        gauges: QueueGauges,
        emit: Callable[[RuntimeEvent], None],
        on_change: Callable[[], None],
        handoff: HistoryHandoff,
    ) -> None:
        self._store = store
        self._mesos = mesos
        self._lock = lock
        self._metrics = metrics
        self._tracked = tracked
        self._kills = kills
        self._executors = executors
        self._reconciler = reconciler
        self._expiry = expiry
        self._stats = stats
        self._gauges = gauges
        self._emit = emit
        self._on_change = on_change
        self._handoff = handoff

    async def handle(self, updates: Sequence[StatusUpdate]) -> None:
        """Decide every update in order; persist the state-tracking ones together (one
        transaction), each terminal one on its own; acknowledge what is durable."""
        for update in updates:
            self._metrics.task_states.labels(update.state.value).inc()
            self._executors.status_received(update)
        acks: list[Acknowledgement] = []
        async with self._lock:
            staged = _Staged()
            for update in updates:
                known = self.knowledge(update.task_id)
                decision = statuses.decide(update, known)
                records = self._history(update, decision, known)
                if not decision.of(RemoveRunning):
                    self._stage(staged, update, decision, records)
                    continue
                await self._flush(staged, acks)
                if await self.apply(decision, records):
                    self._done(update, decision, acks)
            await self._flush(staged, acks)
        for ack in acks:
            try:
                await self._mesos.acknowledge(ack)
            except MesosCallError as error:
                log.log(
                    refusal_level(error),
                    "acknowledging an update failed (Mesos will resend it): %s",
                    error,
                )

    def knowledge(self, task_id: str) -> TaskKnowledge:
        """What the state store and memory know of the task an update is about."""
        store = self._store
        try:
            meta = TaskId.parse(task_id).meta
        except TaskIdError:
            return TaskKnowledge(job=None, tracked=None)
        job = store.job(meta.job_key)
        recorded = store.running_task(task_id)
        tracked = None
        if recorded is not None:
            tracked = self._tracked.of(recorded)
            if tracked is None:
                return TaskKnowledge(job=None, tracked=None)
        app = store.app(job.app_key) if job else None
        return TaskKnowledge(
            job=job,
            tracked=tracked,
            job_disabled=job is not None and (job.spec.disabled or store.is_job_disabled(job.key)),
            app_disabled=job is not None
            and (store.is_app_disabled(job.app_key) or (app is not None and app.spec.disabled)),
            killed_on_purpose=self._kills.on_purpose(task_id),
            replacing=self._kills.is_replacing(task_id),
            other_shards_running=any(t.task_id != task_id for t in store.running_of(meta.job_key)),
        )

    def _history(
        self, update: StatusUpdate, decision: Decision, known: TaskKnowledge
    ) -> list[HistoryRecord]:
        """What the run history keeps of this decision, from what was known before it."""
        return history_records.of_update(
            update,
            decision,
            recorded=self._store.running_task(update.task_id),
            tracked=known.tracked,
            job=known.job,
            framework_id=self._store.framework_id(),
        )

    def forget(self, task_id: str) -> None:
        """The task is no longer recorded as running."""
        self._tracked.forget(task_id)
        self._kills.forget(task_id)
        self._reconciler.forget(task_id)

    def _stage(
        self,
        staged: _Staged,
        update: StatusUpdate,
        decision: Decision,
        records: list[HistoryRecord],
    ) -> None:
        """Take a decision that only tracks task states: memory now, ZooKeeper at flush."""
        for track in decision.of(Track):
            key = track.task.task_id.value
            if key not in staged.previous:
                staged.previous[key] = self._tracked.get(key)
            recorded = self._store.running_task(key)
            if recorded is not None and track.task.state != staged.writes.get(key, recorded.state):
                staged.writes[key] = track.task.state
            self._tracked.put(track.task)
        staged.pending.append((update, decision, records))

    async def _flush(self, staged: _Staged, acks: list[Acknowledgement]) -> bool:
        """Persist the staged task states in one transaction, then act on their decisions.
        On failure memory is restored and nothing staged is acknowledged (Mesos resends)."""
        if not staged.pending:
            return True
        packed = self._handoff.pack([r for _, _, records in staged.pending for r in records])
        try:
            if staged.writes or packed.ops:
                await asyncio.to_thread(
                    self._store.update_task_states, dict(staged.writes), packed.ops
                )
        except StateError as error:
            level = refusal_level(error)
            log.log(level, "%d status update(s) not applied: %s", len(staged.pending), error)
            self._tracked.restore(staged.previous)
            staged.clear()
            return False
        for update, decision, _ in staged.pending:
            if any(t.task.state in ADRIFT_STATES for t in decision.of(Track)):
                self._expiry.schedule(self.expire_unreachable)
            await self._act(decision)
            self._done(update, decision, acks)
        self._handoff.hand_over(packed)
        self._gauges.update()
        staged.clear()
        return True

    def _done(self, update: StatusUpdate, decision: Decision, acks: list[Acknowledgement]) -> None:
        """The update is applied: it answers reconciliation, and may be acknowledged."""
        self._reconciler.observe(update.task_id)
        if decision.acknowledge and (ack := update.acknowledgement) is not None:
            acks.append(ack)

    async def apply(self, decision: Decision, records: Sequence[HistoryRecord] = ()) -> bool:
        """Apply a decision, its history `records` spooled with its state change; False
        when that could not be made durable."""
        packed = self._handoff.pack(records)
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
                outcome = await asyncio.to_thread(
                    self._store.task_terminated, task.value, follow, packed.ops
                )
                self._handoff.hand_over(packed)
                packed = Packed()
                drop_failover_event = outcome.failover not in (None, FailoverOutcome.RECORDED)
                self.forget(task.value)
                self._on_change()
            for track in decision.of(Track):
                await self._track(track.task)
            if packed.ops:
                await asyncio.to_thread(self._store.update_task_states, {}, packed.ops)
            self._handoff.hand_over(packed)
        except StateError as error:
            log.log(refusal_level(error), "status not applied (Mesos will resend it): %s", error)
            return False
        await self._act(decision, drop_failover_event=drop_failover_event)
        self._gauges.update()
        return True

    async def _act(self, decision: Decision, *, drop_failover_event: bool = False) -> None:
        """The side effects of a decision whose state change is durable."""
        for action in decision.actions:
            if isinstance(action, Kill):
                await self._kills.kill(action.task_id, action.agent_id, KillReason.STATUS)
            elif isinstance(action, Count):
                self._count(action)
            elif isinstance(action, Emit):
                if drop_failover_event and action.event.kind is EventKind.FAILOVER:
                    continue
                self._emit(action.event)

    async def _track(self, task: TrackedTask) -> None:
        key = task.task_id.value
        recorded = self._store.running_task(key)
        if recorded is not None and recorded.state != task.state:
            await asyncio.to_thread(self._store.update_task_state, key, task.state)
        self._tracked.put(task)
        if task.state in ADRIFT_STATES:
            self._expiry.schedule(self.expire_unreachable)

    def _count(self, count: Count) -> None:
        if count.succeeded:
            self._stats.succeeded(count.job_key, count.at)
            self._metrics.outcomes.labels("succeeded").inc()
        else:
            self._stats.failed(count.job_key)
            self._metrics.outcomes.labels("failed").inc()

    async def expire_unreachable(self) -> bool:
        """Give up on tasks adrift for longer than the grace; True while some are adrift."""
        grace = self._expiry.grace
        async with self._lock:
            for task in self._tracked.adrift():
                known = self.knowledge(task.task_id.value)
                now = datetime.now(UTC)
                decision = statuses.expire_unreachable(known, now, grace)
                if decision.actions:
                    log.warning("task %s unreachable for over %ss: lost", task.task_id, grace)
                    lost = statuses.lost_update(task, now, grace)
                    records = self._history(lost, decision, known) if lost else []
                    await self.apply(decision, records)
        return bool(self._tracked.adrift())

    async def expire_launches(
        self, overdue: Sequence[TrackedTask], now: datetime, limit: float
    ) -> None:
        """End launches that timed out as dropped ones, then kill their tasks (the kill
        comes after the end is durable, so it is never taken for one on purpose). Not
        while a reconciliation is open: its answers may show the task running (an update
        missed while no one led), and the next check comes soon."""
        async with self._lock:
            if self._reconciler.reconciling:
                return
            for task in overdue:
                key = task.task_id.value
                known = self.knowledge(key)
                if known.tracked is None or known.tracked.state != task.state:
                    continue  # ended or moved on while waiting for the lock
                decision = statuses.expire_launch(known, now, limit)
                update = statuses.launch_timeout_update(known.tracked, now, limit)
                log.warning(
                    # A deposed leader gets here too, until it notices: its commit fails
                    # and it kills nothing.
                    "job %s: task %s %s for over %ss: launch timed out; killing it once "
                    "its end is committed",
                    task.task_id.job_key,
                    key,
                    task.state.words,
                    limit,
                )
                if await self.apply(decision, self._history(update, decision, known)):
                    await self._kills.kill(key, task.task_id.agent_id, KillReason.LAUNCH_TIMEOUT)
