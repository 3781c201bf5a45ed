"""The campaign's table: one Markdown row per trial with its faults, counts and findings."""

from __future__ import annotations

from collections import Counter

import pytest

from devcluster.campaign.checker import Finding, Verdict
from devcluster.campaign.faults import Fault, Kind
from devcluster.campaign.report import HEADER, TrialResult, details, table

pytestmark = pytest.mark.unit


def test_a_row_names_the_seed_faults_counts_and_findings() -> None:
    verdict = Verdict(
        expected=40,
        ran=38,
        lost=1,
        doubled=0,
        allowed_lost=2,
        allowed=Counter({"leaderless": 2}),
        findings=[Finding("ns.job", "lost", 1, 120.0, (), ("master-restart#3@6.0s",))],
    )
    faults = (
        Fault(1.0, Kind.MASTER_RESTART, 0.0, 3),
        Fault(5.0, Kind.MASTER_RESTART, 0.0, 4),
        Fault(9.0, Kind.KILL_LEADER, 2.0, 5),
    )
    lines = table([TrialResult(1, 42, faults, verdict)]).splitlines()
    assert lines[0] == HEADER
    assert lines[2] == (
        "| 1 | 42 | kill-leader, master-restart x2 | 40 | 38 | 1 | 0 | 2 (leaderless 2) | 0 "
        "| lost job x1 (near: master-restart#3@6.0s) |"
    )
    assert details(TrialResult(1, 42, faults, verdict)) == [
        "lost ns.job shard 1 fire 120 (faults: master-restart#3@6.0s)"
    ]


def test_a_clean_trial_says_none() -> None:
    row = table([TrialResult(2, 7, (), Verdict(expected=10, ran=10))]).splitlines()[-1]
    assert row == "| 2 | 7 | none | 10 | 10 | 0 | 0 | 0 | 0 | none |"
