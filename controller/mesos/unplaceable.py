"""The grace before work that cannot be placed is reported: a pure tracker.

Offers come and go; work that waits one cycle for resources is normal. Only work
unplaceable for `grace` seconds (or invalid: a spec the executor cannot run, at
once) is reported, through the job's statistics and an `Unplaceable` event; it is
cleared when the job no longer waits. The launch cycle calls `update` after every
cycle with what the plan could not place, and wakes again at `recheck_in`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class GraceVerdict:
    # Job key → reason: unplaceable past the grace (or invalid), to report.
    due: dict[str, str] = field(default_factory=dict)
    # Jobs that no longer wait: clear what was reported of them.
    cleared: list[str] = field(default_factory=list)
    # Seconds until the next job's grace ends (None: nothing is within its grace).
    recheck_in: float | None = None


class UnplaceableGrace:
    def __init__(self, grace: float) -> None:
        self._grace = grace
        self._since: dict[str, float] = {}

    def update(
        self, unplaced: Mapping[str, str], invalid: Mapping[str, str], now: float
    ) -> GraceVerdict:
        blocked = {**unplaced, **invalid}
        cleared = [key for key in self._since if key not in blocked]
        for key in cleared:
            del self._since[key]
        due: dict[str, str] = {}
        recheck: float | None = None
        for job_key, reason in blocked.items():
            since = self._since.setdefault(job_key, now)
            if job_key not in invalid and now - since < self._grace:
                left = self._grace - (now - since)
                recheck = left if recheck is None else min(recheck, left)
                continue
            due[job_key] = reason
        return GraceVerdict(due, cleared, recheck)
