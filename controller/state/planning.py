"""Pure planning of state changes: view + request → ZooKeeper operations + memory update.

Each function reads the `View`, applies the `rules`, and returns a `Plan`: the
operations of one transaction (compare-and-set on known versions, parents created
and deleted with their first and last child) and an `apply` that makes the same
change in memory. Nothing here performs I/O or mutates the view; `StateStore` commits
a plan's operations and only then calls its `apply`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from controller.definitions import JobDefinition
from controller.state import rules
from controller.state.layout import Layout
from controller.state.records import (
    FailoverEntry,
    LaunchSource,
    ReadyEntry,
    RunningTask,
    encode_fired,
    encode_trigger,
)
from controller.state.rules import FailoverOutcome, ReadyChange, ReadyOutcome
from controller.state.transactions import Create, Delete, Op, SetData
from controller.state.view import View

log = logging.getLogger(__name__)


def _nothing() -> None:
    return None


@dataclass
class Plan:
    """The operations of one logical change and how to apply it to memory."""

    ops: list[Op] = field(default_factory=list)
    apply: Callable[[], None] = _nothing
    launches: tuple[RunningTask, ...] = ()

    def __add__(self, other: Plan) -> Plan:
        first, second = self.apply, other.apply

        def both() -> None:
            first()
            second()

        return Plan(self.ops + other.ops, both, self.launches + other.launches)


def ready(view: View, layout: Layout, job_key: str, entry: ReadyEntry | None) -> Plan:
    """Make the ready entry of `job_key` be `entry` (None = absent); updates and
    deletes are compare-and-set on the version the view knows."""
    path = layout.ready(job_key)
    current = view.ready.get(job_key)
    if (current is not None and current[0] == entry) or (entry is None and current is None):
        return Plan()
    version = -1 if current is None else current[1]

    def apply() -> None:
        if entry is None:
            view.ready.pop(job_key, None)
        else:
            view.ready[job_key] = (entry, version + 1)

    if entry is None:
        return Plan([Delete(path, version)], apply)
    if current is None:
        return Plan([Create(path, entry.encode())], apply)
    return Plan([SetData(path, entry.encode(), version)], apply)


def ready_change(
    view: View,
    job_key: str,
    fire_time: datetime | None,
    *,
    entries: int,
    job_running: bool,
    limit: int,
    triggered: bool = False,
) -> ReadyChange:
    """The rules' verdict on one fire (or daemon schedule) of a stored job."""
    job = view.jobs[job_key]
    current = view.ready.get(job_key)
    change = rules.within_limit(
        rules.after_fire(
            job,
            current[0] if current else None,
            fire_time,
            disabled=view.is_disabled(job),
            job_running=job_running,
            triggered=triggered,
        ),
        entries,
        limit,
        job_key,
    )
    if change.outcome is ReadyOutcome.REFUSED_QUEUE_FULL:
        log.warning("%s", change.message)
    return change


def catch_up_change(
    view: View,
    job_key: str,
    fires: Sequence[datetime],
    *,
    entries: int,
    job_running: bool,
    limit: int,
) -> ReadyChange:
    """The rules' verdict on several missed fires of a stored transient job, in turn."""
    job = view.jobs[job_key]
    current = view.ready.get(job_key)
    change = rules.within_limit(
        rules.after_fires(
            job,
            current[0] if current else None,
            fires,
            disabled=view.is_disabled(job),
            job_running=job_running,
        ),
        entries,
        limit,
        job_key,
    )
    if change.outcome is ReadyOutcome.REFUSED_QUEUE_FULL:
        log.warning("%s", change.message)
    return change


def trigger(view: View, layout: Layout, job_key: str, token: str | None) -> Plan:
    """Make `token` the last handled trigger token of `job_key` (None = forget it);
    compare-and-set on the version the view knows."""
    path = layout.trigger(job_key)
    current = view.triggers.get(job_key)
    if (current is None and token is None) or (current is not None and current[0] == token):
        return Plan()
    version = -1 if current is None else current[1]

    def apply() -> None:
        if token is None:
            view.triggers.pop(job_key, None)
        else:
            view.triggers[job_key] = (token, version + 1)

    if token is None:
        return Plan([Delete(path, version)], apply)
    if current is None:
        return Plan([Create(path, encode_trigger(token))], apply)
    return Plan([SetData(path, encode_trigger(token), version)], apply)


def fired(view: View, layout: Layout, job_key: str, at: datetime) -> Plan:
    """Record `at` as the last cron fire `job_key` handled, unless a later one is
    recorded: fire times only move forward, whatever the wall clock does."""
    current = view.fired.get(job_key)
    if current is not None and current >= at:
        return Plan()
    path, data = layout.fired(job_key), encode_fired(at)
    op: Op = Create(path, data) if current is None else SetData(path, data)
    return Plan([op], lambda: view.fired.__setitem__(job_key, at))


