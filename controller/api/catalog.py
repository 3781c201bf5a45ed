"""The jobs, apps and queues the scheduler holds, as the API lists them (pure).

Built from the ZooKeeper view (`controller.state.view.View`) by `HistoryApi` for
`/api/v1/jobs`, `/api/v1/apps` and `/api/v1/queues`, and the job counts (by state,
kind, execution type) of `/api/v1/statistics`. A job's state here is the
scheduler's: Disabled, Running (a shard launched or running), Pending (runs in the
ready queue) or Scheduled. The
CloudJob's own `status.state` adds what only Kubernetes knows (an invalid spec, a
missing app, an offer that never fits).

Lists are sorted by key (`<namespace>.<name>`) and paged by it: a page's `next` is
the last key it holds, passed back as `after`. `Scope` is the namespaces the API may
show (its settings); everything outside is left out, as if it did not exist.

A view serves many requests (until the state changes), so `Listing` keeps what is
derived from all of it, the sorted job keys and the whole view's counts and queues,
computed once per view: a page of jobs then walks the keys from where it starts (a
namespace's keys are contiguous) instead of sorting 10,000 jobs per request.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from itertools import islice
from typing import Any, TypeVar

from controller.cron import CronError, parse_cron
from controller.definitions import AppDefinition, JobDefinition
from controller.naming import split_key
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


def job_state(view: View, job: JobDefinition, key: str | None = None) -> JobState:
    """The job's state; `key` is its key when the caller has it (counting 10,000
    jobs, building each key again is a good part of the time)."""
    key = job.key if key is None else key
    if key in view.disabled_jobs or (view.disabled_apps and job.app_key in view.disabled_apps):
        return JobState.DISABLED
    if view.running.get(key):
        return JobState.RUNNING
    if key in view.ready:
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


def _candidates(keys: Sequence[str], query: JobQuery) -> Iterator[str]:
    """The keys a job query may match, in order, from after `query.after`: those a
    job named within its namespace may have, a namespace's run of keys, or all."""
    if query.job is not None and query.namespace is not None:
        named = {query.job, f"{query.namespace}.{query.job}"}
        yield from sorted(k for k in named if query.after is None or k > query.after)
        return
    start, prefix = 0, ""
    if query.namespace is not None:
        prefix = f"{query.namespace}."
        start = bisect_left(keys, prefix)
    if query.after is not None:
        start = max(start, bisect_right(keys, query.after))
    for key in islice(keys, start, None):
        if not key.startswith(prefix):
            return
        yield key


def job_page(
    view: View,
    scope: Scope,
    query: JobQuery,
    now: datetime,
    keys: Sequence[str] | None = None,
) -> dict[str, Any]:
    """One page of the jobs `query` asks for, with their state and next fires; `keys`
    are the view's job keys, sorted (a `Listing`'s), else sorted here."""
    wanted = _wanted_job(view, scope, query)
    limit = max(1, min(query.limit, MAX_PAGE))
    page: list[JobDefinition] = []
    more = False
    for key in _candidates(sorted(view.jobs) if keys is None else keys, query):
        job = view.jobs.get(key)
        if job is None or not wanted(job):
            continue
        if len(page) == limit:
            more = True
            break
        page.append(job)
    return {
        "items": [job_item(view, job, now) for job in page],
        "next": page[-1].key if more else None,
    }


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
    return dict(Counter(job_state(view, job, key).value for key, job in view.jobs.items()))


def _names(key: str) -> dict[str, str]:
    namespace, name = split_key(key)
    return {"namespace": namespace, "job": name}


def queues_of(view: View) -> dict[str, Any]:
    """The three queues as the API shows them (pure)."""
    return {
        "ready": [
            {
                **_names(key),
                "runs": entry.count,
                "fireTimes": [f.isoformat() for f in entry.fires],
            }
            for key, (entry, _) in sorted(view.ready.items())
        ],
        "running": [
            {
                **_names(task.job_key),
                "shard": task.shard,
                "taskId": task.task_id,
                "agentId": task.agent_id,
                "hostname": task.hostname,
                "state": task.state,
                "launchedAt": task.launched_at.isoformat(),
                "fireTime": task.fire_time.isoformat() if task.fire_time else None,
            }
            for key in sorted(view.running)
            for _, task in sorted(view.running[key].items())
        ],
        "failover": [
            {
                **_names(entry.job_key),
                "shard": entry.shard,
                "taskId": entry.task_id,
                "fireTime": entry.fire_time.isoformat() if entry.fire_time else None,
            }
            for key in sorted(view.failover)
            for _, entry in sorted(view.failover[key].items())
        ],
    }


def jobs_of(view: View) -> dict[str, Any]:
    """Registered jobs by execution type, by kind and by state (pure)."""
    jobs = list(view.jobs.values())
    return {
        "total": len(jobs),
        "byExecutionType": dict(Counter(j.spec.execution_type.value for j in jobs)),
        "byKind": dict(Counter(j.spec.kind.value for j in jobs)),
        "byState": jobs_by_state(view),
    }


class Listing:
    """What requests derive from all of one view, computed on first use (see the
    module docstring); the view must not change while its listing is used."""

    def __init__(self, view: View) -> None:
        self.view = view

    @cached_property
    def job_keys(self) -> list[str]:
        return sorted(self.view.jobs)

    @cached_property
    def jobs(self) -> dict[str, Any]:
        """`jobs_of` the whole view."""
        return jobs_of(self.view)

    @cached_property
    def queues(self) -> dict[str, Any]:
        """`queues_of` the whole view."""
        return queues_of(self.view)
