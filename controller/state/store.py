"""The leader's view of the scheduling state, mirrored in ZooKeeper (SPEC §3).

`StateStore` holds, in memory, the definitions (`config/`), the ready, running and
failover queues, the disabled flags and the framework id, rebuilt from ZooKeeper by
`load()`. Every change is decided in memory by the pure `rules`, written to ZooKeeper
in one multi-op transaction fenced on the leader's election node, and applied to the
memory view only once ZooKeeper has accepted it. Reads never touch ZooKeeper.

One store serves one leadership term: build it when elected, call `load()`, drop it
when told to stop (writes then fail with `NotLeader` anyway). The leader is the only
writer, which is what lets versions and node existence come from memory instead of
extra reads; a transaction that ZooKeeper refuses all the same (`StateConflict`)
makes the store re-read everything first.

Threading: every method is blocking and thread-safe (one lock). The asyncio side
calls writes through `asyncio.to_thread`; reads only take the lock and copy, so they
may be called from the event loop directly.

Round trips: `commit_launch` of N tasks costs ceil(ops / 1000) transactions
(ops ≈ N + jobs + consumed entries; also bounded by 512 KiB per transaction), i.e. one
for any launch of up to ~900 tasks, and no reads. `fire` adds many jobs' runs in one
transaction. `counts` exposes what was sent.

Used by the Mesos framework (launch cycle, status updates, reconciliation, producer)
and by the scheduling operations the Kubernetes side calls.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType

from kazoo.client import KazooClient

from controller.definitions import AppDefinition, JobDefinition
from controller.operations import QueueFull
from controller.state import rules
from controller.state.connection import digest_acl
from controller.state.election import Fence
from controller.state.errors import (
    NotLeader,
    StateConflict,
    StateUnavailable,
    UnknownDefinition,
)
from controller.state.gateway import (
    Create,
    Delete,
    Op,
    OutcomeUnknown,
    RequestCounts,
    SetData,
    TransactionRefused,
    ZkGateway,
    chunk,
)
from controller.state.layout import Layout, parse_meta_info
from controller.state.records import (
    FailoverEntry,
    LaunchSource,
    ReadyEntry,
    RecordError,
    RunningTask,
)
from controller.state.rules import FailoverOutcome, ReadyChange, ReadyOutcome

log = logging.getLogger(__name__)


class Change(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


class FollowUp(StrEnum):
    """What a terminal task state asks for besides leaving the running queue."""

    NONE = "none"
    FAILOVER = "failover"
    REQUEUE_DAEMON = "requeue-daemon"


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
class LaunchRecord:
    """What `commit_launch` recorded, and the fire time each READY job's launch consumed."""

    recorded: tuple[RunningTask, ...]
    consumed_fires: Mapping[str, datetime | None]
    consumed_failover: tuple[str, ...]
    transactions: int


@dataclass(frozen=True)
class Termination:
    task: RunningTask | None
    failover: FailoverOutcome | None = None
    ready: ReadyOutcome | None = None


class PartialLaunch(StateUnavailable):
    """A launch split over several transactions stopped part way; `record` holds what
    was recorded (those tasks may be launched), the rest was not."""

    def __init__(self, message: str, record: LaunchRecord) -> None:
        super().__init__(message)
        self.record = record


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Group:
    """The operations of one logical change and how to apply them to memory."""

    ops: list[Op]
    apply: Callable[[], None]
    launches: tuple[RunningTask, ...] = ()


@dataclass
class _View:
    apps: dict[str, AppDefinition] = field(default_factory=dict)
    jobs: dict[str, JobDefinition] = field(default_factory=dict)
    disabled_jobs: set[str] = field(default_factory=set)
    disabled_apps: set[str] = field(default_factory=set)
    ready: dict[str, tuple[ReadyEntry, int]] = field(default_factory=dict)
    running: dict[str, dict[int, RunningTask]] = field(default_factory=dict)
    running_parents: set[str] = field(default_factory=set)
    by_task: dict[str, RunningTask] = field(default_factory=dict)
    failover: dict[str, dict[int, FailoverEntry]] = field(default_factory=dict)
    failover_parents: set[str] = field(default_factory=set)
    framework_id: str | None = None