def launches_at_fire(
    view: View, job_key: str, change: ReadyChange, fire_time: datetime, tasks: Sequence[RunningTask]
) -> bool:
    """Whether a fire's run, `change`, may launch at once with `tasks` planned ahead of
    the fire instead of waiting in the ready queue: it is the job's only run (a new
    entry of one), no task of the job runs or waits for failover, and the tasks are
    that run's, one per shard of the job as stored now, none of them recorded."""
    shards = view.jobs[job_key].spec.sharding_total_count
    return (
        change.outcome is ReadyOutcome.ADDED
        and change.entry is not None
        and change.entry.count == 1
        and not view.running.get(job_key)
        and not view.failover.get(job_key)
        and sorted(t.shard for t in tasks) == list(range(shards))
        and all(
            t.job_key == job_key
            and t.source is LaunchSource.READY
            and t.fire_time == fire_time
            and t.task_id not in view.by_task
            for t in tasks
        )
    )


def forget_fired(view: View, layout: Layout, job_key: str) -> Plan:
    if job_key not in view.fired:
        return Plan()

    def forget() -> None:
        view.fired.pop(job_key, None)

    return Plan([Delete(layout.fired(job_key))], forget)


def restart_fires(view: View, layout: Layout, jobs: Sequence[JobDefinition], now: datetime) -> Plan:
    """Jobs whose cron starts afresh at `now` (created, given another cron or time zone,
    enabled again): no fire before `now` is theirs to catch up after a leader change."""
    plan = Plan()
    for job in jobs:
        if not job.is_daemon:
            plan += fired(view, layout, job.key, now)
    return plan


def remove_running(view: View, layout: Layout, job_key: str, tasks: Sequence[RunningTask]) -> Plan:
    if not tasks:
        return Plan()
    ops: list[Op] = [Delete(layout.running_task(job_key, t.shard)) for t in tasks]
    gone = {t.shard for t in tasks}
    if set(view.running.get(job_key, {})) <= gone and job_key in view.running_parents:
        ops.append(Delete(layout.running_job(job_key)))

    def apply() -> None:
        shards = view.running.get(job_key, {})
        for task in tasks:
            view.unindex_running(task)
        if not shards:
            view.running.pop(job_key, None)
            view.running_parents.discard(job_key)

    return Plan(ops, apply)


def task_state(view: View, layout: Layout, task: RunningTask, state: str) -> Plan:
    """Record a running task's new Mesos state."""
    updated = task.with_state(state)
    path = layout.running_task(task.job_key, task.shard)
    return Plan([SetData(path, updated.encode())], lambda: view.index_running(updated))


def add_running(view: View, layout: Layout, job_key: str, tasks: Sequence[RunningTask]) -> Plan:
    ops: list[Op] = []
    if job_key not in view.running_parents:
        ops.append(Create(layout.running_job(job_key)))
    ops += [Create(layout.running_task(job_key, t.shard), t.encode()) for t in tasks]

    def apply() -> None:
        view.running_parents.add(job_key)
        for task in tasks:
            view.index_running(task)

    return Plan(ops, apply, tuple(tasks))


def remove_failover(view: View, layout: Layout, job_key: str, shards: Sequence[int]) -> Plan:
    if not shards:
        return Plan()
    ops: list[Op] = [Delete(layout.failover_task(job_key, s)) for s in shards]
    if set(view.failover.get(job_key, {})) <= set(shards) and job_key in view.failover_parents:
        ops.append(Delete(layout.failover_job(job_key)))

    def apply() -> None:
        entries = view.failover.get(job_key, {})
        for shard in shards:
            entries.pop(shard, None)
        if not entries:
            view.failover.pop(job_key, None)
            view.failover_parents.discard(job_key)

    return Plan(ops, apply)


def failover(
    view: View,
    layout: Layout,
    failed: FailoverEntry,
    *,
    running_shards: set[int],
    limit: int,
    relaunch: bool = False,
) -> tuple[FailoverOutcome, Plan]:
    """Record `failed` in the failover queue if the rules and the queue limit allow."""
    job_key, shard = failed.job_key, failed.shard
    job = view.jobs.get(job_key)
    outcome = rules.failover_decision(
        job,
        job_disabled=job_key in view.disabled_jobs,
        app_disabled=job is not None and job.app_key in view.disabled_apps,
        entry_exists=shard in view.failover.get(job_key, {}),
        shard_running=shard in running_shards,
        relaunch=relaunch,
        shard=shard,
    )
    if outcome is not FailoverOutcome.RECORDED:
        log.info("failover of %s not recorded: %s", failed.task_id, outcome.value)
        return outcome, Plan()
    if job_key not in view.failover and (
        refusal := rules.room_refusal("failover", len(view.failover), limit, job_key)
    ):
        log.warning("%s", refusal)
        return FailoverOutcome.QUEUE_FULL, Plan()
    ops: list[Op] = []
    if job_key not in view.failover_parents:
        ops.append(Create(layout.failover_job(job_key)))
    ops.append(Create(layout.failover_task(job_key, shard), failed.encode()))

    def apply() -> None:
        view.failover_parents.add(job_key)
        view.failover.setdefault(job_key, {})[shard] = failed

    return outcome, Plan(ops, apply)


