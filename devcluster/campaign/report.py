"""A trial's result and the campaign's table: one row per trial (seed, faults, runs
expected, ran, lost, doubled, and what the checker found), as Markdown so
docs/campaign.md can hold it. Pure; the trial builds results, `python -m
devcluster.campaign` prints the table; tested in tests/campaign/test_report.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from devcluster.campaign.checker import Verdict
from devcluster.campaign.faults import Fault

HEADER = (
    "| trial | seed | faults | expected | ran | lost | doubled | lost (allowed) | reruns "
    "| findings |"
)
RULE = "|---:|---:|---|---:|---:|---:|---:|---:|---:|---|"


@dataclass
class TrialResult:
    number: int
    seed: int
    faults: tuple[Fault, ...]
    verdict: Verdict
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return self.verdict.clean and not self.notes


def fault_summary(result: TrialResult) -> str:
    kinds = Counter(str(fault.kind) for fault in result.faults)
    return ", ".join(f"{kind} x{n}" if n > 1 else kind for kind, n in sorted(kinds.items()))


def allowed(result: TrialResult) -> str:
    reasons = result.verdict.allowed
    detail = ", ".join(f"{why} {n}" for why, n in sorted(reasons.items()))
    return f"{result.verdict.allowed_lost} ({detail})" if detail else "0"


def findings_summary(result: TrialResult) -> list[str]:
    """The findings grouped by job and kind, each with the faults near them (the full
    list is what `details` prints)."""
    groups: dict[tuple[str, str], tuple[int, set[str]]] = {}
    for finding in result.verdict.findings:
        count, faults = groups.get((finding.job, finding.kind), (0, set()))
        groups[(finding.job, finding.kind)] = (count + 1, faults | set(finding.faults))
    return [
        f"{kind} {job.rsplit('.', 1)[-1]} x{count} (near: {', '.join(sorted(faults)) or 'none'})"
        for (job, kind), (count, faults) in sorted(groups.items())
    ]


def details(result: TrialResult) -> list[str]:
    """Every finding and note of a trial, one per line."""
    return [finding.describe() for finding in result.verdict.findings] + result.notes


def row(result: TrialResult) -> str:
    verdict = result.verdict
    found = findings_summary(result) + result.notes
    return (
        f"| {result.number} | {result.seed} | {fault_summary(result) or 'none'} "
        f"| {verdict.expected} | {verdict.ran} | {verdict.lost} | {verdict.doubled} "
        f"| {allowed(result)} | {verdict.reruns} | {'; '.join(found) or 'none'} |"
    )


def table(results: Sequence[TrialResult]) -> str:
    return "\n".join([HEADER, RULE, *(row(result) for result in results)])
