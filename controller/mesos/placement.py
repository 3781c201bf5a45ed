"""Placement: which agent runs each shard of the eligible work.

Pure and deterministic. Inputs are the work items of one launch cycle (in priority
order) and the agents' offered resources; the output assigns shards to agents and says,
in words a user can read, why the rest could not be placed. Rules:

- a task needs its job's cpus/mem; when its app's executor is not running on the agent
  yet, the executor's cpus/mem count once per app per agent as well;
- a READY work item is placed all or nothing (every shard of the job, or none this
  cycle, and then it takes no resources from later items); FAILOVER items are one shard
  each and exempt;
- strategy `binpack` (default) puts a task where its app's executor already runs if it
  can, then on the agent left with the least free resources; `spread` puts it on the
  agent with the fewest tasks of the same job, then the most free resources.

Amounts are compared in thousandths (Mesos scalars have three decimals), so float
rounding never over-commits an agent. Used by `launcher.plan_launch` and bench/placement.py.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from controller.mesos.tasks import AppVersion
from controller.mesos.work import WorkItem
from controller.resources import PlacementStrategy


def _milli(value: float) -> int:
    return round(value * 1000)


def _fmt(milli: int) -> str:
    return f"{milli / 1000:g}"


@dataclass(frozen=True)
class AgentOffer:
    """What one agent offers this cycle (all its held offers together)."""

    agent_id: str
    hostname: str
    cpus: float
    mem: float
    # App versions whose executor already runs there (no overhead for their tasks).
    executors: frozenset[AppVersion] = frozenset()


@dataclass(frozen=True)
class Assignment:
    job_key: str
    shard: int
    agent_id: str
    item: WorkItem


@dataclass
class PlacementResult:
    assignments: list[Assignment] = field(default_factory=list)
    # Job key → why (some of) its work could not be placed this cycle.
    unplaced: dict[str, str] = field(default_factory=dict)

    def by_agent(self) -> dict[str, list[Assignment]]:
        grouped: dict[str, list[Assignment]] = {}
        for assignment in self.assignments:
            grouped.setdefault(assignment.agent_id, []).append(assignment)
        return grouped


@dataclass(eq=False)
class _Agent:
    offer: AgentOffer
    cpus: int
    mem: int
    executors: set[AppVersion]
    total_cpus: int = 1
    total_mem: int = 1
    job_tasks: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, offer: AgentOffer) -> _Agent:
        cpus, mem = _milli(offer.cpus), _milli(offer.mem)
        return cls(offer, cpus, mem, set(offer.executors), max(cpus, 1), max(mem, 1))


@dataclass(frozen=True)
class _Need:
    """One task of a work item, in thousandths, with its executor's overhead."""

    cpus: int
    mem: int
    executor: AppVersion | None
    executor_cpus: int
    executor_mem: int

    @classmethod
    def of(cls, item: WorkItem) -> _Need:
        return cls(
            _milli(item.cpus),
            _milli(item.mem),
            item.executor,
            _milli(item.executor_cpus),
            _milli(item.executor_mem),
        )

    def on(self, agent: _Agent) -> tuple[int, int, bool]:
        """(cpus, mem, starts an executor) to place one task on `agent`."""
        if self.executor is not None and self.executor not in agent.executors:
            return self.cpus + self.executor_cpus, self.mem + self.executor_mem, True
        return self.cpus, self.mem, False


# What a placement changed on an agent, to undo an all-or-nothing item that failed:
# (agent, cpus before, mem before, executor version added or None).
_Undo = tuple[_Agent, int, int, AppVersion | None]


def _take(agent: _Agent, need: _Need, job_key: str, undo: list[_Undo]) -> bool:
    cpus, mem, starts = need.on(agent)
    if cpus > agent.cpus or mem > agent.mem:
        return False
    undo.append((agent, agent.cpus, agent.mem, need.executor if starts else None))
    agent.cpus -= cpus
    agent.mem -= mem
    if starts and need.executor is not None:
        agent.executors.add(need.executor)
    agent.job_tasks[job_key] = agent.job_tasks.get(job_key, 0) + 1
    return True


def _rollback(undo: list[_Undo], job_key: str) -> None:
    for agent, cpus, mem, started in reversed(undo):
        agent.cpus, agent.mem = cpus, mem
        if started is not None:
            agent.executors.discard(started)
        left = agent.job_tasks[job_key] - 1
        if left:
            agent.job_tasks[job_key] = left
        else:
            del agent.job_tasks[job_key]


