"""The leader's view of the scheduling state, mirrored in ZooKeeper (docs/semantics.md#queues).

`StateStore` holds, in memory, the definitions (`config/`), the ready, running and
failover queues, the disabled flags and the framework id, rebuilt from ZooKeeper by
`load()`. Every change is decided in memory by the pure `rules`, written to ZooKeeper
in one multi-op transaction fenced on the leader's election node, and applied to the
memory view only once ZooKeeper has accepted it. Reads never touch ZooKeeper.

One store serves one leadership term: build it when elected (`on_kazoo`, or over any
`StateGateway`), call `load()`, drop it when told to stop (writes then fail with
`NotLeader` anyway). The leader is the only
writer, which is what lets versions and node existence come from memory instead of
extra reads; a transaction that ZooKeeper refuses all the same (`StateConflict`)
makes the store re-read everything first.

Threading: every method is thread-safe. Writes block on ZooKeeper (one writer at a
time); the asyncio side calls them through `asyncio.to_thread`. Reads never touch
the network nor wait for a writer's round trip (memory is changed only briefly,
after a commit), so the event loop may call them directly.

Round trips: `commit_launch` of N tasks costs ceil(ops / 1000) transactions
(ops ≈ N + jobs + consumed entries; also bounded by 512 KiB per transaction), i.e. one
for any launch of up to ~900 tasks, and no reads. `fire` adds many jobs' runs in one
transaction. `counts` exposes what was sent.

Built per term by `controller.mesos.service`; used by the parts of the Mesos
framework's engine (launch cycle, status pipeline, reconciler, producer callbacks) and
by the scheduling operations the Kubernetes side calls.

One class of ~760 lines for a reason: every write method is the same short recipe
(plan on the view under the write lock, one fenced commit, apply to memory), and
they share those locks and the view; the planning itself lives in `planning`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType

from kazoo.client import KazooClient

from controller.definitions import AppDefinition, JobDefinition
from controller.operations import QueueFull
from controller.state import planning, rules
from controller.state.connection import digest_acl
from controller.state.election import Fence
from controller.state.errors import (
    NotLeader,
    StateConflict,
    StateUnavailable,
    UnknownDefinition,
)
from controller.state.gateway import (
    OutcomeUnknown,
    RequestCounts,
    StateGateway,
    TransactionRefused,
    ZkGateway,
)
from controller.state.layout import Layout, parse_meta_info
from controller.state.loading import read_view
from controller.state.planning import Plan
from controller.state.records import FailoverEntry, LaunchSource, ReadyEntry, RunningTask
from controller.state.rules import FailoverOutcome, ReadyChange, ReadyOutcome, TriggerOutcome
from controller.state.transactions import Create, Delete, Op, SetData, chunk
from controller.state.view import View

log = logging.getLogger(__name__)

# Operations to commit in the same transaction as a change, given the running tasks
# it records or drops: how the run history's spool rides with the state it describes.
Also = Callable[[Sequence[RunningTask]], Sequence[Op]]


def _nothing_more(_: Sequence[RunningTask]) -> Sequence[Op]:
    return ()


class Change(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


class FollowUp(StrEnum):
    """What a terminal task state asks for besides leaving the running queue."""

    NONE = "none"
    FAILOVER = "failover"
    REQUEUE_DAEMON = "requeue-daemon"
    RELAUNCH = "relaunch"
    """Mesos never ran the task: record its shard for failover whatever the flag."""


@dataclass(frozen=True)
class LoadReport:
    apps: int
    jobs: int
    ready: int
    running: int
    failover: int
    dropped: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()


@dataclass(frozen=True)
class QueueSizes:
    ready_jobs: int
    ready_runs: int
    failover_shards: int
    running_tasks: int


@dataclass(frozen=True)
class PendingWork:
    """What a launch cycle plans from, copied under one lock: the ready and failover
    queues, the running shards of the jobs in them (no other job's matter) and the
    disabled flags."""

    ready: Mapping[str, ReadyEntry]
    failover: Mapping[str, FailoverEntry]
    running: Mapping[str, tuple[int, ...]]
    disabled_jobs: frozenset[str]
    disabled_apps: frozenset[str]


@dataclass(frozen=True)
class LaunchRecord:
    """What `commit_launch` recorded, and the fire time each READY job's launch consumed."""

    recorded: tuple[RunningTask, ...]
    consumed_fires: Mapping[str, datetime | None]
    consumed_failover: tuple[str, ...]
    transactions: int


@dataclass(frozen=True)
class Termination:
    """The running entry a terminal update removed (None: not recorded) and what its
    follow-up did."""

    task: RunningTask | None
    failover: FailoverOutcome | None = None
    ready: ReadyOutcome | None = None


@dataclass(frozen=True)
class TriggerRecord:
    """What `record_trigger` did: RUN means the token is now recorded (for a transient
    job, with its run added to the ready queue in the same transaction, `ready`);
    otherwise nothing was written."""

    outcome: TriggerOutcome
    ready: ReadyChange | None = None


class PartialLaunch(StateUnavailable):
    """A launch split over several transactions stopped part way; `record` holds what
    was recorded (those tasks may be launched), the rest was not."""

    def __init__(self, message: str, record: LaunchRecord) -> None:
        super().__init__(message)
        self.record = record


def _utcnow() -> datetime:
    return datetime.now(UTC)


class StateStore:
    """The ZooKeeper-backed scheduling state of one leader (see the module docstring)."""

    def __init__(
        self,
        gateway: StateGateway,
        fence: Fence,
        *,
        layout: Layout | None = None,
        queue_limit: int = rules.DEFAULT_QUEUE_LIMIT,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if queue_limit < 1:
            raise ValueError(f"queue_limit must be at least 1, got {queue_limit}")
        self.layout = layout or Layout()
        self.queue_limit = queue_limit
        self._fence = fence
        self._clock = clock
        self._zk = gateway
        # writers hold _write_lock across ZooKeeper round trips; memory is only touched
        # under _view_lock, so reads never wait for the network
        self._write_lock = threading.RLock()
        self._view_lock = threading.RLock()
        self._view = View()
        self._snapshot: View | None = None
        """the last copy `snapshot` gave, until the view changes"""
        self._loaded = False

    @classmethod
    def on_kazoo(
        cls,
        client: KazooClient,
        fence: Fence,
        *,
        layout: Layout | None = None,
        auth: str | None = None,
        queue_limit: int = rules.DEFAULT_QUEUE_LIMIT,
        clock: Callable[[], datetime] = _utcnow,
        timeout: float = 15.0,
    ) -> StateStore:
        """A store over a started kazoo client; `auth` ("user:password") puts a digest
        ACL on every node it creates."""
        return cls(
            ZkGateway(client, digest_acl(auth), timeout),
            fence,
            layout=layout,
            queue_limit=queue_limit,
            clock=clock,
        )

    @property
    def counts(self) -> RequestCounts:
        """Requests, round trips and transactions sent so far (read-only use)."""
        return self._zk.counts

    # ------------------------------------------------------------------ loading
    def load(self) -> LoadReport:
        """Rebuild the memory view from ZooKeeper and delete (fenced) every entry that
        belongs to no stored job or app (see `loading`). Costs four pipelined round
        trips plus the deletions; call once per term before anything else, and again
        after StateUnavailable."""
        with self._write_lock:
            loaded = read_view(self._zk, self.layout, self._clock())
            with self._view_lock:
                self._view, self._snapshot = loaded.view, None
            self._loaded = True
            if loaded.stale:
                # children are listed before their parents, so the deletes run in order
                self._commit([Plan([Delete(p) for p in loaded.stale])])
                log.info("dropped %d state entries of jobs that no longer exist", len(loaded.stale))
            view = loaded.view
            return LoadReport(
                apps=len(view.apps),
                jobs=len(view.jobs),
                ready=len(view.ready),
                running=len(view.by_task),
                failover=sum(len(v) for v in view.failover.values()),
                dropped=tuple(loaded.stale),
                ignored=tuple(loaded.ignored),
            )

    # ------------------------------------------------------------------ reads
    def job(self, job_key: str) -> JobDefinition | None:
        with self._view_lock:
            return self._view.jobs.get(job_key)

    def app(self, app_key: str) -> AppDefinition | None:
        with self._view_lock:
            return self._view.apps.get(app_key)

    def jobs(self) -> Mapping[str, JobDefinition]:
        with self._view_lock:
            return MappingProxyType(dict(self._view.jobs))

    def apps(self) -> Mapping[str, AppDefinition]:
        with self._view_lock:
            return MappingProxyType(dict(self._view.apps))

    def jobs_of_app(self, app_key: str) -> list[JobDefinition]:
        with self._view_lock:
            return self._view.jobs_of_app(app_key)

    def is_job_disabled(self, job_key: str) -> bool:
        with self._view_lock:
            return job_key in self._view.disabled_jobs

    def is_app_disabled(self, app_key: str) -> bool:
        with self._view_lock:
            return app_key in self._view.disabled_apps

    def is_disabled(self, job_key: str) -> bool:
        """True when the job or its app is disabled (or the job is unknown)."""
        with self._view_lock:
            job = self._view.jobs.get(job_key)
            return job is None or self._view.is_disabled(job)

    def ready(self) -> Mapping[str, ReadyEntry]:
        """Job key → pending runs."""
        with self._view_lock:
            return MappingProxyType({k: e for k, (e, _) in self._view.ready.items()})

    def ready_of(self, job_key: str) -> ReadyEntry | None:
        """The job's pending runs (None: none), without copying the queue."""
        with self._view_lock:
            known = self._view.ready.get(job_key)
            return known[0] if known else None

    def failover_of(self, job_key: str) -> tuple[int, ...]:
        """The job's shards waiting in the failover queue, in order."""
        with self._view_lock:
            return tuple(sorted(self._view.failover.get(job_key, {})))

    def queue_sizes(self) -> QueueSizes:
        """How much each queue holds, counted without copying any of them."""
        with self._view_lock:
            view = self._view
            return QueueSizes(
                ready_jobs=len(view.ready),
                ready_runs=sum(entry.count for entry, _ in view.ready.values()),
                failover_shards=sum(len(shards) for shards in view.failover.values()),
                running_tasks=len(view.by_task),
            )

    def pending_work(self) -> PendingWork:
        """The queues a launch cycle needs, in time proportional to the work pending
        rather than to the jobs defined or the tasks running."""
        with self._view_lock:
            view = self._view
            pending = set(view.ready) | set(view.failover)
            return PendingWork(
                ready={k: e for k, (e, _) in view.ready.items()},
                failover={
                    e.meta_info: e for entries in view.failover.values() for e in entries.values()
                },
                running={k: tuple(view.running[k]) for k in pending if view.running.get(k)},
                disabled_jobs=frozenset(view.disabled_jobs),
                disabled_apps=frozenset(view.disabled_apps),
            )

    def failover(self) -> Mapping[str, FailoverEntry]:
        """Meta info (`<jobKey>@-@<shard>`) → shard to run again."""
        with self._view_lock:
            return MappingProxyType(
                {
                    e.meta_info: e
                    for entries in self._view.failover.values()
                    for e in entries.values()
                }
            )

    def running(self) -> Mapping[str, RunningTask]:
        """Task id → running task, for every recorded task."""
        with self._view_lock:
            return MappingProxyType(dict(self._view.by_task))

    def running_executors(self) -> list[str]:
        """The executor ids that recorded running tasks use (one per app per agent: few)."""
        with self._view_lock:
            return list(self._view.executors)

    def idle_jobs(self, job_keys: Iterable[str]) -> list[str]:
        """Of `job_keys`, the stored transient jobs, enabled, with nothing ready, running
        or waiting for failover: those whose next fire would launch its run at once."""
        with self._view_lock:
            view = self._view
            return [
                key
                for key in job_keys
                if (job := view.jobs.get(key)) is not None
                and not job.is_daemon
                and not view.is_disabled(job)
                and key not in view.ready
                and not view.running.get(key)
                and not view.failover.get(key)
            ]

    def running_of(self, job_key: str) -> tuple[RunningTask, ...]:
        with self._view_lock:
            return tuple(self._view.running.get(job_key, {}).values())

    def running_task(self, task_id: str) -> RunningTask | None:
        with self._view_lock:
            return self._view.by_task.get(task_id)

    def is_job_running(self, job_key: str) -> bool:
        with self._view_lock:
            return bool(self._view.running.get(job_key))

    def is_shard_running(self, job_key: str, shard: int) -> bool:
        with self._view_lock:
            return shard in self._view.running.get(job_key, {})

    def framework_id(self) -> str | None:
        with self._view_lock:
            return self._view.framework_id

    def last_fired(self, job_key: str) -> datetime | None:
        """The last cron fire the job handled (None: none recorded since it was stored
        with this cron, or it is a daemon job)."""
        with self._view_lock:
            return self._view.fired.get(job_key)

    def last_trigger(self, job_key: str) -> str | None:
        """The last trigger token the job handled (None: none since it was stored)."""
        with self._view_lock:
            handled = self._view.triggers.get(job_key)
            return handled[0] if handled else None

    def snapshot(self) -> View:
        """A copy of the whole view as it is now (what the history API answers from
        while this replica leads): no ZooKeeper read; copied once per change (some
        20 ms per 10,000 jobs), the same object until the next, which nobody mutates."""
        with self._view_lock:
            if self._snapshot is None:
                self._snapshot = self._view.copy()
            return self._snapshot

    # ------------------------------------------------------------------ definitions
    def put_app(self, app: AppDefinition) -> Change:
        """Store `app` and set its disabled flag from `spec.disabled`; disabling drops
        the ready entries of its jobs in the same transaction."""
        with self._write_lock:
            view, key, now = self._view, app.key, self._clock()
            current = view.apps.get(key)
            plan = Plan()
            if current != app:
                path, data = self.layout.app(key), app.encode()
                plan = Plan(
                    [Create(path, data) if current is None else SetData(path, data)],
                    lambda: view.apps.__setitem__(key, app),
                )
            if key in view.disabled_apps and not app.spec.disabled:
                plan += planning.restart_fires(view, self.layout, view.jobs_of_app(key), now)
            plan += planning.app_flag(view, self.layout, key, app.spec.disabled)
            if not plan.ops:
                return Change.UNCHANGED
            self._commit([plan])
            return Change.CREATED if current is None else Change.UPDATED

    def remove_app(self, app_key: str, also: Also = _nothing_more) -> tuple[RunningTask, ...]:
        """Forget the app and every job of it (as `remove_job`); returns the running
        tasks dropped, which the caller kills."""
        with self._write_lock:
            view, plans, dropped = self._view, list[Plan](), list[RunningTask]()
            for job in view.jobs_of_app(app_key):
                plan, tasks = planning.remove_job(view, self.layout, job.key)
                plans.append(plan)
                dropped += tasks
            plan = planning.app_flag(view, self.layout, app_key, False)
            if app_key in view.apps:
                plan += Plan([Delete(self.layout.app(app_key))], lambda: view.forget_app(app_key))
            self._commit([*plans, plan + Plan(list(also(dropped)))])
            return tuple(dropped)

    def disable_app(self, app_key: str) -> None:
        """Mark the app disabled and drop its jobs' ready entries (one transaction)."""
        self._set_app_flag(app_key, True)

    def enable_app(self, app_key: str) -> None:
        self._set_app_flag(app_key, False)

    def put_job(self, job: JobDefinition) -> Change:
        """Store `job`, set its disabled flag from `spec.disabled`, and when it replaces
        another definition apply the update rules to its ready entry (misfire off →
        count 1; daemon → removed) and drop the failover entries of shards beyond its
        sharding count — all in one transaction. A transient job whose cron starts
        afresh (new, another cron, zone or execution type, enabled again) gets now as
        its last fire handled, so no earlier fire is caught up after a leader change."""
        with self._write_lock:
            view, key, layout = self._view, job.key, self.layout
            current = view.jobs.get(key)
            known = view.ready.get(key)
            entry = known[0] if known else None
            plan = Plan()
            if current != job:
                path, data = layout.job(key), job.encode()
                plan = Plan(
                    [Create(path, data) if current is None else SetData(path, data)],
                    lambda: view.put_job(job),
                )
                if current is not None:
                    entry = rules.after_config_update(job, entry)
                    count = job.spec.sharding_total_count
                    beyond = [s for s in view.failover.get(key, {}) if s >= count]
                    plan += planning.remove_failover(view, layout, key, beyond)
            if job.spec.disabled:
                entry = None
            elif current is None or _cron_of(current) != _cron_of(job) or key in view.disabled_jobs:
                plan += planning.restart_fires(view, layout, [job], self._clock())
            plan += planning.job_flag(view, layout, key, job.spec.disabled)
            if not job.spec.disabled:
                plan += planning.ready(view, layout, key, entry)
            if not plan.ops:
                return Change.UNCHANGED
            self._commit([plan])
            return Change.CREATED if current is None else Change.UPDATED

    def remove_job(self, job_key: str, also: Also = _nothing_more) -> tuple[RunningTask, ...]:
        """Deregister: delete the job's config, disabled flag, ready, running and
        failover entries and its last trigger token; returns the running tasks dropped
        (the caller kills them)."""
        with self._write_lock:
            plan, dropped = planning.remove_job(self._view, self.layout, job_key)
            self._commit([plan + Plan(list(also(dropped)))])
            return dropped

    def disable_job(self, job_key: str) -> None:
        """Mark the job disabled and drop its ready entry (one transaction)."""
        self._set_job_flag(job_key, True)

    def enable_job(self, job_key: str) -> None:
        self._set_job_flag(job_key, False)

    # ------------------------------------------------------------------ ready queue
    def add_ready(self, job_key: str, fire_time: datetime | None = None) -> ReadyChange:
        """One fire of a transient job, or the scheduling of a daemon job
        (docs/semantics.md#ready); a trigger's run is added by `record_trigger`.

        Raises UnknownDefinition for an unknown job and QueueFull when the job would
        need a new entry in a full queue (logged); a disabled job is skipped."""
        change = self.fire([job_key], fire_time)[job_key]
        if change.outcome is ReadyOutcome.REFUSED_QUEUE_FULL:
            raise QueueFull(change.message)
        return change

    def fire(
        self, job_keys: Iterable[str], fire_time: datetime | None = None
    ) -> dict[str, ReadyChange]:
        """`add_ready` for many jobs at once (a cron shared by thousands of jobs) in as
        few transactions as the size bounds allow. Unknown jobs raise UnknownDefinition
        before anything is written; queue-full refusals are logged and returned as
        REFUSED_QUEUE_FULL outcomes, not raised."""
        return self.fire_and_launch(job_keys, fire_time, {})[0]

    def fire_and_launch(
        self,
        job_keys: Iterable[str],
        fire_time: datetime | None,
        launches: Mapping[str, Sequence[RunningTask]],
        also: Also = _nothing_more,
    ) -> tuple[dict[str, ReadyChange], LaunchRecord]:
        """`fire`, and launch at once the fire's run of the jobs given tasks planned
        for it ahead (job key → every shard's task, READY with this fire time): for a
        job whose fire adds a run of one to an empty queue while none of its tasks runs
        or waits for failover, the fire is recorded with its tasks as running instead
        of a ready entry that the next launch cycle would consume — what `fire` then
        `commit_launch` would write, in the same transactions as the other jobs' runs.
        Other jobs' planned tasks are not recorded. `also` is asked once per launched
        job, as `commit_launch` does. Raises PartialLaunch when a multi-transaction fire
        stopped part way after recording some launches."""
        with self._write_lock:
            view = self._view
            keys = list(dict.fromkeys(job_keys))
            if unknown := [k for k in keys if k not in view.jobs]:
                raise UnknownDefinition(f"jobs not stored (put_job them first): {unknown}")
            results: dict[str, ReadyChange] = {}
            entries = len(view.ready)
            plans = []
            for key in keys:
                change = planning.ready_change(
                    view,
                    key,
                    fire_time,
                    entries=entries,
                    job_running=bool(view.running.get(key)),
                    limit=self.queue_limit,
                )
                results[key] = change
                tasks = launches.get(key, ())
                if (
                    fire_time is not None
                    and tasks
                    and planning.launches_at_fire(view, key, change, fire_time, tasks)
                ):
                    launched = planning.fired(view, self.layout, key, fire_time)
                    launched += planning.add_running(view, self.layout, key, tasks)
                    plans.append(launched + Plan(list(also(tasks))))
                    continue
                entries += change.creates_entry
                if change.outcome.changed:
                    plan = planning.ready(view, self.layout, key, change.entry)
                    if fire_time is not None and not view.jobs[key].is_daemon:
                        plan += planning.fired(view, self.layout, key, fire_time)
                    plans.append(plan)
            applied: list[Plan] = []
            try:
                transactions = self._commit(plans, applied)
            except (NotLeader, StateConflict, StateUnavailable) as exc:
                record = _launch_record(applied, len(applied))
                if not record.recorded:
                    raise
                raise PartialLaunch(
                    f"the fire at {fire_time} was recorded only in part: {exc}", record
                ) from exc
            return results, _launch_record(plans, transactions)

    def catch_up(self, missed: Mapping[str, Sequence[datetime]]) -> dict[str, ReadyChange]:
        """Queue fires of transient jobs that no leader handled (job key → fire times,
        oldest first; `controller.catchup` chooses them) as if each had fired in turn,
        and record each job's newest as its last fire handled — both in the same
        transaction, as few as the size bounds allow. Jobs that are not stored, are
        daemons or disabled, or have no fires are left out; queue-full refusals are
        logged and returned, and record nothing."""
        with self._write_lock:
            view = self._view
            results: dict[str, ReadyChange] = {}
            entries = len(view.ready)
            plans = []
            for key, fires in missed.items():
                job = view.jobs.get(key)
                if not fires or job is None or job.is_daemon or view.is_disabled(job):
                    continue
                change = planning.catch_up_change(
                    view,
                    key,
                    fires,
                    entries=entries,
                    job_running=bool(view.running.get(key)),
                    limit=self.queue_limit,
                )
                entries += change.creates_entry
                results[key] = change
                if change.outcome.changed:
                    plans.append(
                        planning.ready(view, self.layout, key, change.entry)
                        + planning.fired(view, self.layout, key, max(fires))
                    )
            self._commit(plans)
            return results

    def record_trigger(
        self, job_key: str, token: str, fire_time: datetime | None = None
    ) -> TriggerRecord:
        """Handle trigger `token` of a stored job at most once: unless it is the job's
        last handled token (ALREADY_HANDLED) or the job is disabled (REFUSED_DISABLED),
        record it as handled — for a transient job together with one more ready run
        (a triggered fire: +1 whatever the misfire flag), in one fenced transaction; for
        a daemon job alone (the caller then tells its executors).

        Raises UnknownDefinition for an unknown job, ValueError for an empty token and
        QueueFull (nothing recorded) when the run would need a new entry in a full
        ready queue."""
        with self._write_lock:
            view, layout = self._view, self.layout
            job = view.jobs.get(job_key)
            if job is None:
                raise UnknownDefinition(f"job '{job_key}' is not stored")
            handled = view.triggers.get(job_key)
            verdict = rules.trigger_verdict(
                handled[0] if handled else None, token, disabled=view.is_disabled(job)
            )
            if verdict is not TriggerOutcome.RUN:
                return TriggerRecord(verdict)
            plan = planning.trigger(view, layout, job_key, token)
            change = None
            if not job.is_daemon:
                change = planning.ready_change(
                    view,
                    job_key,
                    fire_time,
                    entries=len(view.ready),
                    job_running=bool(view.running.get(job_key)),
                    limit=self.queue_limit,
                    triggered=True,
                )
                if change.outcome is ReadyOutcome.REFUSED_QUEUE_FULL:
                    raise QueueFull(change.message)
                plan = planning.ready(view, layout, job_key, change.entry) + plan
            self._commit([plan])
            return TriggerRecord(verdict, change)

    def remove_ready(self, job_key: str) -> None:
        """Drop the job's ready entry (all its pending runs)."""
        with self._write_lock:
            self._commit([planning.ready(self._view, self.layout, job_key, None)])

    def remove_failover(self, shards: Iterable[tuple[str, int]]) -> None:
        """Drop failover entries (job key, shard) that can no longer launch (their job
        is gone or has fewer shards now), in one transaction; absent ones are skipped."""
        with self._write_lock:
            view, by_job = self._view, dict[str, list[int]]()
            for job_key, shard in shards:
                if shard in view.failover.get(job_key, {}):
                    by_job.setdefault(job_key, []).append(shard)
            plan = Plan()
            for job_key, found in by_job.items():
                plan += planning.remove_failover(view, self.layout, job_key, found)
            self._commit([plan])

    def unschedule(self, job_key: str, also: Also = _nothing_more) -> tuple[RunningTask, ...]:
        """Drop the job's ready entry and running entries in one transaction; returns the
        running tasks dropped (the caller kills them). Failover entries stay."""
        with self._write_lock:
            view = self._view
            running = tuple(view.running.get(job_key, {}).values())
            change = planning.ready(view, self.layout, job_key, None) + planning.remove_running(
                view, self.layout, job_key, running
            )
            if change.ops:
                change += Plan(list(also(running)))
            self._commit([change])
            return running

    # ------------------------------------------------------------------ launching
    def commit_launch(
        self, launches: Sequence[RunningTask], also: Also = _nothing_more
    ) -> LaunchRecord:
        """Record every launched task as running and consume the work it came from:
        one ready run per READY job (a versioned set, or delete at zero) and the
        failover entry of each FAILOVER task — in one fenced transaction (more only
        beyond ~900 tasks, see the module docstring). `also` is asked once per job,
        for operations that commit with that job's launch.

        READY tasks carry the fire time `ready()[job].next_fire`. Raises ValueError for
        a launch that does not match the queues (no ready entry / failover entry, shard
        already running, duplicate task); NotLeader when fenced; PartialLaunch when a
        multi-transaction launch stopped part way; StateConflict/StateUnavailable."""
        with self._write_lock:
            plans = [
                plan + Plan(list(also(plan.launches)))
                for plan in planning.launch(self._view, self.layout, launches)
            ]
            applied: list[Plan] = []
            try:
                transactions = self._commit(plans, applied)
            except (NotLeader, StateConflict, StateUnavailable) as exc:
                if not applied:
                    raise
                record = _launch_record(applied, len(applied))
                raise PartialLaunch(
                    f"only {len(record.recorded)} of {len(launches)} tasks were recorded: {exc}",
                    record,
                ) from exc
            return _launch_record(plans, transactions)

    # ------------------------------------------------------------------ status updates
    def update_task_state(self, task_id: str, state: str) -> RunningTask | None:
        """Persist a running task's new Mesos state (no write when unchanged); None for
        a task that is not recorded."""
        with self._write_lock:
            self.update_task_states({task_id: state})
            return self._view.by_task.get(task_id)

    def update_task_states(self, states: Mapping[str, str], also: Sequence[Op] = ()) -> int:
        """Persist the new Mesos state of many running tasks in one transaction (task id
        → state; unrecorded and unchanged tasks are skipped), with `also`; returns how
        many changed."""
        with self._write_lock:
            view, plans = self._view, list[Plan]()
            for task_id, state in states.items():
                task = view.by_task.get(task_id)
                if task is None or task.state == state:
                    continue
                plans.append(planning.task_state(view, self.layout, task, state))
            self._commit([*plans, Plan(list(also))])
            return len(plans)

    def record_running(self, task: RunningTask) -> bool:
        """Adopt a task found running (e.g. by reconciliation) that is not recorded;
        False when the task or another task of its shard is already recorded."""
        with self._write_lock:
            view = self._view
            if task.job_key not in view.jobs:
                raise UnknownDefinition(f"job '{task.job_key}' is not stored")
            if task.task_id in view.by_task or task.shard in view.running.get(task.job_key, {}):
                return False
            self._commit([planning.add_running(view, self.layout, task.job_key, [task])])
            return True

    def task_terminated(
        self, task_id: str, follow_up: FollowUp = FollowUp.NONE, also: Sequence[Op] = ()
    ) -> Termination:
        """A task reached a terminal state: remove it from running and, in the same
        transaction, record its shard for failover (FAILOVER, per the failover rules)
        or put its daemon job back in ready (REQUEUE_DAEMON, if no task of the job is
        left running), and commit `also` with it. A full queue is logged and reported,
        not raised. A task id that is not recorded must still start with
        `<jobKey>@-@<shard>`."""
        return self.tasks_terminated([(task_id, follow_up)], also)[0]

    def tasks_terminated(
        self, ended: Sequence[tuple[str, FollowUp]], also: Sequence[Op] = ()
    ) -> list[Termination]:
        """`task_terminated` for tasks of distinct jobs, together (the queue limits
        count the entries the earlier ones add): one transaction while their operations
        fit in one, as the status pipeline keeps them."""
        jobs = [parse_meta_info(task_id)[0] for task_id, _ in ended]
        if len(set(jobs)) != len(jobs):
            raise ValueError("tasks ended together must be of distinct jobs")
        with self._write_lock:
            view, layout = self._view, self.layout
            outcomes: list[Termination] = []
            plans: list[Plan] = []
            new_failover = new_ready = 0
            for task_id, follow_up in ended:
                task = view.by_task.get(task_id)
                job_key, shard = (task.job_key, task.shard) if task else parse_meta_info(task_id)
                plan = planning.remove_running(view, layout, job_key, (task,) if task else ())
                left = {s for s in view.running.get(job_key, {}) if task is None or s != shard}
                outcome = Termination(task)
                if follow_up in (FollowUp.FAILOVER, FollowUp.RELAUNCH):
                    failed = FailoverEntry(
                        job_key, shard, task_id, task.fire_time if task else None
                    )
                    verdict, failover = planning.failover(
                        view,
                        layout,
                        failed,
                        running_shards=left,
                        limit=self.queue_limit - new_failover,
                        relaunch=follow_up is FollowUp.RELAUNCH,
                    )
                    outcome = Termination(task, failover=verdict)
                    new_failover += bool(failover.ops) and job_key not in view.failover
                    plan += failover
                elif follow_up is FollowUp.REQUEUE_DAEMON and _is_daemon(view.jobs.get(job_key)):
                    change = planning.ready_change(
                        view,
                        job_key,
                        None,
                        entries=len(view.ready) + new_ready,
                        job_running=bool(left),
                        limit=self.queue_limit,
                    )
                    outcome = Termination(task, ready=change.outcome)
                    if change.outcome.changed:
                        new_ready += job_key not in view.ready
                        plan += planning.ready(view, layout, job_key, change.entry)
                outcomes.append(outcome)
                plans.append(plan)
            self._commit([*plans, Plan(list(also))])
            return outcomes

    def add_failover(self, task_id: str, fire_time: datetime | None = None) -> FailoverOutcome:
        """Record the shard of failed task `task_id` for failover, per the rules
        (without touching running). Raises QueueFull (logged) when the failover queue
        holds its limit of job entries and this job has none."""
        with self._write_lock:
            view = self._view
            job_key, shard = parse_meta_info(task_id)
            verdict, plan = planning.failover(
                view,
                self.layout,
                FailoverEntry(job_key, shard, task_id, fire_time),
                running_shards=set(view.running.get(job_key, {})),
                limit=self.queue_limit,
            )
            if verdict is FailoverOutcome.QUEUE_FULL:
                raise QueueFull(
                    rules.room_refusal("failover", len(view.failover), self.queue_limit, job_key)
                    or f"the failover queue is full (limit {self.queue_limit})"
                )
            self._commit([plan])
            return verdict

    # ------------------------------------------------------------------ framework id
    def save_framework_id(self, framework_id: str) -> str:
        """Store the framework id unless one is stored (written once); returns the
        stored one, which every later registration must reuse."""
        if not framework_id:
            raise ValueError("framework id must not be empty")
        with self._write_lock:
            view = self._view
            if view.framework_id is not None:
                if view.framework_id != framework_id:
                    log.warning(
                        "keeping stored framework id %s, not %s", view.framework_id, framework_id
                    )
                return view.framework_id

            def remember() -> None:
                view.framework_id = framework_id

            self._commit(
                [Plan([Create(self.layout.framework_id, framework_id.encode())], remember)]
            )
            return framework_id

    def forget_framework_id(self, framework_id: str) -> bool:
        """Delete the stored framework id if it is still `framework_id` — only for an id
        the master has removed (failover timeout expired, torn down): it can never
        subscribe again, and the next subscription registers a new framework. False
        when another id (or none) is stored."""
        with self._write_lock:
            view = self._view
            if view.framework_id != framework_id:
                return False

            def forget() -> None:
                view.framework_id = None

            self._commit([Plan([Delete(self.layout.framework_id)], forget)])
            return True

    # ------------------------------------------------------------------ internals
    def _set_job_flag(self, job_key: str, disabled: bool) -> None:
        with self._write_lock:
            view = self._view
            job = view.jobs.get(job_key)
            if job is None:
                raise UnknownDefinition(f"job '{job_key}' is not stored")
            plan = planning.job_flag(view, self.layout, job_key, disabled)
            if plan.ops and not disabled:
                plan += planning.restart_fires(view, self.layout, [job], self._clock())
            self._commit([plan])

    def _set_app_flag(self, app_key: str, disabled: bool) -> None:
        with self._write_lock:
            view = self._view
            if app_key not in view.apps:
                raise UnknownDefinition(f"app '{app_key}' is not stored")
            plan = planning.app_flag(view, self.layout, app_key, disabled)
            if plan.ops and not disabled:
                jobs = view.jobs_of_app(app_key)
                plan += planning.restart_fires(view, self.layout, jobs, self._clock())
            self._commit([plan])

    def _commit(self, plans: Sequence[Plan], applied: list[Plan] | None = None) -> int:
        """Write `plans` (fenced, chunked) and apply each to memory once all its
        operations are committed (appending it to `applied`). Returns the number of
        transactions sent.

        A refused transaction or a lost connection re-reads the view from ZooKeeper
        before raising; a failure after earlier chunks committed without a re-read
        marks the store unloaded (load() again)."""
        pending = [p for p in plans if p.ops]
        if not pending:
            return 0
        # Leadership first: a store unloaded because ZooKeeper went away is, to the
        # caller, a replica that no longer leads.
        token = self._fence.token()
        if not self._loaded:
            raise StateUnavailable("the state store is not loaded; call load() first")
        chunks = chunk([p.ops for p in pending])
        for number, ops in enumerate(chunks, start=1):
            try:
                self._zk.commit(token, ops)
            except TransactionRefused as exc:
                self._resync(f"ZooKeeper refused {exc}")
                raise StateConflict(f"{exc}; the view was re-read from ZooKeeper") from exc
            except OutcomeUnknown as exc:
                self._resync(str(exc))
                raise StateUnavailable(
                    f"{exc}; the view was re-read, so its effect (if any) is now visible"
                ) from exc
            except (NotLeader, StateUnavailable):
                if number > 1:
                    self._loaded = False
                raise
            pending = self._apply_committed(pending, len(ops), applied)
            if number < len(chunks) and not self._fence_still(token):
                self._loaded = False
                raise NotLeader("leadership ended part way through a multi-transaction write")
        return len(chunks)

    def _apply_committed(
        self, pending: list[Plan], op_count: int, applied: list[Plan] | None
    ) -> list[Plan]:
        """Apply the plans whose last operation was in the just-committed chunk."""
        left = op_count
        while pending and len(pending[0].ops) <= left:
            plan = pending.pop(0)
            with self._view_lock:
                plan.apply()
                self._snapshot = None
            if applied is not None:
                applied.append(plan)
            left -= len(plan.ops)
        if pending and left:
            first = pending[0]
            pending[0] = Plan(first.ops[left:], first.apply, first.launches)
        return pending

    def _fence_still(self, token: str) -> bool:
        try:
            return self._fence.token() == token
        except NotLeader:
            return False

    def _resync(self, why: str) -> None:
        log.warning("re-reading the state from ZooKeeper: %s", why)
        try:
            loaded = read_view(self._zk, self.layout, self._clock())
        except StateUnavailable:
            self._loaded = False
            raise
        with self._view_lock:
            self._view, self._snapshot = loaded.view, None


def _cron_of(job: JobDefinition) -> tuple[str, str, bool]:
    """What a job's fires are: a change of any part starts its cron afresh."""
    return job.spec.cron, job.spec.time_zone, job.is_daemon


def _is_daemon(job: JobDefinition | None) -> bool:
    return job is not None and job.is_daemon


def _launch_record(plans: Sequence[Plan], transactions: int) -> LaunchRecord:
    recorded = tuple(t for p in plans for t in p.launches)
    fires = {t.job_key: t.fire_time for t in recorded if t.source is LaunchSource.READY}
    failover = tuple(t.meta_info for t in recorded if t.source is LaunchSource.FAILOVER)
    return LaunchRecord(recorded, MappingProxyType(fires), failover, transactions)
