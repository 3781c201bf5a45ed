"""The reads behind the history API: runs and transitions with filters and paging,
and the run results of the last minute, hour and day.

Pages go newest first and are keyed by row id: a page's `next` is the id to pass as
`before` for the one after it, so paging is stable while rows are added. Used by
`controller.api`, on any replica (a standby reads the database the leader writes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, Table, false, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from controller.history import rollups
from controller.history.database import loaded, stored
from controller.history.schema import runs, transitions

MAX_PAGE = 1000


@dataclass(frozen=True)
class Filter:
    namespace: str | None = None
    job: str | None = None
    """The job's name (within `namespace`) or its key `<namespace>.<name>`."""
    task_id: str | None = None
    outcome: str | None = None
    state: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before: int | None = None
    limit: int = 100
    namespaces: tuple[str, ...] | None = None
    """Only these namespaces (the API's scope); None: all."""


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next: int | None


def _where(table: Table, time_column: str, wanted: Filter) -> list[Any]:
    """The conditions of a filter, but its paging."""
    columns = table.c
    conditions: list[Any] = []
    if wanted.job:
        key = wanted.job if "." in wanted.job or not wanted.namespace else None
        key = key or f"{wanted.namespace}.{wanted.job}"
        # A job's key holds its namespace: decided here, the namespace's index (all of
        # its runs) is no candidate for the database to follow instead of the job's.
        namespace = key.partition(".")[0]
        if wanted.namespace not in (None, "", namespace) or (
            wanted.namespaces is not None and namespace not in wanted.namespaces
        ):
            conditions.append(false())
        conditions.append(columns.job_key == key)
    else:
        if wanted.namespaces is not None:
            conditions.append(columns.namespace.in_(wanted.namespaces))
        if wanted.namespace:
            conditions.append(columns.namespace == wanted.namespace)
    if wanted.task_id:
        conditions.append(columns.task_id == wanted.task_id)
    if wanted.outcome and "outcome" in columns:
        conditions.append(columns.outcome == wanted.outcome)
    if wanted.state and "state" in columns:
        conditions.append(columns.state == wanted.state)
    if wanted.since:
        conditions.append(columns[time_column] >= stored(wanted.since))
    if wanted.until:
        conditions.append(columns[time_column] < stored(wanted.until))
    return conditions


def _filtered(table: Table, time_column: str, wanted: Filter) -> Select[Any]:
    query = select(table).where(*_where(table, time_column, wanted))
    if wanted.before is not None:
        query = query.where(table.c.id < wanted.before)
    limit = max(1, min(wanted.limit, MAX_PAGE))
    return query.order_by(table.c.id.desc()).limit(limit + 1)


def _time(value: datetime | None) -> str | None:
    moment = loaded(value)
    return None if moment is None else moment.isoformat()


def run_item(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "namespace": row.namespace,
        "job": row.job_name,
        "shard": row.shard,
        "taskId": row.task_id,
        "source": row.source,
        "agentId": row.agent_id,
        "hostname": row.hostname,
        "executorId": row.executor_id,
        "fireTime": _time(row.fire_time),
        "startedAt": _time(row.started_at),
        "endedAt": _time(row.ended_at),
        "outcome": row.outcome,
        "state": row.state,
        "message": row.message,
        "exitStatus": row.exit_status,
        "stderrTail": row.stderr_tail,
        "sandbox": row.sandbox,
    }


def transition_item(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "namespace": row.namespace,
        "job": row.job_key.partition(".")[2],
        "shard": row.shard,
        "taskId": row.task_id,
        "state": row.state,
        "at": _time(row.at),
        "source": row.source,
        "reason": row.reason,
        "message": row.message,
        "agentId": row.agent_id,
        "hostname": row.hostname,
    }


async def _page(connection: AsyncConnection, query: Select[Any], limit: int, item: Any) -> Page:
    rows = list(await connection.execute(query))
    limit = max(1, min(limit, MAX_PAGE))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([item(r) for r in rows], rows[-1].id if more and rows else None)


async def run_page(connection: AsyncConnection, wanted: Filter) -> Page:
    return await _page(connection, _filtered(runs, "started_at", wanted), wanted.limit, run_item)


async def transition_page(connection: AsyncConnection, wanted: Filter) -> Page:
    query = _filtered(transitions, "at", wanted)
    return await _page(connection, query, wanted.limit, transition_item)


