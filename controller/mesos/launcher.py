"""One launch cycle as a plan: eligible work → placement → TaskInfos and running records.

Pure (the clock and the id generator are passed in). `plan_launch` turns a snapshot of
the queues and the held offers into a `LaunchPlan`: for each agent, the offers to
ACCEPT, the TaskInfos to LAUNCH and the `RunningTask` records the state store commits
*before* the ACCEPT is sent; plus why the rest waits. `launch_cycle.LaunchCycle`
executes the plan: one `commit_launch` transaction, then one ACCEPT per agent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from controller.definitions import AppDefinition, JobDefinition
from controller.mesos.offers import HeldOffer
from controller.mesos.placement import AgentOffer, place
from controller.mesos.tasks import (
    DEFAULT_EXECUTOR_OPTIONS,
    ExecutorId,
    ExecutorOptions,
    JsonObject,
    MetaInfo,
    TaskId,
    build_task_info,
)
from controller.mesos.work import QueueSnapshot, eligible_work
from controller.state.records import FailoverEntry, LaunchSource, ReadyEntry, RunningTask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentLaunch:
    agent_id: str
    hostname: str
    offer_ids: tuple[str, ...]
    tasks: tuple[JsonObject, ...]
    records: tuple[RunningTask, ...]


@dataclass
class LaunchPlan:
    agents: list[AgentLaunch] = field(default_factory=list)
    # Job key → why its eligible work was not placed (resources).
    unplaced: dict[str, str] = field(default_factory=dict)
    # Job key → why its pending work is not eligible now (running, disabled, ...).
    waiting: dict[str, str] = field(default_factory=dict)
    # Job key → why building its tasks failed (a spec the executor cannot run).
    invalid: dict[str, str] = field(default_factory=dict)
    stale_ready: list[str] = field(default_factory=list)
    stale_failover: list[MetaInfo] = field(default_factory=list)

    @property
    def records(self) -> list[RunningTask]:
        return [r for a in self.agents for r in a.records]

    @property
    def needs_resources(self) -> bool:
        """Eligible work is still waiting for resources."""
        return bool(self.unplaced)


@dataclass(frozen=True)
class LaunchInputs:
    jobs: Mapping[str, JobDefinition]
    apps: Mapping[str, AppDefinition]
    ready: Mapping[str, ReadyEntry]
    failover: Mapping[str, FailoverEntry]
    running: Collection[MetaInfo]
    disabled_jobs: Collection[str]
    disabled_apps: Collection[str]
    unsettled_jobs: Collection[str]
    executor: ExecutorOptions = DEFAULT_EXECUTOR_OPTIONS


def plan_launch(
    inputs: LaunchInputs,
    offers: Sequence[HeldOffer],
    agents: Sequence[AgentOffer],
    *,
    now: datetime,
    new_unique: Callable[[], str] | None = None,
) -> LaunchPlan:
    failover_metas = {MetaInfo(e.job_key, e.shard): e for e in inputs.failover.values()}
    queues = QueueSnapshot(
        ready={k: e.count for k, e in inputs.ready.items()},
        failover=list(failover_metas),
        running=inputs.running,
        disabled_jobs=inputs.disabled_jobs,
        disabled_apps=inputs.disabled_apps,
    )
    work = eligible_work(
        queues,
        inputs.jobs,
        inputs.apps,
        unsettled_jobs=inputs.unsettled_jobs,
        options=inputs.executor,
    )
    plan = LaunchPlan(
        waiting=dict(work.waiting),
        stale_ready=list(work.stale_ready),
        stale_failover=list(work.stale_failover),
    )
    if not work.items:
        return plan
    placement = place(work.items, agents)
    plan.unplaced = dict(placement.unplaced)
    offers_by_agent: dict[str, list[HeldOffer]] = {}
    for offer in offers:
        offers_by_agent.setdefault(offer.agent_id, []).append(offer)

    built: dict[str, list[tuple[JsonObject, RunningTask]]] = {}
    broken: set[str] = set()
    for assignment in placement.assignments:
        job = inputs.jobs[assignment.job_key]
        app = inputs.apps[job.app_key]
        source = assignment.item.launch_type
        held = offers_by_agent.get(assignment.agent_id, [])
        task_id = TaskId.new(
            MetaInfo(job.key, assignment.shard),
            source,
            assignment.agent_id,
            new_unique() if new_unique else None,
        )
        if source is LaunchSource.READY:
            fire = inputs.ready[job.key].next_fire
        else:
            fire = failover_metas[task_id.meta].fire_time
        try:
            info = build_task_info(
                task_id,
                job,
                app,
                fire_time=fire,
                offered=[r for o in held for r in o.resources],
                executor=inputs.executor,
            )
        except ValueError as error:
            plan.invalid[job.key] = str(error)
            broken.add(job.key)
            continue
        record = RunningTask(
            task_id=task_id.value,
            job_key=job.key,
            shard=assignment.shard,
            source=source,
            agent_id=assignment.agent_id,
            hostname=held[0].hostname if held else "",
            launched_at=now,
            executor_id=None
            if assignment.item.executor is None
            else ExecutorId.of(assignment.item.executor, assignment.agent_id).value,
            fire_time=fire,
        )
        built.setdefault(assignment.agent_id, []).append((info, record))

    for agent_id in sorted(built):
        pairs = [(i, r) for i, r in built[agent_id] if r.job_key not in broken]
        if not pairs:
            continue
        held = offers_by_agent[agent_id]
        plan.agents.append(
            AgentLaunch(
                agent_id=agent_id,
                hostname=held[0].hostname,
                offer_ids=tuple(sorted(o.offer_id for o in held)),
                tasks=tuple(i for i, _ in pairs),
                records=tuple(r for _, r in pairs),
            )
        )
    return plan
