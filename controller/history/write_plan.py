"""What a batch of history records writes, decided in Python before any write.

`plan` takes the batch's run and removal records in order and what the database held
for them before the batch (each run key's row: open or ended; the removals already
applied) and answers the rows to upsert, the open rows to end as killed, the per-job
counter increments and the removals to apply, in segments that end at each removal
(a removal marks the runs present when it comes, so what follows it is written
after it). It also answers which records change a row, in order — what one statement
per record, each judged by the rows the ones before it left, would have changed — and
the run ends the rollups count. Pure; `storing.write_batch` reads the states, calls it
and executes the segments, each with a fixed handful of executemany statements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controller.history.database import stored
from controller.history.records import (
    HistoryRecord,
    JobRemoved,
    Outcome,
    RunAbandoned,
    RunEnded,
    RunLaunched,
    RunPlace,
)

Changed = RunLaunched | RunEnded | RunAbandoned | JobRemoved

ENDED_FIELDS = (
    "started_at",
    "ended_at",
    "outcome",
    "state",
    "message",
    "exit_status",
    "stderr_tail",
    "sandbox",
)
"""The columns an end sets on an open row."""

# an open row's end fields (its start is the launch's)
_OPEN = dict.fromkeys(ENDED_FIELDS[1:])


def place_row(run_key: str, place: RunPlace) -> dict[str, Any]:
    return {
        "run_key": run_key,
        "job_key": place.job_key,
        "namespace": place.namespace,
        "job_name": place.job_name,
        "shard": place.shard,
        "task_id": place.task_id,
        "source": place.source,
        "agent_id": place.agent_id,
        "hostname": place.hostname,
        "executor_id": place.executor_id,
        "fire_time": stored(place.fire_time),
        "started_at": stored(place.launched_at),
    }


def ended_fields(record: RunEnded) -> dict[str, Any]:
    return {
        "started_at": stored(record.started_at),
        "ended_at": stored(record.ended_at),
        "outcome": record.outcome.value,
        "state": record.state,
        "message": record.message,
        "exit_status": record.exit_status,
        "stderr_tail": record.stderr_tail,
        "sandbox": record.sandbox,
    }


@dataclass
class Segment:
    """The writes of the records up to a removal (or the batch's end), then the removal."""

    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Rows to upsert by run key, in the order of their first record: every column
    but `id` and `removal_id`; an open row is inserted unless its key exists, an
    ended one inserted or, if the existing row is open, its end fields set."""
    abandons: list[dict[str, Any]] = field(default_factory=list)
    """Open rows written before this segment to end as killed (`run_key`, `ended_at`,
    `message`)."""
    totals: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Each job's counter increments (a `job_totals` row), added to its row."""
    removal: JobRemoved | None = None


@dataclass
class Plan:
    segments: list[Segment]
    changed: list[Changed]
    ends: list[tuple[str, datetime, str]]
    """The runs ended: namespace, end, outcome (for `rollups.add`)."""


def plan(records: Sequence[HistoryRecord], found: Mapping[str, bool], applied: Set[str]) -> Plan:
    """The writes of `records`, given each run key's row before them (`found`: open
    or not; a key missing has no row) and the removal ids applied already."""
    state = dict(found)
    removed = set(applied)
    segment = Segment()
    done = Plan([segment], [], [])
    for record in records:
        if isinstance(record, JobRemoved):
            if record.removal_id in removed:
                continue
            removed.add(record.removal_id)
            segment.removal = record
            segment = Segment()
            done.segments.append(segment)
        elif isinstance(record, RunLaunched):
            if record.run_key in state:
                continue
            state[record.run_key] = True
            segment.runs[record.run_key] = {**place_row(record.run_key, record.place), **_OPEN}
        elif isinstance(record, RunEnded):
            if state.get(record.run_key) is False:
                continue
            state[record.run_key] = False
            # launched in this segment: the launch's row with the end's fields, as
            # its insert then the end's update would leave it
            row = segment.runs.setdefault(record.run_key, place_row(record.run_key, record.place))
            row.update(ended_fields(record))
            _count(segment, done, record)
        elif isinstance(record, RunAbandoned):
            if state.get(record.run_key) is not True:
                continue
            state[record.run_key] = False
            end = {"ended_at": stored(record.ended_at), "message": record.message}
            if record.run_key in segment.runs:
                segment.runs[record.run_key].update(end, outcome=Outcome.KILLED.value)
            else:
                segment.abandons.append({"run_key": record.run_key, **end})
            _count(segment, done, record)
        else:
            continue
        done.changed.append(record)
    return done


def _count(segment: Segment, done: Plan, record: RunEnded | RunAbandoned) -> None:
    """Add an ended run to its job's counter increments and to the plan's run ends."""
    if isinstance(record, RunAbandoned):
        job_key, outcome = record.job_key, Outcome.KILLED
    else:
        job_key, outcome = record.place.job_key, record.outcome
    success = stored(record.ended_at) if outcome is Outcome.SUCCEEDED else None
    row = segment.totals.setdefault(
        job_key,
        {
            "job_key": job_key,
            "succeeded": 0,
            "failed": 0,
            "killed": 0,
            "last_success_time": None,
            "last_run_seconds": None,
        },
    )
    row[outcome.value] += 1
    latest = row["last_success_time"]
    if success is not None and (latest is None or success > latest):
        row["last_success_time"] = success
    # a killed run's duration says nothing of the job's: the last other one stays
    if isinstance(record, RunEnded) and outcome is not Outcome.KILLED:
        row["last_run_seconds"] = max(0.0, (record.ended_at - record.started_at).total_seconds())
    # the namespace as the run's row has it (`RunPlace.namespace`)
    done.ends.append((job_key.partition(".")[0], record.ended_at, outcome.value))