def job_flag(view: View, layout: Layout, job_key: str, disabled: bool) -> Plan:
    """Set the job's disabled flag; disabling also drops its ready entry."""
    path = layout.disabled_job(job_key)
    if disabled and job_key not in view.disabled_jobs:
        flag = Plan([Create(path, job_key.encode())], lambda: view.disabled_jobs.add(job_key))
        return flag + ready(view, layout, job_key, None)
    if not disabled and job_key in view.disabled_jobs:
        return Plan([Delete(path)], lambda: view.disabled_jobs.discard(job_key))
    return Plan()


def app_flag(view: View, layout: Layout, app_key: str, disabled: bool) -> Plan:
    """Set the app's disabled flag; disabling also drops its jobs' ready entries."""
    path = layout.disabled_app(app_key)
    if disabled and app_key not in view.disabled_apps:
        plan = Plan([Create(path, app_key.encode())], lambda: view.disabled_apps.add(app_key))
        for job in view.jobs_of_app(app_key):
            plan += ready(view, layout, job.key, None)
        return plan
    if not disabled and app_key in view.disabled_apps:
        return Plan([Delete(path)], lambda: view.disabled_apps.discard(app_key))
    return Plan()


def remove_job(view: View, layout: Layout, job_key: str) -> tuple[Plan, tuple[RunningTask, ...]]:
    """Every node of the job, its config last; and the running tasks it drops."""
    running = tuple(view.running.get(job_key, {}).values())
    plan = (
        remove_running(view, layout, job_key, running)
        + remove_failover(view, layout, job_key, list(view.failover.get(job_key, {})))
        + ready(view, layout, job_key, None)
        + trigger(view, layout, job_key, None)
        + forget_fired(view, layout, job_key)
    )
    if job_key in view.disabled_jobs:
        plan += Plan(
            [Delete(layout.disabled_job(job_key))], lambda: view.disabled_jobs.discard(job_key)
        )
    if job_key in view.jobs:
        plan += Plan([Delete(layout.job(job_key))], lambda: view.forget_job(job_key))
    return plan, running


def launch(view: View, layout: Layout, launches: Sequence[RunningTask]) -> list[Plan]:
    """One plan per job: its running entries, one consumed ready run if any of its
    tasks is READY, and the failover entries its FAILOVER tasks consume.

    Raises ValueError for a launch that does not match the view."""
    by_job: dict[str, list[RunningTask]] = {}
    seen: set[tuple[str, int]] = set()
    for task in launches:
        _check_launch(view, task, seen)
        seen.add((task.job_key, task.shard))
        by_job.setdefault(task.job_key, []).append(task)
    plans = []
    for job_key, tasks in by_job.items():
        plan = add_running(view, layout, job_key, tasks)
        if any(t.source is LaunchSource.READY for t in tasks):
            left, _ = rules.after_launch(view.ready[job_key][0])
            plan += ready(view, layout, job_key, left)
        failed_over = [t.shard for t in tasks if t.source is LaunchSource.FAILOVER]
        plans.append(plan + remove_failover(view, layout, job_key, failed_over))
    return plans


def _check_launch(view: View, task: RunningTask, seen: set[tuple[str, int]]) -> None:
    where = f"task {task.task_id}"
    if (task.job_key, task.shard) in seen or task.task_id in view.by_task:
        raise ValueError(f"{where}: its shard is launched twice, or the task is recorded")
    if task.job_key not in view.jobs:
        raise ValueError(f"{where}: job '{task.job_key}' is not stored")
    if task.shard in view.running.get(task.job_key, {}):
        raise ValueError(f"{where}: shard {task.shard} of '{task.job_key}' is already running")
    if task.source is LaunchSource.FAILOVER and task.shard not in view.failover.get(
        task.job_key, {}
    ):
        raise ValueError(f"{where}: no failover entry for shard {task.shard}")
    if task.source is LaunchSource.READY and task.job_key not in view.ready:
        raise ValueError(f"{where}: job '{task.job_key}' has no ready entry")
