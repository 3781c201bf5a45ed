"""Which work a launch cycle may place: failover shards and ready jobs.

Pure. `launcher.plan_launch` passes a snapshot of the queues and the definitions; `eligible_work`
answers what may be launched now (failover entries first, one shard each; then ready
jobs, all their shards), which ready entries are stale (job definition gone) and why
the rest waits. Nothing here decides *where* work goes: that is `placement`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from controller.definitions import AppDefinition, JobDefinition
from controller.mesos.tasks import (
    DEFAULT_EXECUTOR_OPTIONS,
    AppVersion,
    ExecutorOptions,
    MetaInfo,
    app_version,
    uses_command_executor,
)
from controller.resources import PlacementStrategy
from controller.state.records import LaunchSource


@dataclass(frozen=True)
class WorkItem:
    """Shards of one job to place together (all of them for READY, one for FAILOVER)."""

    job_key: str
    app_key: str
    launch_type: LaunchSource
    shards: tuple[int, ...]
    cpus: float
    mem: float
    strategy: PlacementStrategy = PlacementStrategy.BINPACK
    # The app version whose executor the tasks run in (None: the Mesos command executor).
    executor: AppVersion | None = None
    executor_cpus: float = 0.0
    executor_mem: float = 0.0

    @property
    def all_or_nothing(self) -> bool:
        return self.launch_type is LaunchSource.READY


@dataclass(frozen=True)
class QueueSnapshot:
    """The scheduling queues as the in-memory view holds them at the start of a cycle."""

    ready: Mapping[str, int]
    failover: Collection[MetaInfo]
    running: Collection[MetaInfo]
    disabled_jobs: Collection[str] = frozenset()
    disabled_apps: Collection[str] = frozenset()


@dataclass
class EligibleWork:
    items: list[WorkItem] = field(default_factory=list)
    # Ready entries whose job definition is gone: delete them.
    stale_ready: list[str] = field(default_factory=list)
    # Failover entries whose job definition is gone: delete them.
    stale_failover: list[MetaInfo] = field(default_factory=list)
    # Job key → why its pending work is not launched this cycle.
    waiting: dict[str, str] = field(default_factory=dict)


def work_item(
    job: JobDefinition,
    app: AppDefinition,
    launch_type: LaunchSource,
    shards: tuple[int, ...],
    options: ExecutorOptions = DEFAULT_EXECUTOR_OPTIONS,
    version: AppVersion | None = None,
) -> WorkItem:
    """`version`: the app's current version, if known (a digest of its ExecutorInfo,
    worth computing once per app rather than once per item)."""
    own_executor = not uses_command_executor(job)
    if own_executor and version is None:
        version = app_version(app, options)
    return WorkItem(
        job_key=job.key,
        app_key=app.key,
        launch_type=launch_type,
        shards=shards,
        cpus=job.spec.cpu_count,
        mem=job.spec.memory_mb,
        strategy=job.spec.placement_strategy,
        executor=version if own_executor else None,
        executor_cpus=app.spec.cpu_count if own_executor else 0.0,
        executor_mem=app.spec.memory_mb if own_executor else 0.0,
    )


def eligible_work(
    queues: QueueSnapshot,
    jobs: Mapping[str, JobDefinition],
    apps: Mapping[str, AppDefinition],
    *,
    unsettled_jobs: Collection[str] = frozenset(),
    options: ExecutorOptions = DEFAULT_EXECUTOR_OPTIONS,
) -> EligibleWork:
    """Work that may be launched now, in launch priority order.

    `unsettled_jobs` are jobs whose tasks the first reconciliation after a leader change
    has not accounted for yet: nothing of theirs launches until it has.
    """
    result = EligibleWork()
    versions: dict[str, AppVersion] = {}

    def item(job: JobDefinition, launch_type: LaunchSource, shards: tuple[int, ...]) -> WorkItem:
        app = apps[job.app_key]
        if app.key not in versions:
            versions[app.key] = app_version(app, options)
        return work_item(job, app, launch_type, shards, options, versions[app.key])

    running_jobs = {meta.job_key for meta in queues.running}
    running = set(queues.running)

    def blocked(job_key: str) -> str | None:
        job = jobs.get(job_key)
        if job is None:
            return "its definition is gone"
        if job_key in queues.disabled_jobs or job.spec.disabled:
            return "the job is disabled"
        if job.app_key in queues.disabled_apps:
            return f"its app {job.app_key} is disabled"
        app = apps.get(job.app_key)
        if app is None:
            return f"its app {job.app_key} is not defined"
        if app.spec.disabled:
            return f"its app {job.app_key} is disabled"
        if job_key in unsettled_jobs:
            return "waiting for reconciliation of its tasks with Mesos"
        return None

    failover_jobs: set[str] = set()
    for meta in sorted(set(queues.failover)):
        job = jobs.get(meta.job_key)
        if job is None or meta.shard >= job.spec.sharding_total_count:
            # A shard the job no longer has (its sharding count went down) holds
            # nothing back: it is deleted, never launched.
            result.stale_failover.append(meta)
            continue
        failover_jobs.add(meta.job_key)
        if reason := blocked(meta.job_key):
            result.waiting[meta.job_key] = reason
            continue
        if meta in running:
            continue
        result.items.append(item(job, LaunchSource.FAILOVER, (meta.shard,)))

    for job_key, times in queues.ready.items():
        if times <= 0:
            continue
        if job_key not in jobs:
            result.stale_ready.append(job_key)
            continue
        if reason := blocked(job_key):
            result.waiting[job_key] = reason
            continue
        if job_key in failover_jobs:
            result.waiting[job_key] = "its failed-over shards launch first"
            continue
        if job_key in running_jobs:
            result.waiting.setdefault(job_key, "its previous run is still running")
            continue
        job = jobs[job_key]
        shards = tuple(range(job.spec.sharding_total_count))
        result.items.append(item(job, LaunchSource.READY, shards))
    return result
