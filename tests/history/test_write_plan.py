"""`write_plan.plan`: what a batch writes, decided from the rows it found."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from controller.history.records import JobRemoved, Outcome, RunAbandoned
from controller.history.write_plan import plan
from tests.history.factories import T0, ended, launched

pytestmark = pytest.mark.unit


def test_a_run_launched_and_ended_in_one_batch_is_one_ended_row() -> None:
    launch, end = launched(), ended(outcome=Outcome.FAILED)
    done = plan([launch, end, end, launch], {}, set())
    [segment] = done.segments
    [row] = segment.runs.values()
    assert done.changed == [launch, end]
    assert (row["hostname"], row["outcome"], row["exit_status"]) == ("host-0", "failed", 3)
    assert row["started_at"] == end.started_at
    assert segment.totals["team.report"]["failed"] == 1
    assert done.ends == [("team", end.ended_at, "failed")]


def test_rows_found_decide_what_changes() -> None:
    open_run, closed_run = launched(shard=0), launched(shard=1)
    abandon = RunAbandoned(open_run.run_key, "team.report", T0, "unscheduled")
    late = ended(shard=1)
    done = plan(
        [open_run, closed_run, late, abandon, abandon],
        {open_run.run_key: True, closed_run.run_key: False},
        set(),
    )
    [segment] = done.segments
    assert done.changed == [abandon]
    assert segment.runs == {}
    assert segment.abandons == [
        {"run_key": open_run.run_key, "ended_at": T0, "message": "unscheduled"}
    ]
    assert segment.totals["team.report"]["killed"] == 1
    assert segment.totals["team.report"]["last_run_seconds"] is None


def test_a_removal_ends_a_segment_once() -> None:
    removal = JobRemoved("team.report", "removal-1", T0)
    before, after = ended(shard=0), ended(shard=0, fire=T0 + timedelta(hours=1))
    done = plan([before, removal, after, removal], {}, set())
    assert done.changed == [before, removal, after]
    assert [s.removal for s in done.segments] == [removal, None]
    assert [list(s.runs) for s in done.segments] == [[before.run_key], [after.run_key]]
    assert [s.totals["team.report"]["succeeded"] for s in done.segments] == [1, 1]
    assert plan([removal], {}, {"removal-1"}).changed == []


def test_counters_keep_the_latest_success_and_the_last_duration() -> None:
    late = ended(shard=0, fire=T0 + timedelta(minutes=5))
    early = replace(ended(shard=1), ended_at=T0 + timedelta(seconds=10))
    killed = ended(shard=2, outcome=Outcome.KILLED)
    done = plan([late, early, killed], {}, set())
    [totals] = done.segments[0].totals.values()
    assert totals["last_success_time"] == late.ended_at
    assert totals["last_run_seconds"] == 9.0
    assert (totals["succeeded"], totals["killed"]) == (2, 1)
