"""The status-update pipeline: decide, persist, act, and only then acknowledge.

The engine hands `StatusPipeline.handle` a batch of updates in arrival order (the
inbox collects them). Under the state lock each one is decided by `statuses.decide`
on what the framework knows of its task. Decisions that only track a task's state are
staged: memory changes at once, and their ZooKeeper writes go out together in one
transaction (`flush`). Terminal updates of distinct jobs go out together too, in a
transaction of their own (`tasks_terminated`: the running entries removed, failover or
daemon follow-ups recorded). An update of a job that already has one waiting is
persisted after it, so each job's updates take effect in the order they came. An update is
acknowledged only once its change is durable (the `Acknowledger` sends it, in the
background); when a transaction fails, the staged memory is restored and none of its
updates is acknowledged, so Mesos sends them again. The updates after a failed one go
on, as reordered updates would.

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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from controller.history.records import HistoryRecord
from controller.mesos import history_records, statuses
from controller.mesos.acknowledger import Acknowledger
from controller.mesos.calls import refusal_level
from controller.mesos.executors import ExecutorRegistry
from controller.mesos.gauges import QueueGauges
from controller.mesos.history_handoff import HistoryHandoff
from controller.mesos.kills import KillBook, KillReason
from controller.mesos.reconciler import Reconciler
from controller.mesos.state_lock import StateLock
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
    # the jobs of the pending updates
    jobs: set[str] = field(default_factory=set)

    def clear(self) -> None:
        self.writes.clear()
        self.previous.clear()
        self.pending.clear()
        self.jobs.clear()


# Terminal updates persisted in one transaction at most (a few operations each).
ENDINGS_TOGETHER = 200
# Updates decided before the loop gets to run something else: a batch of hundreds decided
# in one go held a cron fire's timer up to 0.1 s.
DECIDED_BETWEEN_YIELDS = 25
# Updates decided and persisted per hold of the state lock: a batch of 500 held it up to
# 1.4 s at 3,000 jobs, while cron fires waited for it (`state_lock`). No more than
# ENDINGS_TOGETHER, so a part's terminal updates always fit one transaction.
DECIDED_PER_HOLD = 100


@dataclass(frozen=True)
class _Ending:
    """A terminal decision: its task leaves the running queue (with its follow-up)."""

    job_key: str
    task_id: str
    follow_up: FollowUp
    decision: Decision
    records: Sequence[HistoryRecord]
    update: StatusUpdate | None = None

    @classmethod
    def of(
        cls,
        decision: Decision,
        records: Sequence[HistoryRecord],
        update: StatusUpdate | None = None,
    ) -> _Ending | None:
        """The ending a decision calls for; None when it removes no running task."""
        removed = decision.of(RemoveRunning)
        if not removed:
            return None
        failover = decision.of(RecordFailover)
        if failover:
            follow = FollowUp.RELAUNCH if failover[0].requeue else FollowUp.FAILOVER
        elif decision.of(ReadyDaemon):
            follow = FollowUp.REQUEUE_DAEMON
        else:
            follow = FollowUp.NONE
        task = removed[0].task_id
        return cls(task.job_key, task.value, follow, decision, records, update)


def distinct_jobs(tasks: Iterable[TrackedTask], size: int) -> list[list[TrackedTask]]:
    """`tasks` in groups of at most `size` with no job twice in a group, in order."""
    groups: list[tuple[set[str], list[TrackedTask]]] = []
    for task in tasks:
        job = task.task_id.job_key
        for jobs, members in groups:
            if job not in jobs and len(members) < size:
                break
        else:
            jobs, members = set(), []
            groups.append((jobs, members))
        jobs.add(job)
        members.append(task)
    return [members for _, members in groups]


def _job_key(task_id: str) -> str | None:
    try:
        return TaskId.parse(task_id).job_key
    except TaskIdError:
        return None


class StatusPipeline:
    def __init__(
        self,
        *,
        store: StateStore,
        acknowledger: Acknowledger,
        lock: StateLock,
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
        self._acknowledger = acknowledger
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
        """Decide every update in order; persist the state-tracking ones together and
        the terminal ones together (one transaction each per part of the batch);
        acknowledge what is durable. Updates of one job are persisted in the order they
        came: a second one of a job waits for the first's write. The state lock is held
        for `DECIDED_PER_HOLD` updates at a time, as bulk work, everything they change
        persisted before it is let go: a cron fire or a change waiting for it goes next."""
        for update in updates:
            self._metrics.task_states.labels(update.state.value).inc()
            self._executors.status_received(update)
        for start in range(0, len(updates), DECIDED_PER_HOLD):
            acks: list[Acknowledgement] = []
            async with self._lock.last():
                await self._decide(updates[start : start + DECIDED_PER_HOLD], acks)
            self._acknowledger.send(acks)

    async def _decide(self, updates: Sequence[StatusUpdate], acks: list[Acknowledgement]) -> None:
        """Decide and persist `updates` (the caller holds the lock); what is durable
        goes into `acks`."""
        staged = _Staged()
        endings: dict[str, _Ending] = {}
        for number, update in enumerate(updates):
            if number and not number % DECIDED_BETWEEN_YIELDS:
                await asyncio.sleep(0)
            job = _job_key(update.task_id)
            if job in endings:
                # Decided on what that ending leaves (a duplicate finds its task gone).
                await self._flush(staged, acks)
                await self._end(endings, acks)
            known = self.knowledge(update.task_id)
            decision = statuses.decide(update, known)
            records = self._history(update, decision, known)
            ending = _Ending.of(decision, records, update)
            if ending is not None and job in staged.jobs:
                await self._flush(staged, acks)
                await self._end(endings, acks)
            if ending is None:
                self._stage(staged, update, decision, records, job)
            else:
                endings[ending.job_key] = ending
        await self._flush(staged, acks)
        await self._end(endings, acks)

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
        job: str | None,
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
        if job is not None:
            staged.jobs.add(job)

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
        ending = _Ending.of(decision, records)
        if ending is not None:
            return await self._terminate([ending])
        packed = self._handoff.pack(records)
        try:
            for track in decision.of(Track):
                await self._track(track.task)
            if packed.ops:
                await asyncio.to_thread(self._store.update_task_states, {}, packed.ops)
        except StateError as error:
            log.log(refusal_level(error), "status not applied (Mesos will resend it): %s", error)
            return False
        self._handoff.hand_over(packed)
        await self._act(decision)
        self._gauges.update()
        return True

    async def _end(self, endings: dict[str, _Ending], acks: list[Acknowledgement]) -> None:
        """Persist the terminal updates waiting (one transaction), then act on them."""
        if not endings:
            return
        batch = list(endings.values())
        endings.clear()
        if await self._terminate(batch):
            for ending in batch:
                assert ending.update is not None
                self._done(ending.update, ending.decision, acks)

    async def _terminate(self, endings: Sequence[_Ending]) -> bool:
        """Remove the tasks from running with their follow-ups and history records, in
        one transaction; then forget them and act. False when it was not durable."""
        packed = self._handoff.pack([r for e in endings for r in e.records])
        try:
            outcomes = await asyncio.to_thread(
                self._store.tasks_terminated,
                [(e.task_id, e.follow_up) for e in endings],
                packed.ops,
            )
        except StateError as error:
            level = refusal_level(error)
            log.log(level, "%d status update(s) not applied: %s", len(endings), error)
            return False
        self._handoff.hand_over(packed)
        self._on_change()
        for ending, outcome in zip(endings, outcomes, strict=True):
            self.forget(ending.task_id)
            for track in ending.decision.of(Track):
                self._tracked.put(track.task)
            dropped = outcome.failover not in (None, FailoverOutcome.RECORDED)
            await self._act(ending.decision, drop_failover_event=dropped)
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
        """Give up on tasks adrift for longer than the grace; True while some are adrift.
        Thousands at once (a partitioned agent) are ended a group at a time, the lock
        taken per group."""
        grace = self._expiry.grace
        for group in distinct_jobs(self._tracked.adrift(), ENDINGS_TOGETHER):
            async with self._lock.last():
                endings: list[_Ending] = []
                for task in group:
                    known = self.knowledge(task.task_id.value)
                    now = datetime.now(UTC)
                    decision = statuses.expire_unreachable(known, now, grace)
                    if not decision.actions:
                        continue
                    log.warning("task %s unreachable for over %ss: lost", task.task_id, grace)
                    lost = statuses.lost_update(task, now, grace)
                    records = self._history(lost, decision, known) if lost else []
                    if (ending := _Ending.of(decision, records)) is not None:
                        endings.append(ending)
                    else:
                        await self.apply(decision, records)
                if endings:
                    await self._terminate(endings)
        return bool(self._tracked.adrift())

    async def expire_launches(
        self, overdue: Sequence[TrackedTask], now: datetime, limit: float
    ) -> None:
        """End launches that timed out as dropped ones, then kill their tasks (the kill
        comes after the end is durable, so it is never taken for one on purpose). Not
        while a reconciliation is open: its answers may show the task running (an update
        missed while no one led), and the next check comes soon. Many at once (an agent
        that starts nothing) are ended a group at a time, the lock taken per group."""
        for group in distinct_jobs(overdue, ENDINGS_TOGETHER):
            async with self._lock.last():
                if self._reconciler.reconciling:
                    return
                endings: list[_Ending] = []
                for task in group:
                    known = self.knowledge(task.task_id.value)
                    if known.tracked is None or known.tracked.state != task.state:
                        continue  # ended or moved on while waiting for the lock
                    decision = statuses.expire_launch(known, now, limit)
                    update = statuses.launch_timeout_update(known.tracked, now, limit)
                    records = self._history(update, decision, known)
                    if (ending := _Ending.of(decision, records)) is not None:
                        endings.append(ending)
                if not endings or not await self._terminate(endings):
                    continue
            log.warning(
                "%d launch(es) %s for over %ss timed out, killing them: %s",
                len(endings),
                "/".join(sorted({t.state.words for t in group})),
                limit,
                ", ".join(e.task_id for e in endings[:5]) + (", ..." if len(endings) > 5 else ""),
            )
            for ending in endings:
                agent = TaskId.parse(ending.task_id).agent_id
                await self._kills.kill(ending.task_id, agent, KillReason.LAUNCH_TIMEOUT)
