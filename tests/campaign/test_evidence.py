"""A trial's evidence survives being saved, and judging it again gives the same verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from devcluster.campaign.checker import CronJob, Rules, TriggerJob, Window
from devcluster.campaign.evidence import Evidence, judge, load, save
from devcluster.campaign.faults import Fault, Kind
from devcluster.campaign.ledger import Run

pytestmark = pytest.mark.unit

JOB = CronJob("ns.steady", period=3, shards=1, misfire=True, failover=True)
EVIDENCE = Evidence(
    seed=42,
    faults=(Fault(1.0, Kind.FREEZE_LEADER, 4.0, 7),),
    jobs=(JOB,),
    trigger_job=TriggerJob("ns.triggered", 1, (104.0,), ("42-0",), ("42-0",)),
    start=100.0,
    cut=110.0,
    windows=(Window("freeze-leader#7@1.0s for 4.0s", 101.0, 107.5, leaderless=True),),
    subscriptions=((103.0, "fw", "replica-2"),),
    calls=((103.5, "fw", "replica-2", "ACCEPT"),),
    leaders=((102.0, "replica-2"), (103.5, None)),
    incidents=("lane-mesos did not finish within 200s",),
)


def test_saved_evidence_loads_back_equal(tmp_path: Path) -> None:
    save(EVIDENCE, tmp_path)
    assert load(tmp_path) == EVIDENCE


def test_judging_counts_the_runs_and_keeps_the_incidents() -> None:
    runs = [
        Run("ns.steady", 102.0, 0, "ns.steady@-@0@-@READY@-@S1@-@a", 102.1, 102.4),
        Run("ns.triggered", 104.5, 0, "ns.triggered@-@0@-@READY@-@S1@-@b", 104.6, 104.9),
    ]
    verdict, notes = judge(EVIDENCE, runs, Rules())
    # Fires 102, 105 and 108: 105 and 108 fell in the freeze, well within the job's
    # starting deadline, so the next leader owed them.
    assert (verdict.expected, verdict.ran, verdict.lost, verdict.allowed_lost) == (4, 2, 2, 0)
    assert notes == ["lane-mesos did not finish within 200s"]
    before, _ = judge(EVIDENCE, runs, Rules(catch_up_deadline=0))
    assert (before.lost, before.allowed_lost) == (0, 2)
