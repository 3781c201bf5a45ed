"""What a trial is judged by, kept with it: the jobs, the bounds of the judged fires,
the fault windows as they happened, the trigger values written and those the leader
recorded, the master's subscriptions and the other calls it accepted, and the sampled
leaders. The trial saves it as `evidence.json` next to
its ledger, so `python -m devcluster.campaign --recheck DIR` judges a trial again with
the current checker without running it. Pure apart from `save` and `load`; `judge` is
what the trial and the recheck call.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from devcluster.campaign.checker import (
    CronJob,
    Rules,
    TriggerJob,
    Verdict,
    Window,
    check_cron,
    check_triggers,
    combine,
    zombie_calls,
    zombie_subscriptions,
)
from devcluster.campaign.faults import Fault, Kind
from devcluster.campaign.ledger import Run

FILE = "evidence.json"


@dataclass(frozen=True)
class Evidence:
    seed: int
    faults: tuple[Fault, ...]
    jobs: tuple[CronJob, ...]
    trigger_job: TriggerJob
    start: float
    cut: float
    windows: tuple[Window, ...]
    subscriptions: tuple[tuple[float, str, str], ...] = ()
    calls: tuple[tuple[float, str, str, str], ...] = ()
    """Every other call the master accepted: (time, framework id, replica, type)."""
    leaders: tuple[tuple[float, str | None], ...] = ()
    incidents: tuple[str, ...] = ()
    """What went wrong playing the trial (a fault that could not be played, a stack
    that did not become whole again)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Evidence:
        trigger = document["trigger_job"]
        return cls(
            seed=int(document["seed"]),
            faults=tuple(
                Fault(f["at"], Kind(f["kind"]), f["hold"], f["target"]) for f in document["faults"]
            ),
            jobs=tuple(CronJob(**job) for job in document["jobs"]),
            trigger_job=TriggerJob(
                trigger["key"],
                trigger["shards"],
                tuple(trigger["values"]),
                tuple(trigger.get("tokens", ())),
                None if trigger.get("handled") is None else tuple(trigger["handled"]),
                trigger.get("recorded"),
            ),
            start=document["start"],
            cut=document["cut"],
            # Evidence saved before a field was dropped still loads.
            windows=tuple(
                Window(**{k: v for k, v in window.items() if k in Window.__dataclass_fields__})
                for window in document["windows"]
            ),
            subscriptions=tuple(
                (float(t), str(framework), str(replica))
                for t, framework, replica in document["subscriptions"]
            ),
            calls=tuple(
                (float(t), str(framework), str(replica), str(kind))
                for t, framework, replica, kind in document.get("calls", ())
            ),
            leaders=tuple((float(t), leader) for t, leader in document["leaders"]),
            incidents=tuple(document["incidents"]),
        )


def judge(evidence: Evidence, runs: list[Run], rules: Rules) -> tuple[Verdict, list[str]]:
    """The verdict on the runs, and the notes: incidents and zombie acts."""
    verdict = combine(
        [
            check_cron(
                job, runs, evidence.windows, start=evidence.start, cut=evidence.cut, rules=rules
            )
            for job in evidence.jobs
        ]
        + [check_triggers(evidence.trigger_job, runs, evidence.windows, rules=rules)]
    )
    zombies = zombie_subscriptions(evidence.subscriptions, evidence.leaders)
    zombies += zombie_calls(evidence.calls, evidence.leaders)
    return verdict, [*evidence.incidents, *zombies]


def save(evidence: Evidence, directory: Path) -> None:
    (directory / FILE).write_text(json.dumps(evidence.to_json()))


def load(directory: Path) -> Evidence:
    return Evidence.from_json(json.loads((directory / FILE).read_text()))