WINDOWS = {
    "lastMinute": timedelta(minutes=1),
    "lastHour": timedelta(hours=1),
    "lastDay": timedelta(days=1),
}


INTERVALS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
_SQLITE_BUCKETS = {
    "minute": "%Y-%m-%d %H:%M:00",
    "hour": "%Y-%m-%d %H:00:00",
    "day": "%Y-%m-%d 00:00:00",
}
MAX_BUCKETS = 1500


def _scope_of(wanted: Filter) -> Filter:
    return Filter(namespace=wanted.namespace, job=wanted.job, namespaces=wanted.namespaces)


def _bucket(connection: AsyncConnection, interval: str) -> Any:
    """The start of the interval an end time falls in, as the database computes it."""
    if connection.dialect.name == "postgresql":
        return func.date_trunc(interval, func.timezone("UTC", runs.c.ended_at))
    return func.strftime(_SQLITE_BUCKETS[interval], runs.c.ended_at)


async def _runs_per_interval(
    connection: AsyncConnection,
    interval: str,
    since: datetime,
    until: datetime,
    wanted: Filter,
    series: rollups.Series,
) -> None:
    """Add to `series` the runs that ended between `since` and `until`, counted from
    `runs` (the index on end time and outcome answers it alone)."""
    bucket = _bucket(connection, interval).label("bucket")
    query = (
        select(bucket, runs.c.outcome, func.count())
        .where(
            runs.c.ended_at >= stored(since),
            runs.c.ended_at < stored(until),
            runs.c.outcome.is_not(None),
            *_where(runs, "ended_at", _scope_of(wanted)),
        )
        .group_by(bucket, runs.c.outcome)
    )
    for start, outcome, count in await connection.execute(query):
        moment = start if isinstance(start, datetime) else datetime.fromisoformat(str(start))
        counts = series.setdefault(loaded(moment), {"succeeded": 0, "failed": 0, "killed": 0})  # type: ignore[arg-type]
        counts[outcome] = counts.get(outcome, 0) + int(count)


async def result_series(
    connection: AsyncConnection,
    interval: str,
    since: datetime,
    until: datetime,
    wanted: Filter = Filter(),
) -> list[dict[str, Any]]:
    """Runs that ended per minute, hour or day between `since` and `until`, by outcome,
    oldest first; intervals without runs are left out. Of `wanted`'s namespaces and job
    only (its times and paging do not apply). Whole hours and days of all jobs come
    from their counts (`rollups`), the rest from the runs."""
    series: rollups.Series = {}
    first, end = (
        rollups.whole_intervals(interval, since, until)
        if interval in rollups.SPANS and not wanted.job
        else (until, until)
    )
    if first >= end:
        await _runs_per_interval(connection, interval, since, until, wanted, series)
    else:
        if since < first:
            await _runs_per_interval(connection, interval, since, first, wanted, series)
        namespaces = _namespaces(wanted)
        await rollups.counted(connection, interval, first, end, namespaces, series)
        if end < until:
            await _runs_per_interval(connection, interval, end, until, wanted, series)
    return [{"start": start.isoformat(), **counts} for start, counts in sorted(series.items())]


def _namespaces(wanted: Filter) -> tuple[str, ...] | None:
    """The namespaces a filter allows (None: all)."""
    if wanted.namespace:
        allowed = wanted.namespaces is None or wanted.namespace in wanted.namespaces
        return (wanted.namespace,) if allowed else ()
    return wanted.namespaces


async def results(
    connection: AsyncConnection, now: datetime, wanted: Filter = Filter()
) -> dict[str, dict[str, int]]:
    """Runs that ended in each window, by outcome (of `wanted`'s namespaces and job)."""
    answer: dict[str, dict[str, int]] = {}
    for name, span in WINDOWS.items():
        query = (
            select(runs.c.outcome, func.count())
            .where(
                runs.c.ended_at >= stored(now - span),
                runs.c.outcome.is_not(None),
                *_where(runs, "ended_at", _scope_of(wanted)),
            )
            .group_by(runs.c.outcome)
        )
        counts = {"succeeded": 0, "failed": 0, "killed": 0}
        for outcome, count in await connection.execute(query):
            counts[outcome] = int(count)
        answer[name] = counts
    return answer