class StateStore:
    """The ZooKeeper-backed scheduling state of one leader (see the module docstring)."""

    def __init__(
        self,
        client: KazooClient,
        fence: Fence,
        *,
        layout: Layout | None = None,
        auth: str | None = None,
        queue_limit: int = rules.DEFAULT_QUEUE_LIMIT,
        clock: Callable[[], datetime] = _utcnow,
        timeout: float = 15.0,
    ) -> None:
        if queue_limit < 1:
            raise ValueError(f"queue_limit must be at least 1, got {queue_limit}")
        self.layout = layout or Layout()
        self.queue_limit = queue_limit
        self._fence = fence
        self._clock = clock
        self._zk = ZkGateway(client, digest_acl(auth), timeout)
        self._lock = threading.RLock()
        self._view = _View()
        self._loaded = False

    @property
    def counts(self) -> RequestCounts:
        """Requests, round trips and transactions sent so far (read-only use)."""
        return self._zk.counts

    # ------------------------------------------------------------------ loading
    def load(self) -> LoadReport:
        """Rebuild the memory view from ZooKeeper and delete (fenced) every ready,
        running, failover and disabled-job entry whose job config is gone, and
        disabled-app flags whose app is gone. Costs five pipelined round trips plus the
        deletions; call once per term before anything else, and after StateUnavailable."""
        with self._lock:
            view, stale, ignored = self._read_all()
            self._view = view
            self._loaded = True
            dropped = self._drop(stale)
            return LoadReport(
                apps=len(view.apps),
                jobs=len(view.jobs),
                ready=len(view.ready),
                running=len(view.by_task),
                failover=sum(len(v) for v in view.failover.values()),
                dropped=tuple(dropped),
                ignored=tuple(ignored),
            )

    def _read_all(self) -> tuple[_View, list[str], list[str]]:
        lay, zk = self.layout, self._zk
        zk.ensure_paths(lay.containers())
        roots = zk.children_many(
            [lay.apps, lay.jobs, lay.ready_root, lay.running_root, lay.failover_root,
             lay.disabled_jobs, lay.disabled_apps]
        )
        app_keys, job_keys = roots.get(lay.apps, []), roots.get(lay.jobs, [])
        ready_keys = roots.get(lay.ready_root, [])
        data = zk.get_many(
            [lay.app(k) for k in app_keys]
            + [lay.job(k) for k in job_keys]
            + [lay.ready(k) for k in ready_keys]
            + [lay.framework_id]
        )
        view, stale, ignored = _View(), [], []
        for key in app_keys:
            if (raw := data.get(lay.app(key))) is not None:
                try:
                    view.apps[key] = AppDefinition.decode(raw[0])
                except ValueError as exc:
                    ignored.append(lay.app(key))
                    log.warning("ignoring %s: not an app definition (%s)", lay.app(key), exc)
        for key in job_keys:
            if (raw := data.get(lay.job(key))) is not None:
                try:
                    view.jobs[key] = JobDefinition.decode(raw[0])
                except ValueError as exc:
                    ignored.append(lay.job(key))
                    log.warning("ignoring %s: not a job definition (%s)", lay.job(key), exc)
        if (fid := data.get(lay.framework_id)) is not None and fid[0].strip():
            view.framework_id = fid[0].decode().strip()
        for key in roots.get(lay.disabled_jobs, []):
            if key in view.jobs:
                view.disabled_jobs.add(key)
            else:
                stale.append(lay.disabled_job(key))
        for key in roots.get(lay.disabled_apps, []):
            if key in view.apps:
                view.disabled_apps.add(key)
            else:
                stale.append(lay.disabled_app(key))
        for key in ready_keys:
            path = lay.ready(key)
            if (raw := data.get(path)) is None:
                continue
            try:
                entry = ReadyEntry.decode(raw[0])
            except RecordError as exc:
                log.warning("dropping %s: %s", path, exc)
                stale.append(path)
                continue
            job = view.jobs.get(key)
            if job is not None and not (
                key in view.disabled_jobs or job.app_key in view.disabled_apps
            ):
                view.ready[key] = (entry, raw[1])
            else:
                stale.append(path)
        running_jobs = roots.get(lay.running_root, [])
        failover_jobs = roots.get(lay.failover_root, [])
        kids = zk.children_many(
            [lay.running_job(k) for k in running_jobs]
            + [lay.failover_job(k) for k in failover_jobs]
        )
        leaves = zk.get_many(
            [f"{lay.running_job(k)}/{c}" for k in running_jobs
             for c in kids.get(lay.running_job(k), [])]
            + [f"{lay.failover_job(k)}/{c}" for k in failover_jobs
               for c in kids.get(lay.failover_job(k), [])]
        )
        now = self._clock()
        for key in running_jobs:
            self._load_children(
                key, lay.running_job(key), kids, leaves, view, stale,
                lambda raw, job, shard: _index_running(
                    view, RunningTask.decode(raw, job, shard, now)
                ),
                view.running_parents,
            )
        for key in failover_jobs:
            self._load_children(
                key, lay.failover_job(key), kids, leaves, view, stale,
                lambda raw, job, shard: view.failover.setdefault(job, {}).__setitem__(
                    shard, FailoverEntry.decode(raw, job, shard)
                ),
                view.failover_parents,
            )
        return view, stale, ignored

    @staticmethod
    def _load_children(
        key: str,
        parent: str,
        kids: Mapping[str, list[str]],
        leaves: Mapping[str, tuple[bytes, int]],
        view: _View,
        stale: list[str],
        record: Callable[[bytes, str, int], object],
        parents: set[str],
    ) -> None:
        children = kids.get(parent, [])
        kept = 0
        for child in children:
            path = f"{parent}/{child}"
            if (raw := leaves.get(path)) is None:
                continue
            try:
                job, shard = parse_meta_info(child)
                if job != key or key not in view.jobs:
                    raise RecordError(f"no job config for {child}")
                record(raw[0], job, shard)
                kept += 1
            except (RecordError, ValueError) as exc:
                log.info("dropping %s: %s", path, exc)
                stale.append(path)
        if kept:
            parents.add(key)
        elif parent in kids:
            stale.append(parent)

    def _drop(self, paths: Sequence[str]) -> list[str]:
        if not paths:
            return []
        # children were listed before their parents, so deletes run in a valid order
        self._commit([_Group([Delete(p) for p in paths], lambda: None)])
        log.info("dropped %d state entries of jobs that no longer exist", len(paths))
        return list(paths)

    # ------------------------------------------------------------------ reads
    def job(self, job_key: str) -> JobDefinition | None:
        with self._lock:
            return self._view.jobs.get(job_key)

    def app(self, app_key: str) -> AppDefinition | None:
        with self._lock:
            return self._view.apps.get(app_key)

    def jobs(self) -> Mapping[str, JobDefinition]:
        with self._lock:
            return MappingProxyType(dict(self._view.jobs))

    def apps(self) -> Mapping[str, AppDefinition]:
        with self._lock:
            return MappingProxyType(dict(self._view.apps))

    def jobs_of_app(self, app_key: str) -> list[JobDefinition]:
        with self._lock:
            return [j for j in self._view.jobs.values() if j.app_key == app_key]

    def is_job_disabled(self, job_key: str) -> bool:
        with self._lock:
            return job_key in self._view.disabled_jobs

    def is_app_disabled(self, app_key: str) -> bool:
        with self._lock:
            return app_key in self._view.disabled_apps

    def is_disabled(self, job_key: str) -> bool:
        """True when the job or its app is disabled (or the job is unknown)."""
        with self._lock:
            job = self._view.jobs.get(job_key)
            return job is None or self._disabled(job)

    def ready(self) -> Mapping[str, ReadyEntry]:
        """Job key → pending runs."""
        with self._lock:
            return MappingProxyType({k: e for k, (e, _) in self._view.ready.items()})

    def failover(self) -> Mapping[str, FailoverEntry]:
        """Meta info (`<jobKey>@-@<shard>`) → shard to run again."""
        with self._lock:
            return MappingProxyType(
                {e.meta_info: e for entries in self._view.failover.values()
                 for e in entries.values()}
            )

    def running(self) -> Mapping[str, RunningTask]:
        """Task id → running task, for every recorded task."""
        with self._lock:
            return MappingProxyType(dict(self._view.by_task))

    def running_of(self, job_key: str) -> tuple[RunningTask, ...]:
        with self._lock:
            return tuple(self._view.running.get(job_key, {}).values())

    def running_task(self, task_id: str) -> RunningTask | None:
        with self._lock:
            return self._view.by_task.get(task_id)

    def is_job_running(self, job_key: str) -> bool:
        with self._lock:
            return bool(self._view.running.get(job_key))

    def is_shard_running(self, job_key: str, shard: int) -> bool:
        with self._lock:
            return shard in self._view.running.get(job_key, {})

    def framework_id(self) -> str | None:
        with self._lock:
            return self._view.framework_id

    # ------------------------------------------------------------------ definitions
    def put_app(self, app: AppDefinition) -> Change:
        """Store `app` and set its disabled flag from `spec.disabled`; disabling drops
        the ready entries of its jobs in the same transaction."""
        with self._lock:
            view, key = self._view, app.key
            current = view.apps.get(key)
            ops: list[Op] = []
            if current is None:
                ops.append(Create(self.layout.app(key), app.encode()))
            elif current != app:
                ops.append(SetData(self.layout.app(key), app.encode()))
            flag_ops, apply_flag = self._app_flag_ops(key, app.spec.disabled)
            ops += flag_ops
            if not ops:
                return Change.UNCHANGED

            def store() -> None:
                view.apps[key] = app

            self._commit([_Group(ops, _chain(store, apply_flag))])
            return Change.CREATED if current is None else Change.UPDATED

    def remove_app(self, app_key: str) -> tuple[RunningTask, ...]:
        """Forget the app and every job of it (as `remove_job`); returns the running
        tasks dropped, which the caller kills."""
        with self._lock:
            dropped: list[RunningTask] = []
            groups = []
            for job in self.jobs_of_app(app_key):
                group, tasks = self._remove_job_group(job.key)
                groups.append(group)
                dropped += tasks
            ops: list[Op] = []
            if app_key in self._view.disabled_apps:
                ops.append(Delete(self.layout.disabled_app(app_key)))
            if app_key in self._view.apps:
                ops.append(Delete(self.layout.app(app_key)))

            def apply() -> None:
                self._view.disabled_apps.discard(app_key)
                self._view.apps.pop(app_key, None)

            groups.append(_Group(ops, apply))
            self._commit(groups)
            return tuple(dropped)

    def disable_app(self, app_key: str) -> None:
        """Mark the app disabled and drop its jobs' ready entries (one transaction)."""
        self._set_app_flag(app_key, True)

    def enable_app(self, app_key: str) -> None:
        self._set_app_flag(app_key, False)

    def put_job(self, job: JobDefinition) -> Change:
        """Store `job`, set its disabled flag from `spec.disabled`, and when it replaces
        another definition apply the update rules to its ready entry (misfire off →
        count 1; daemon → removed) — all in one transaction."""
        with self._lock:
            view, key, lay = self._view, job.key, self.layout
            current = view.jobs.get(key)
            ops: list[Op] = []
            ready = view.ready.get(key)
            new_ready = ready[0] if ready else None
            if current is None:
                ops.append(Create(lay.job(key), job.encode()))
            elif current != job:
                ops.append(SetData(lay.job(key), job.encode()))
                new_ready = rules.after_config_update(job, new_ready)
            flag_ops, apply_flag = self._job_flag_ops(key, job.spec.disabled)
            ops += flag_ops
            if job.spec.disabled:
                new_ready = None
            ready_ops, apply_ready = self._ready_ops(key, new_ready)
            ops += ready_ops
            if not ops:
                return Change.UNCHANGED

            def store() -> None:
                view.jobs[key] = job

            self._commit([_Group(ops, _chain(store, apply_flag, apply_ready))])
            return Change.CREATED if current is None else Change.UPDATED

    def remove_job(self, job_key: str) -> tuple[RunningTask, ...]:
        """Deregister: delete the job's config, disabled flag, ready, running and
        failover entries; returns the running tasks dropped (the caller kills them)."""
        with self._lock:
            group, dropped = self._remove_job_group(job_key)
            self._commit([group])
            return dropped

    def disable_job(self, job_key: str) -> None:
        """Mark the job disabled and drop its ready entry (one transaction)."""
        self._set_job_flag(job_key, True)

    def enable_job(self, job_key: str) -> None:
        self._set_job_flag(job_key, False)

    # ------------------------------------------------------------------ ready queue
    def add_ready(self, job_key: str, fire_time: datetime | None = None) -> ReadyChange:
        """One fire of a transient job, or the scheduling of a daemon job (SPEC §3).

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
        with self._lock:
            view = self._view
            keys = list(dict.fromkeys(job_keys))
            for key in keys:
                if key not in view.jobs:
                    raise UnknownDefinition(f"job '{key}' is not stored; put_job it first")
            results: dict[str, ReadyChange] = {}
            entries = len(view.ready)
            groups: list[_Group] = []
            for key in keys:
                change = self._ready_change(key, fire_time, entries, bool(view.running.get(key)))
                entries += change.creates_entry
                results[key] = change
                if change.outcome.changed:
                    ops, apply = self._ready_ops(key, change.entry)
                    groups.append(_Group(ops, apply))
            self._commit(groups)
            return results

    def remove_ready(self, job_key: str) -> None:
        """Drop the job's ready entry (all its pending runs)."""
        with self._lock:
            ops, apply = self._ready_ops(job_key, None)
            self._commit([_Group(ops, apply)])

    def unschedule(self, job_key: str) -> tuple[RunningTask, ...]:
        """Drop the job's ready entry and running entries in one transaction; returns the
        running tasks dropped (the caller kills them). Failover entries stay."""
        with self._lock:
            ready_ops, apply_ready = self._ready_ops(job_key, None)
            running = tuple(self._view.running.get(job_key, {}).values())
            run_ops, apply_run = self._remove_running_ops(job_key, running)
            self._commit([_Group(ready_ops + run_ops, _chain(apply_ready, apply_run))])
            return running

    # ------------------------------------------------------------------ launching
    def commit_launch(self, launches: Sequence[RunningTask]) -> LaunchRecord:
        """Record every launched task as running and consume the work it came from:
        one ready run per READY job (a versioned set, or delete at zero) and the
        failover entry of each FAILOVER task — in one fenced transaction (more only
        beyond ~900 tasks, see the module docstring).

        READY tasks carry the fire time `ready()[job].next_fire`. Raises ValueError for
        a launch that does not match the queues (no ready entry / failover entry, shard
        already running, duplicate task); NotLeader when fenced; PartialLaunch when a
        multi-transaction launch stopped part way; StateConflict/StateUnavailable."""
        with self._lock:
            groups = self._launch_groups(launches)
            applied: list[_Group] = []
            try:
                transactions = self._commit(groups, applied)
            except (NotLeader, StateConflict, StateUnavailable) as exc:
                if not applied:
                    raise
                raise PartialLaunch(
                    f"only {sum(len(g.launches) for g in applied)} of {len(launches)} tasks "
                    f"were recorded: {exc}",
                    self._launch_record(applied, len(applied)),
                ) from exc
            return self._launch_record(groups, transactions)

    def _launch_groups(self, launches: Sequence[RunningTask]) -> list[_Group]:
        view, lay = self._view, self.layout
        by_job: dict[str, list[RunningTask]] = {}
        seen: set[tuple[str, int]] = set()
        for task in launches:
            where = (task.job_key, task.shard)
            if where in seen or task.task_id in view.by_task:
                raise ValueError(f"task {task.task_id} is launched twice or already recorded")
            if task.job_key not in view.jobs:
                raise ValueError(f"task {task.task_id}: job '{task.job_key}' is not stored")
            if task.shard in view.running.get(task.job_key, {}):
                raise ValueError(
                    f"task {task.task_id}: shard {task.shard} of '{task.job_key}' is running"
                )
            if task.source is LaunchSource.FAILOVER and task.shard not in view.failover.get(
                task.job_key, {}
            ):
                raise ValueError(f"task {task.task_id}: no failover entry for its shard")
            if task.source is LaunchSource.READY and task.job_key not in view.ready:
                raise ValueError(f"task {task.task_id}: job '{task.job_key}' is not ready")
            seen.add(where)
            by_job.setdefault(task.job_key, []).append(task)
        groups = []
        for job_key, tasks in by_job.items():
            ops: list[Op] = []
            if job_key not in view.running_parents:
                ops.append(Create(lay.running_job(job_key)))
            ops += [Create(lay.running_task(job_key, t.shard), t.encode()) for t in tasks]
            ready_apply: Callable[[], None] = _nothing
            if any(t.source is LaunchSource.READY for t in tasks):
                left, _ = rules.after_launch(view.ready[job_key][0])
                ready_ops, ready_apply = self._ready_ops(job_key, left)
                ops += ready_ops
            failed_over = [t.shard for t in tasks if t.source is LaunchSource.FAILOVER]
            fo_ops, fo_apply = self._remove_failover_ops(job_key, failed_over)
            ops += fo_ops

            def apply(
                job_key: str = job_key,
                tasks: list[RunningTask] = tasks,
                ready_apply: Callable[[], None] = ready_apply,
                fo_apply: Callable[[], None] = fo_apply,
            ) -> None:
                view.running_parents.add(job_key)
                for task in tasks:
                    _index_running(view, task)
                ready_apply()
                fo_apply()

            groups.append(_Group(ops, apply, tuple(tasks)))
        return groups

    def _launch_record(self, groups: Sequence[_Group], transactions: int) -> LaunchRecord:
        recorded = tuple(t for g in groups for t in g.launches)
        fires = {t.job_key: t.fire_time for t in recorded if t.source is LaunchSource.READY}
        failover = tuple(t.meta_info for t in recorded if t.source is LaunchSource.FAILOVER)
        return LaunchRecord(recorded, MappingProxyType(fires), failover, transactions)

    # ------------------------------------------------------------------ status updates
    def update_task_state(self, task_id: str, state: str) -> RunningTask | None:
        """Persist a running task's new Mesos state (no write when unchanged); None for
        a task that is not recorded."""
        with self._lock:
            task = self._view.by_task.get(task_id)
            if task is None or task.state == state:
                return task
            updated = task.with_state(state)
            path = self.layout.running_task(task.job_key, task.shard)
            self._commit(
                [_Group([SetData(path, updated.encode())],
                        lambda: _index_running(self._view, updated))]
            )
            return updated

    def record_running(self, task: RunningTask) -> bool:
        """Adopt a task found running (e.g. by reconciliation) that is not recorded;
        False when the task or another task of its shard is already recorded."""
        with self._lock:
            view = self._view
            if task.job_key not in view.jobs:
                raise UnknownDefinition(f"job '{task.job_key}' is not stored")
            if task.task_id in view.by_task or task.shard in view.running.get(task.job_key, {}):
                return False
            ops: list[Op] = []
            if task.job_key not in view.running_parents:
                ops.append(Create(self.layout.running_job(task.job_key)))
            ops.append(Create(self.layout.running_task(task.job_key, task.shard), task.encode()))

            def apply() -> None:
                view.running_parents.add(task.job_key)
                _index_running(view, task)

            self._commit([_Group(ops, apply)])
            return True

    def task_terminated(self, task_id: str, follow_up: FollowUp = FollowUp.NONE) -> Termination:
        """A task reached a terminal state: remove it from running and, in the same
        transaction, record its shard for failover (FAILOVER, per the failover rules)
        or put its daemon job back in ready (REQUEUE_DAEMON, if no task of the job is
        left running). A full queue is logged and reported, not raised."""
        with self._lock:
            view = self._view
            task = view.by_task.get(task_id)
            job_key, shard = (task.job_key, task.shard) if task else parse_meta_info(task_id)
            ops, apply_run = self._remove_running_ops(job_key, (task,) if task else ())
            left_running = {s for s in view.running.get(job_key, {}) if task is None or s != shard}
            outcome = Termination(task)
            applies = [apply_run]
            if follow_up is FollowUp.FAILOVER:
                fo, fo_ops, fo_apply = self._failover_ops(
                    job_key, shard, task_id, task.fire_time if task else None, left_running
                )
                outcome = Termination(task, failover=fo)
                ops += fo_ops
                applies.append(fo_apply)
            elif follow_up is FollowUp.REQUEUE_DAEMON and self._is_daemon(job_key):
                change = self._ready_change(job_key, None, len(view.ready), bool(left_running))
                outcome = Termination(task, ready=change.outcome)
                if change.outcome.changed:
                    r_ops, r_apply = self._ready_ops(job_key, change.entry)
                    ops += r_ops
                    applies.append(r_apply)
            if ops:
                self._commit([_Group(ops, _chain(*applies))])
            return outcome

    def add_failover(
        self, task_id: str, fire_time: datetime | None = None
    ) -> FailoverOutcome:
        """Record the shard of failed task `task_id` for failover, per the rules
        (without touching running). Raises QueueFull (logged) when the failover queue
        holds its limit of job entries and this job has none."""
        with self._lock:
            job_key, shard = parse_meta_info(task_id)
            outcome, ops, apply = self._failover_ops(
                job_key, shard, task_id, fire_time, set(self._view.running.get(job_key, {}))
            )
            if outcome is FailoverOutcome.QUEUE_FULL:
                raise QueueFull(
                    rules.room_refusal(
                        "failover", len(self._view.failover), self.queue_limit, job_key
                    )
                    or "failover queue full"
                )
            if ops:
                self._commit([_Group(ops, apply)])
            return outcome

    # ------------------------------------------------------------------ framework id
    def save_framework_id(self, framework_id: str) -> str:
        """Store the framework id unless one is stored (written once); returns the
        stored one, which every later registration must reuse."""
        if not framework_id:
            raise ValueError("framework id must not be empty")
        with self._lock:
            if self._view.framework_id is not None:
                if self._view.framework_id != framework_id:
                    log.warning(
                        "keeping stored framework id %s, not %s",
                        self._view.framework_id, framework_id,
                    )
                return self._view.framework_id

            def apply() -> None:
                self._view.framework_id = framework_id

            self._commit(
                [_Group([Create(self.layout.framework_id, framework_id.encode())], apply)]
            )
            return framework_id

    # ------------------------------------------------------------------ internals
    def _is_daemon(self, job_key: str) -> bool:
        job = self._view.jobs.get(job_key)
        return job is not None and job.is_daemon

    def _disabled(self, job: JobDefinition) -> bool:
        return job.key in self._view.disabled_jobs or job.app_key in self._view.disabled_apps

    def _ready_change(
        self,
        job_key: str,
        fire_time: datetime | None,
        entries: int,
        job_running: bool,
    ) -> ReadyChange:
        job = self._view.jobs[job_key]
        current = self._view.ready.get(job_key)
        change = rules.within_limit(
            rules.after_fire(
                job,
                current[0] if current else None,
                fire_time,
                disabled=self._disabled(job),
                job_running=job_running,
            ),
            entries,
            self.queue_limit,
            job_key,
        )
        if change.outcome is ReadyOutcome.REFUSED_QUEUE_FULL:
            log.warning("%s", change.message)
        return change

    def _ready_ops(
        self, job_key: str, entry: ReadyEntry | None
    ) -> tuple[list[Op], Callable[[], None]]:
        """Operations that make the ready entry of `job_key` be `entry` (None = absent);
        updates and deletes are compare-and-set on the known version."""
        view, path = self._view, self.layout.ready(job_key)
        current = view.ready.get(job_key)
        if current is not None and current[0] == entry:
            return [], _nothing
        if entry is None and current is None:
            return [], _nothing
        version = -1 if current is None else current[1]

        def apply() -> None:
            if entry is None:
                view.ready.pop(job_key, None)
            else:
                view.ready[job_key] = (entry, version + 1)

        if entry is None:
            return [Delete(path, version)], apply
        if current is None:
            return [Create(path, entry.encode())], apply
        return [SetData(path, entry.encode(), version)], apply

    def _remove_running_ops(
        self, job_key: str, tasks: Sequence[RunningTask]
    ) -> tuple[list[Op], Callable[[], None]]:
        view = self._view
        if not tasks:
            return [], _nothing
        ops: list[Op] = [Delete(self.layout.running_task(job_key, t.shard)) for t in tasks]
        gone = {t.shard for t in tasks}
        if set(view.running.get(job_key, {})) <= gone and job_key in view.running_parents:
            ops.append(Delete(self.layout.running_job(job_key)))

        def apply() -> None:
            shards = view.running.get(job_key, {})
            for task in tasks:
                shards.pop(task.shard, None)
                view.by_task.pop(task.task_id, None)
            if not shards:
                view.running.pop(job_key, None)
                view.running_parents.discard(job_key)

        return ops, apply

    def _remove_failover_ops(
        self, job_key: str, shards: Sequence[int]
    ) -> tuple[list[Op], Callable[[], None]]:
        view = self._view
        if not shards:
            return [], _nothing
        ops: list[Op] = [Delete(self.layout.failover_task(job_key, s)) for s in shards]
        if set(view.failover.get(job_key, {})) <= set(shards) and job_key in view.failover_parents:
            ops.append(Delete(self.layout.failover_job(job_key)))

        def apply() -> None:
            entries = view.failover.get(job_key, {})
            for shard in shards:
                entries.pop(shard, None)
            if not entries:
                view.failover.pop(job_key, None)
                view.failover_parents.discard(job_key)

        return ops, apply

    def _failover_ops(
        self,
        job_key: str,
        shard: int,
        task_id: str,
        fire_time: datetime | None,
        running_shards: set[int],
    ) -> tuple[FailoverOutcome, list[Op], Callable[[], None]]:
        view = self._view
        job = view.jobs.get(job_key)
        outcome = rules.failover_decision(
            job,
            job_disabled=job_key in view.disabled_jobs,
            app_disabled=job is not None and job.app_key in view.disabled_apps,
            entry_exists=shard in view.failover.get(job_key, {}),
            shard_running=shard in running_shards,
        )
        if outcome is not FailoverOutcome.RECORDED:
            log.info("failover of %s not recorded: %s", task_id, outcome.value)
            return outcome, [], _nothing
        if job_key not in view.failover and (
            refusal := rules.room_refusal("failover", len(view.failover), self.queue_limit, job_key)
        ):
            log.warning("%s", refusal)
            return FailoverOutcome.QUEUE_FULL, [], _nothing
        entry = FailoverEntry(job_key, shard, task_id, fire_time)
        ops: list[Op] = []
        if job_key not in view.failover_parents:
            ops.append(Create(self.layout.failover_job(job_key)))
        ops.append(Create(self.layout.failover_task(job_key, shard), entry.encode()))

        def apply() -> None:
            view.failover_parents.add(job_key)
            view.failover.setdefault(job_key, {})[shard] = entry

        return outcome, ops, apply

    def _job_flag_ops(self, job_key: str, disabled: bool) -> tuple[list[Op], Callable[[], None]]:
        view, path = self._view, self.layout.disabled_job(job_key)
        if disabled and job_key not in view.disabled_jobs:
            return [Create(path, job_key.encode())], lambda: view.disabled_jobs.add(job_key)
        if not disabled and job_key in view.disabled_jobs:
            return [Delete(path)], lambda: view.disabled_jobs.discard(job_key)
        return [], _nothing

    def _app_flag_ops(self, app_key: str, disabled: bool) -> tuple[list[Op], Callable[[], None]]:
        view, path = self._view, self.layout.disabled_app(app_key)
        ops: list[Op] = []
        applies: list[Callable[[], None]] = []
        if disabled and app_key not in view.disabled_apps:
            ops.append(Create(path, app_key.encode()))
            applies.append(lambda: view.disabled_apps.add(app_key))
            for job in self.jobs_of_app(app_key):
                ready_ops, apply_ready = self._ready_ops(job.key, None)
                ops += ready_ops
                applies.append(apply_ready)
        elif not disabled and app_key in view.disabled_apps:
            ops.append(Delete(path))
            applies.append(lambda: view.disabled_apps.discard(app_key))
        return ops, _chain(*applies)

    def _set_job_flag(self, job_key: str, disabled: bool) -> None:
        with self._lock:
            if job_key not in self._view.jobs:
                raise UnknownDefinition(f"job '{job_key}' is not stored")
            ops, apply = self._job_flag_ops(job_key, disabled)
            ready_ops, apply_ready = self._ready_ops(job_key, None) if disabled else ([], _nothing)
            self._commit([_Group(ops + ready_ops, _chain(apply, apply_ready))])

    def _set_app_flag(self, app_key: str, disabled: bool) -> None:
        with self._lock:
            if app_key not in self._view.apps:
                raise UnknownDefinition(f"app '{app_key}' is not stored")
            ops, apply = self._app_flag_ops(app_key, disabled)
            self._commit([_Group(ops, apply)])

    def _remove_job_group(self, job_key: str) -> tuple[_Group, tuple[RunningTask, ...]]:
        view, lay = self._view, self.layout
        running = tuple(view.running.get(job_key, {}).values())
        ops, apply_run = self._remove_running_ops(job_key, running)
        fo_ops, apply_fo = self._remove_failover_ops(
            job_key, list(view.failover.get(job_key, {}))
        )
        ready_ops, apply_ready = self._ready_ops(job_key, None)
        flag_ops, apply_flag = self._job_flag_ops(job_key, False)
        ops += fo_ops + ready_ops + flag_ops
        if job_key in view.jobs:
            ops.append(Delete(lay.job(job_key)))

        def forget() -> None:
            view.jobs.pop(job_key, None)

        return _Group(ops, _chain(apply_run, apply_fo, apply_ready, apply_flag, forget)), running

    def _commit(self, groups: Sequence[_Group], applied: list[_Group] | None = None) -> int:
        """Write `groups` (fenced, chunked) and apply each to memory once committed
        (appending it to `applied`). Returns the number of transactions sent.

        A failure after earlier chunks committed leaves memory possibly behind
        ZooKeeper for a group split over chunks, so the view is re-read (or, failing
        that, marked unloaded)."""
        groups = [g for g in groups if g.ops]
        if not groups:
            return 0
        if not self._loaded:
            raise StateUnavailable("the state store is not loaded; call load() first")
        token = self._fence.token()
        chunks = chunk([g.ops for g in groups])
        pending = list(groups)
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

    @staticmethod
    def _apply_committed(
        pending: list[_Group], op_count: int, applied: list[_Group] | None
    ) -> list[_Group]:
        """Apply the groups whose last operation was in the just-committed chunk."""
        left = op_count
        while pending and len(pending[0].ops) <= left:
            group = pending.pop(0)
            group.apply()
            if applied is not None:
                applied.append(group)
            left -= len(group.ops)
        if pending and left:
            first = pending[0]
            pending[0] = _Group(first.ops[left:], first.apply, first.launches)
        return pending

    def _fence_still(self, token: str) -> bool:
        try:
            return self._fence.token() == token
        except NotLeader:
            return False

    def _resync(self, why: str) -> None:
        log.warning("re-reading the state from ZooKeeper: %s", why)
        try:
            view, _, _ = self._read_all()
        except StateUnavailable:
            self._loaded = False
            raise
        self._view = view


def _nothing() -> None:
    return None


def _chain(*applies: Callable[[], None]) -> Callable[[], None]:
    def apply() -> None:
        for each in applies:
            each()

    return apply


def _index_running(view: _View, task: RunningTask) -> None:
    previous = view.running.setdefault(task.job_key, {}).get(task.shard)
    if previous is not None and previous.task_id != task.task_id:
        view.by_task.pop(previous.task_id, None)
    view.running[task.job_key][task.shard] = task
    view.by_task[task.task_id] = task
