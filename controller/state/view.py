"""The leader's in-memory copy of the ZooKeeper state, as plain mutable maps.

Owned by `StateStore`, built by `loading.read_view`, read by `planning` to decide
the operations of a change, and mutated only by the `apply` of a plan whose
transaction ZooKeeper has accepted.

`copy` gives readers outside the store (the history API of the leading replica) a
view of their own, which later writes do not change under them.

Every queue is keyed by job, so what one job needs (its ready entry, running shards,
failover shards) is found without scanning the queues; `jobs_by_app` indexes the jobs
of each app and is kept by `put_job` / `forget_job`, the only writers of `jobs`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from controller.definitions import AppDefinition, JobDefinition
from controller.state.records import FailoverEntry, ReadyEntry, RunningTask


@dataclass
class View:
    apps: dict[str, AppDefinition] = field(default_factory=dict)
    jobs: dict[str, JobDefinition] = field(default_factory=dict)
    """job key → definition; written through `put_job` / `forget_job` only"""
    jobs_by_app: dict[str, dict[str, None]] = field(default_factory=dict)
    """app key → keys of its jobs (insertion-ordered)"""
    disabled_jobs: set[str] = field(default_factory=set)
    disabled_apps: set[str] = field(default_factory=set)
    ready: dict[str, tuple[ReadyEntry, int]] = field(default_factory=dict)
    """job key → (entry, znode version)"""
    running: dict[str, dict[int, RunningTask]] = field(default_factory=dict)
    """job key → shard → task"""
    running_parents: set[str] = field(default_factory=set)
    """jobs whose `state/running/<job>` node exists"""
    by_task: dict[str, RunningTask] = field(default_factory=dict)
    executors: dict[str, int] = field(default_factory=dict)
    """executor id → how many running tasks recorded with it (none: absent)"""
    failover: dict[str, dict[int, FailoverEntry]] = field(default_factory=dict)
    failover_parents: set[str] = field(default_factory=set)
    triggers: dict[str, tuple[str, int]] = field(default_factory=dict)
    """job key → (last handled trigger token, znode version)"""
    fired: dict[str, datetime] = field(default_factory=dict)
    """job key → the last cron fire handled (transient jobs)"""
    framework_id: str | None = None

    def copy(self) -> View:
        """A copy that shares only immutable values (definitions, entries, tasks)."""
        return View(
            apps=dict(self.apps),
            jobs=dict(self.jobs),
            jobs_by_app={app: dict(keys) for app, keys in self.jobs_by_app.items()},
            disabled_jobs=set(self.disabled_jobs),
            disabled_apps=set(self.disabled_apps),
            ready=dict(self.ready),
            running={job: dict(shards) for job, shards in self.running.items()},
            running_parents=set(self.running_parents),
            by_task=dict(self.by_task),
            executors=dict(self.executors),
            failover={job: dict(shards) for job, shards in self.failover.items()},
            failover_parents=set(self.failover_parents),
            triggers=dict(self.triggers),
            fired=dict(self.fired),
            framework_id=self.framework_id,
        )

    def is_disabled(self, job: JobDefinition) -> bool:
        return job.key in self.disabled_jobs or job.app_key in self.disabled_apps

    def jobs_of_app(self, app_key: str) -> list[JobDefinition]:
        return [self.jobs[key] for key in self.jobs_by_app.get(app_key, {})]

    def put_job(self, job: JobDefinition) -> None:
        previous = self.jobs.get(job.key)
        if previous is not None and previous.app_key != job.app_key:
            self._unindex(previous)
        self.jobs[job.key] = job
        self.jobs_by_app.setdefault(job.app_key, {})[job.key] = None

    def forget_job(self, job_key: str) -> None:
        job = self.jobs.pop(job_key, None)
        if job is not None:
            self._unindex(job)

    def _unindex(self, job: JobDefinition) -> None:
        keys = self.jobs_by_app.get(job.app_key)
        if keys is not None:
            keys.pop(job.key, None)
            if not keys:
                del self.jobs_by_app[job.app_key]

    def forget_app(self, app_key: str) -> None:
        self.apps.pop(app_key, None)

    def index_running(self, task: RunningTask) -> None:
        shards = self.running.setdefault(task.job_key, {})
        previous = shards.get(task.shard)
        if previous is not None:
            self._count_executor(previous, -1)
            if previous.task_id != task.task_id:
                self.by_task.pop(previous.task_id, None)
        shards[task.shard] = task
        self.by_task[task.task_id] = task
        self._count_executor(task, 1)

    def unindex_running(self, task: RunningTask) -> None:
        """Forget a running task: its shard's entry and its id (the job's entry stays,
        even if now empty)."""
        current = self.running.get(task.job_key, {}).pop(task.shard, None)
        if current is not None:
            self._count_executor(current, -1)
        self.by_task.pop(task.task_id, None)

    def _count_executor(self, task: RunningTask, by: int) -> None:
        if not task.executor_id:
            return
        count = self.executors.get(task.executor_id, 0) + by
        if count > 0:
            self.executors[task.executor_id] = count
        else:
            self.executors.pop(task.executor_id, None)
