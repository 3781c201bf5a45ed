"""What each command shows as a table, from the history API's documents (pure).

`controller.plugin.cli` fetches a document (a run page, the queues, the statistics)
and hands it here with the time to count ages from; `-o wide` adds columns. The
documents' shapes are those of the API's OpenAPI document (docs/history.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from controller.plugin.tables import (
    NONE,
    Table,
    between,
    cell,
    pairs,
    shortened,
    timestamp,
)

# A message wider than this is cut in the default table (`-o wide` shows it whole).
MESSAGE_WIDTH = 60
# Fire times listed per ready job; the rest are counted.
FIRE_TIMES = 3

Document = Mapping[str, Any]


def outcome(run: Document) -> str:
    """`Succeeded`, `Failed`, `Killed`, or `Running` for a run that has not ended."""
    value = run.get("outcome")
    return str(value).capitalize() if value else "Running"


def runs_table(
    runs: Sequence[Document], now: datetime, *, wide: bool = False, with_job: bool = False
) -> Table:
    """One row per shard run, in the API's order (newest first)."""
    headers = ["shard", "outcome", "host", "started", "duration"]
    if with_job:
        headers = ["namespace", "job", *headers]
    if wide:
        headers += ["exit", "fire time", "task"]
    headers.append("message")
    rows = []
    for run in runs:
        row = [
            str(run["shard"]),
            outcome(run),
            cell(run.get("hostname")),
            timestamp(run.get("startedAt")),
            between(run.get("startedAt"), run.get("endedAt"), now),
        ]
        if with_job:
            row = [cell(run.get("namespace")), cell(run.get("job")), *row]
        if wide:
            row += [
                cell(run.get("exitStatus")),
                timestamp(run.get("fireTime")),
                cell(run["taskId"]),
            ]
        message = cell(run.get("message"))
        row.append(message if wide else shortened(message, MESSAGE_WIDTH))
        rows.append(tuple(row))
    return Table(tuple(headers), tuple(rows))


def _fire_times(times: Sequence[str]) -> str:
    shown = ",".join(timestamp(t) for t in times[:FIRE_TIMES])
    rest = len(times) - FIRE_TIMES
    if not shown:
        return NONE
    return f"{shown} +{rest} more" if rest > 0 else shown


def queues_in(queues: Document, namespace: str) -> dict[str, Any]:
    """The queues with only `namespace`'s jobs."""
    return {
        name: [item for item in items if item["namespace"] == namespace]
        for name, items in queues.items()
    }


def queue_tables(queues: Document, now: datetime, *, wide: bool = False) -> list[Table]:
    """The ready, running and failover queues, a table each, every row naming its queue
    (so they stay apart without headers)."""
    ready = Table(
        ("queue", "namespace", "job", "runs", "fire times"),
        tuple(
            (
                "ready",
                item["namespace"],
                item["job"],
                str(item["runs"]),
                _fire_times(item["fireTimes"]),
            )
            for item in queues["ready"]
        ),
    )
    running_headers = ["queue", "namespace", "job", "shard", "state", "host", "age"]
    failover_headers = ["queue", "namespace", "job", "shard", "fire time"]
    if wide:
        running_headers += ["fire time", "task"]
        failover_headers += ["failed task"]
    running_rows = []
    for item in queues["running"]:
        row = [
            "running",
            item["namespace"],
            item["job"],
            str(item["shard"]),
            cell(item.get("state")),
            cell(item.get("hostname")),
            between(item.get("launchedAt"), None, now),
        ]
        if wide:
            row += [timestamp(item.get("fireTime")), cell(item.get("taskId"))]
        running_rows.append(tuple(row))
    failover_rows = []
    for item in queues["failover"]:
        row = [
            "failover",
            item["namespace"],
            item["job"],
            str(item["shard"]),
            timestamp(item.get("fireTime")),
        ]
        if wide:
            row.append(cell(item.get("taskId")))
        failover_rows.append(tuple(row))
    return [
        ready,
        Table(tuple(running_headers), tuple(running_rows)),
        Table(tuple(failover_headers), tuple(failover_rows)),
    ]


_WINDOWS = (("lastMinute", "last minute"), ("lastHour", "last hour"), ("lastDay", "last day"))
_OUTCOMES = ("succeeded", "failed", "killed")


def statistics_tables(statistics: Document) -> list[Table]:
    """Run results per window, then running tasks and registered jobs."""
    results = statistics["results"]
    windows = Table(
        ("window", *_OUTCOMES),
        tuple((label, *(str(results[key][o]) for o in _OUTCOMES)) for key, label in _WINDOWS),
    )
    jobs = statistics["jobs"]
    totals = Table(
        ("running tasks", "jobs", "by state", "by execution type", "by kind"),
        (
            (
                str(statistics["runningTasks"]),
                str(jobs["total"]),
                pairs(jobs["byState"]),
                pairs(jobs["byExecutionType"]),
                pairs(jobs["byKind"]),
            ),
        ),
    )
    return [windows, totals]


def series_table(series: Document) -> Table:
    """Runs that ended per interval, oldest first (intervals without runs left out)."""
    return Table(
        ("start", *_OUTCOMES),
        tuple(
            (timestamp(item["start"]), *(str(item[o]) for o in _OUTCOMES))
            for item in series["items"]
        ),
    )
