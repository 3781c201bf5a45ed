"""Launches planned ahead of a cron fire.

The producer announces each fire a little before it comes (`fire_plan_ahead_seconds`).
The launch cycle then places the fire's runs of the jobs that are idle (nothing ready,
running or failing over, enabled, reconciled) on the offers it holds, builds their
TaskInfos, running records (launched at the fire time) and their history units, and
reserves those offers: a `PreparedFire`. When the
fire comes, the engine records it together with those tasks as running in one
ZooKeeper transaction (`StateStore.fire_and_launch`, which re-checks each job) and the
same thread sends the ACCEPTs at once: no planning, no second transaction and no turn
of the event loop between a fire and its launch. Whatever changed meanwhile falls back
to the ordinary path (a ready entry and a launch cycle):

- a job whose definition or app changed since the plan (`usable` compares them);
- an agent whose reserved offers were rescinded or lost (the whole agent's tasks);
- a fire that never comes for the announced jobs (the reservation is released once
  the fire time has passed).

Pure: `LaunchCycle` owns the reservations and does the I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import datetime

from controller.definitions import AppDefinition, JobDefinition
from controller.mesos.history_handoff import Packed
from controller.mesos.launcher import AgentLaunch, LaunchPlan
from controller.mesos.offers import HeldOffer
from controller.state.records import RunningTask

PackedAhead = tuple[tuple[RunningTask, ...], Packed]
"""A job's planned tasks and their launch history, packed for the spool."""


@dataclass
class PreparedFire:
    """One timer's fire planned ahead: the plan, and the offers held back for it."""

    fire_time: datetime
    jobs: tuple[str, ...]
    plan: LaunchPlan
    offers: dict[str, list[HeldOffer]]
    # The definitions the plan was built from, by job key.
    built_from: dict[str, tuple[JobDefinition, AppDefinition]] = field(default_factory=dict)
    # Each job's launch history, packed for its tasks as `launches` gives them.
    history: dict[str, PackedAhead] = field(default_factory=dict)

    def lose_agent(self, agent_id: str) -> list[HeldOffer]:
        """Drop an agent whose offers can no longer be used; its other offers back."""
        self.plan.agents = [a for a in self.plan.agents if a.agent_id != agent_id]
        return self.offers.pop(agent_id, [])

    def agent_of(self, offer_id: str) -> str | None:
        """The agent of a held-back offer (None: not held back here)."""
        for agent_id, offers in self.offers.items():
            if any(o.offer_id == offer_id for o in offers):
                return agent_id
        return None


@dataclass(frozen=True)
class FireLaunch:
    """A fire's launches recorded with it: the plan reduced to them, each agent's
    offers, and each agent's ACCEPT under way (done when the master answered)."""

    plan: LaunchPlan
    taken: dict[str, list[HeldOffer]]
    sending: list[Future[None]]


def usable(
    prepared: PreparedFire,
    jobs: Mapping[str, JobDefinition],
    apps: Mapping[str, AppDefinition],
) -> set[str]:
    """The jobs whose planned tasks may still launch: their definition and their app's
    are the ones the plan was built from."""
    return {
        key
        for key, (job, app) in prepared.built_from.items()
        if jobs.get(key) is job and apps.get(job.app_key) is app
    }


def launches(plan: LaunchPlan, jobs: set[str], now: datetime) -> dict[str, Sequence[RunningTask]]:
    """The running records of `jobs`' planned tasks, by job, stamped launched `now`."""
    found: dict[str, list[RunningTask]] = {}
    for agent in plan.agents:
        for record in agent.records:
            if record.job_key in jobs:
                found.setdefault(record.job_key, []).append(replace(record, launched_at=now))
    return dict(found)


def recorded_plan(prepared: PreparedFire, recorded: Sequence[RunningTask]) -> LaunchPlan:
    """The plan reduced to the tasks recorded (what the ACCEPTs launch); agents left
    with none are dropped."""
    by_id = {r.task_id: r for r in recorded}
    agents = []
    for agent in prepared.plan.agents:
        kept = [
            (i, by_id[r.task_id])
            for i, r in zip(agent.tasks, agent.records, strict=True)
            if r.task_id in by_id
        ]
        if kept:
            agents.append(
                AgentLaunch(
                    agent_id=agent.agent_id,
                    hostname=agent.hostname,
                    offer_ids=agent.offer_ids,
                    tasks=tuple(i for i, _ in kept),
                    records=tuple(r for _, r in kept),
                )
            )
    return LaunchPlan(agents=agents)