def _free_after(agent: _Agent, cpus: int, mem: int) -> float:
    """Fraction of the agent's offered resources left after taking (cpus, mem)."""
    return (agent.cpus - cpus) / agent.total_cpus + (agent.mem - mem) / agent.total_mem


def _candidates(agents: Sequence[_Agent], need: _Need) -> list[tuple[_Agent, int, int, bool]]:
    found = []
    for agent in agents:
        cpus, mem, starts = need.on(agent)
        if cpus <= agent.cpus and mem <= agent.mem:
            found.append((agent, cpus, mem, starts))
    return found


def _binpack(
    item: WorkItem, need: _Need, agents: Sequence[_Agent], undo: list[_Undo]
) -> list[Assignment]:
    # Reusing a running executor beats starting another one; then fill the fullest agent.
    # Filling an agent only makes it more preferred, so one pass in this order places
    # each shard where choosing afresh for every shard would.
    order = sorted(
        _candidates(agents, need),
        key=lambda c: (c[3], _free_after(c[0], c[1], c[2]), c[0].offer.agent_id),
    )
    placed: list[Assignment] = []
    shards = iter(item.shards)
    shard = next(shards, None)
    for agent, _, _, _ in order:
        while shard is not None and _take(agent, need, item.job_key, undo):
            placed.append(Assignment(item.job_key, shard, agent.offer.agent_id, item))
            shard = next(shards, None)
        if shard is None:
            break
    return placed


def _spread(
    item: WorkItem, need: _Need, agents: Sequence[_Agent], undo: list[_Undo]
) -> list[Assignment]:
    # The agent with the fewest tasks of this job, then the most free resources.
    def key(agent: _Agent, cpus: int, mem: int) -> tuple[int, float, str]:
        return (
            agent.job_tasks.get(item.job_key, 0),
            -_free_after(agent, cpus, mem),
            agent.offer.agent_id,
        )

    heap = [(key(a, c, m), n, a) for n, (a, c, m, _) in enumerate(_candidates(agents, need))]
    heapq.heapify(heap)
    placed: list[Assignment] = []
    for shard in item.shards:
        if not heap:
            break
        _, number, agent = heapq.heappop(heap)
        _take(agent, need, item.job_key, undo)
        placed.append(Assignment(item.job_key, shard, agent.offer.agent_id, item))
        cpus, mem, _ = need.on(agent)
        if cpus <= agent.cpus and mem <= agent.mem:
            heapq.heappush(heap, (key(agent, cpus, mem), number, agent))
    return placed


def _shortfall(item: WorkItem, placed: int, agents: Sequence[_Agent]) -> str:
    total = len(item.shards)
    need = f"{_fmt(_milli(item.cpus))} cpus and {_fmt(_milli(item.mem))} MB memory per shard"
    if item.executor is not None:
        need += (
            f", plus {_fmt(_milli(item.executor_cpus))} cpus and "
            f"{_fmt(_milli(item.executor_mem))} MB for app {item.executor.app_key}'s executor "
            "on each agent where it is not running yet"
        )
    if not agents:
        where = "no agent is offering resources now"
    else:
        best = max(agents, key=lambda a: (a.cpus, a.mem))
        where = (
            f"{len(agents)} agent(s) offering; the largest free offer is "
            f"{_fmt(best.cpus)} cpus and {_fmt(best.mem)} MB on {best.offer.hostname}"
        )
    if item.all_or_nothing and total > 1:
        return (
            f"cannot place all {total} shards (only {placed} fit), so none were launched: "
            f"needs {need}; {where}"
        )
    if item.all_or_nothing:
        return f"cannot place its shard: needs {need}; {where}"
    shards = ", ".join(str(s) for s in item.shards)
    return f"cannot place failed-over shard {shards}: needs {need}; {where}"


def place(items: Iterable[WorkItem], offers: Iterable[AgentOffer]) -> PlacementResult:
    """Assign the work items' shards to agents, in the items' order."""
    agents = [_Agent.of(o) for o in sorted(offers, key=lambda o: o.agent_id)]
    result = PlacementResult()
    for item in items:
        need = _Need.of(item)
        undo: list[_Undo] = []
        if item.strategy is PlacementStrategy.SPREAD:
            placed = _spread(item, need, agents, undo)
        else:
            placed = _binpack(item, need, agents, undo)
        if len(placed) == len(item.shards):
            result.assignments.extend(placed)
            continue
        if item.all_or_nothing:
            _rollback(undo, item.job_key)
        else:
            result.assignments.extend(placed)
        result.unplaced[item.job_key] = _shortfall(item, len(placed), agents)
    return result
