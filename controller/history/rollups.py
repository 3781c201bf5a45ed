"""Runs that ended per hour and per day, by namespace and outcome (`run_counts`).

The writer adds each batch's run ends (`add`) in the transaction that ends their runs,
so a run is counted when, and only when, its row is ended: once. The retention drops
the intervals that ended before the age it keeps (`prune`); what it deletes by count
per job stays counted, as in the job totals. The statistics' hourly and daily series
read the whole intervals from here and only the partial ones at their edges from
`runs` (`whole_intervals`): a series of 60 days reads at most 60 rows per namespace
and outcome instead of every run of those days. Migration 0003 fills the table from
the runs already stored. Used by `storing` (writes, retention) and `queries` (series).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from controller.history.database import loaded, stored, utc
from controller.history.schema import run_counts

SPANS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
Series = dict[datetime, dict[str, int]]
"""interval start → outcome → runs"""


def start_of(moment: datetime, span: str) -> datetime:
    """The start (UTC) of the hour or day `moment` falls in."""
    hour = utc(moment).replace(minute=0, second=0, microsecond=0)
    return hour if span == "hour" else hour.replace(hour=0)


def whole_intervals(span: str, since: datetime, until: datetime) -> tuple[datetime, datetime]:
    """The start of the first whole interval within [since, until) and the end of the
    last one; the start is not before the end when there is none."""
    first = start_of(since, span)
    if first < utc(since):
        first += SPANS[span]
    return first, start_of(until, span)


def count_rows(ends: Iterable[tuple[str, datetime, str]]) -> list[dict[str, Any]]:
    """The `run_counts` increments for run ends given as (namespace, ended at, outcome)."""
    counts = Counter(
        (span, start_of(ended_at, span), namespace, outcome)
        for namespace, ended_at, outcome in ends
        for span in SPANS
    )
    return [
        {"span": span, "start": start, "namespace": namespace, "outcome": outcome, "runs": runs}
        for (span, start, namespace, outcome), runs in sorted(counts.items())
    ]


async def add(connection: AsyncConnection, ends: Iterable[tuple[str, datetime, str]]) -> None:
    """Count run ends (inside the caller's transaction)."""
    rows = count_rows(ends)
    if not rows:
        return
    insert = (
        postgresql.insert(run_counts)
        if connection.dialect.name == "postgresql"
        else sqlite.insert(run_counts)
    )
    await connection.execute(
        insert.on_conflict_do_update(
            index_elements=["span", "start", "namespace", "outcome"],
            set_={"runs": run_counts.c.runs + insert.excluded.runs},
        ),
        [{**row, "start": stored(row["start"])} for row in rows],
    )


async def prune(connection: AsyncConnection, older_than: datetime) -> None:
    """Forget the intervals that ended before `older_than`."""
    for span, length in SPANS.items():
        await connection.execute(
            delete(run_counts).where(
                run_counts.c.span == span, run_counts.c.start <= stored(older_than - length)
            )
        )


async def counted(
    connection: AsyncConnection,
    span: str,
    first: datetime,
    end: datetime,
    namespaces: Iterable[str] | None,
    series: Series,
) -> None:
    """Add to `series` the runs counted in the intervals from `first` to `end` (of
    `namespaces` only, unless None)."""
    columns = run_counts.c
    query = (
        select(columns.start, columns.outcome, func.sum(columns.runs))
        .where(columns.span == span, columns.start >= stored(first), columns.start < stored(end))
        .group_by(columns.start, columns.outcome)
    )
    if namespaces is not None:
        query = query.where(columns.namespace.in_(tuple(namespaces)))
    for start, outcome, runs in await connection.execute(query):
        counts = series.setdefault(loaded(start), {"succeeded": 0, "failed": 0, "killed": 0})  # type: ignore[arg-type]
        counts[outcome] = counts.get(outcome, 0) + int(runs)
