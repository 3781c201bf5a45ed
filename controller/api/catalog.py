"""The jobs and apps the scheduler holds, as the API lists them (pure).

Built from the ZooKeeper view (`controller.state.view.View`) by `HistoryApi` for
`/api/v1/jobs` and `/api/v1/apps`, and used for the jobs-by-state counts of
`/api/v1/statistics`. A job's state here is the scheduler's: Disabled, Running (a
shard launched or running), Pending (runs in the ready queue) or Scheduled. The
CloudJob's own `status.state` adds what only Kubernetes knows (an invalid spec, a
missing app, an offer that never fits).

Lists are sorted by key (`<namespace>.<name>`) and paged by it: a page's `next` is
the last key it holds, passed back as `after`. `Scope` is the namespaces the API may
show (its settings); everything outside is left out, as if it did not exist.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from controller.cron import CronError, parse_cron
from controller.definitions import AppDefinition, JobDefinition
from controller.state.view import View

T = TypeVar("T")
NEXT_FIRES = 3
MAX_PAGE = 1000


class JobState(StrEnum):
    DISABLED = "Disabled"
    RUNNING = "Running"
    PENDING = "Pending"
    SCHEDULED = "Scheduled"


@dataclass(frozen=True)
class Scope:
    """The namespaces the API shows; empty: all."""

    namespaces: frozenset[str] = frozenset()

    def allows(self, namespace: str) -> bool:
        return not self.namespaces or namespace in self.namespaces

    def narrowed(self, namespace: str | None) -> tuple[str, ...] | None:
        """The namespaces a query may read: None for all, () for none."""
        if namespace is not None:
            return (namespace,) if self.allows(namespace) else ()
        return tuple(sorted(self.namespaces)) if self.namespaces else None


@dataclass(frozen=True)
class JobQuery:
    namespace: str | None = None
    app: str | None = None
    job: str | None = None
    state: JobState | None = None
    after: str | None = None
    limit: int = 100


@dataclass(frozen=True)
class AppQuery:
    namespace: str | None = None
    after: str | None = None
    limit: int = 100


def job_state(view: View, job: JobDefinition) -> JobState:
    if view.is_disabled(job):
        return JobState.DISABLED
    if view.running.get(job.key):
        return JobState.RUNNING
    if job.key in view.ready:
        return JobState.PENDING
    return JobState.SCHEDULED


def next_fires(job: JobDefinition, now: datetime, count: int = NEXT_FIRES) -> list[datetime]:
    """The job's next `count` fires after `now`; none for a cron that does not parse."""
    try:
        schedule = parse_cron(job.spec.cron, job.spec.time_zone)
    except CronError:
        return []
    fires: list[datetime] = []
    fire = schedule.next_fire(now)
    while fire is not None and len(fires) < count:
        fires.append(fire)
        fire = schedule.next_fire(fire)
    return fires


def _page(
    items: Iterable[tuple[str, T]], after: str | None, limit: int
) -> tuple[list[tuple[str, T]], str | None]:
    chosen = sorted((k, v) for k, v in items if after is None or k > after)
    page = chosen[: max(1, min(limit, MAX_PAGE))]
    return page, page[-1][0] if len(chosen) > len(page) else None


def _wanted_job(view: View, scope: Scope, query: JobQuery) -> Callable[[JobDefinition], bool]:
    def wanted(job: JobDefinition) -> bool:
        return (
            scope.allows(job.namespace)
            and query.namespace in (None, job.namespace)
            and query.app in (None, job.spec.app_name)
            and query.job in (None, job.name, job.key)
            and query.state in (None, job_state(view, job))
        )

    return wanted


def job_item(view: View, job: JobDefinition, now: datetime) -> dict[str, Any]:
    spec = job.spec
    return {
        "namespace": job.namespace,
        "name": job.name,
        "app": spec.app_name,
        "kind": spec.kind.value,
        "executionType": spec.execution_type.value,
        "cron": spec.cron,
        "timeZone": spec.time_zone,
        "shards": spec.sharding_total_count,
        "cpuCount": spec.cpu_count,
        "memoryMB": spec.memory_mb,
        "failover": spec.failover,
        "misfire": spec.misfire,
        "description": spec.description,
        "state": job_state(view, job).value,
        "runningShards": len(view.running.get(job.key, {})),
        "pendingRuns": entry[0].count if (entry := view.ready.get(job.key)) else 0,
        "failoverShards": sorted(view.failover.get(job.key, {})),
        "nextFires": [f.isoformat() for f in next_fires(job, now)],
    }


def job_page(view: View, scope: Scope, query: JobQuery, now: datetime) -> dict[str, Any]:
    """One page of the jobs `query` asks for, with their state and next fires."""
    wanted = _wanted_job(view, scope, query)
    page, after = _page(
        ((key, job) for key, job in view.jobs.items() if wanted(job)), query.after, query.limit
    )
    return {"items": [job_item(view, job, now) for _, job in page], "next": after}


def app_item(view: View, app: AppDefinition) -> dict[str, Any]:
    spec = app.spec
    return {
        "namespace": app.namespace,
        "name": app.name,
        "appURL": spec.app_url,
        "bootstrapScript": spec.bootstrap_script,
        "cpuCount": spec.cpu_count,
        "memoryMB": spec.memory_mb,
        "disabled": spec.disabled or app.key in view.disabled_apps,
        "jobs": len(view.jobs_of_app(app.key)),
    }


def app_page(view: View, scope: Scope, query: AppQuery) -> dict[str, Any]:
    page, after = _page(
        (
            (key, app)
            for key, app in view.apps.items()
            if scope.allows(app.namespace) and query.namespace in (None, app.namespace)
        ),
        query.after,
        query.limit,
    )
    return {"items": [app_item(view, app) for _, app in page], "next": after}


def scoped_view(view: View, scope: Scope) -> View:
    """The view with only the scope's namespaces: what `/queues` and `/statistics` read."""
    if not scope.namespaces:
        return view

    def mine(namespaced: dict[str, T]) -> dict[str, T]:
        return {k: v for k, v in namespaced.items() if scope.allows(k.partition(".")[0])}

    running = mine(view.running)
    return View(
        apps=mine(view.apps),
        jobs=mine(view.jobs),
        disabled_jobs={k for k in view.disabled_jobs if scope.allows(k.partition(".")[0])},
        disabled_apps={k for k in view.disabled_apps if scope.allows(k.partition(".")[0])},
        ready=mine(view.ready),
        running=running,
        by_task={t: task for t, task in view.by_task.items() if task.job_key in running},
        failover=mine(view.failover),
    )


def jobs_by_state(view: View) -> dict[str, int]:
    return dict(Counter(job_state(view, job).value for job in view.jobs.values()))
