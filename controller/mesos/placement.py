"""Placement: which agent runs each shard of the eligible work (SPEC §5.3-§5.4).

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
rounding never over-commits an agent. Used by the launcher and bench/placement.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

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
    # Apps whose executor already runs there (no overhead for their tasks).
    executors: frozenset[str] = frozenset()


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


@dataclass
class _Agent:
    offer: AgentOffer
    cpus: int
    mem: int
    executors: set[str]
    job_tasks: dict[str, int] = field(default_factory=dict)

    @property
    def capacity(self) -> tuple[int, int]:
        return max(_milli(self.offer.cpus), 1), max(_milli(self.offer.mem), 1)

    def need(self, item: WorkItem) -> tuple[int, int]:
        cpus, mem = _milli(item.cpus), _milli(item.mem)
        if self.needs_executor(item):
            cpus += _milli(item.executor_cpus)
            mem += _milli(item.executor_mem)
        return cpus, mem

    def needs_executor(self, item: WorkItem) -> bool:
        return item.executor_app is not None and item.executor_app not in self.executors

    def fits(self, item: WorkItem) -> bool:
        cpus, mem = self.need(item)
        return cpus <= self.cpus and mem <= self.mem

    def free_after(self, item: WorkItem) -> float:
        """Fraction of the offered resources left after placing one task of `item`."""
        cpus, mem = self.need(item)
        total_cpus, total_mem = self.capacity
        return (self.cpus - cpus) / total_cpus + (self.mem - mem) / total_mem

    def take(self, item: WorkItem) -> None:
        cpus, mem = self.need(item)
        self.cpus -= cpus
        self.mem -= mem
        if item.executor_app is not None:
            self.executors.add(item.executor_app)
        self.job_tasks[item.job_key] = self.job_tasks.get(item.job_key, 0) + 1

    def snapshot(self) -> tuple[int, int, frozenset[str], dict[str, int]]:
        return self.cpus, self.mem, frozenset(self.executors), dict(self.job_tasks)

    def restore(self, saved: tuple[int, int, frozenset[str], dict[str, int]]) -> None:
        self.cpus, self.mem = saved[0], saved[1]
        self.executors = set(saved[2])
        self.job_tasks = dict(saved[3])


def _choose(agents: Sequence[_Agent], item: WorkItem) -> _Agent | None:
    candidates = [agent for agent in agents if agent.fits(item)]
    if not candidates:
        return None
    if item.strategy is PlacementStrategy.SPREAD:
        return min(
            candidates,
            key=lambda a: (a.job_tasks.get(item.job_key, 0), -a.free_after(item), a.offer.agent_id),
        )
    # Reusing a running executor beats starting another one; then fill the fullest agent.
    return min(
        candidates,
        key=lambda a: (a.needs_executor(item), a.free_after(item), a.offer.agent_id),
    )


def _shortfall(item: WorkItem, placed: int, agents: Sequence[_Agent]) -> str:
    total = len(item.shards)
    need = f"{_fmt(_milli(item.cpus))} cpus and {_fmt(_milli(item.mem))} MB memory per shard"
    if item.executor_app is not None:
        need += (
            f", plus {_fmt(_milli(item.executor_cpus))} cpus and "
            f"{_fmt(_milli(item.executor_mem))} MB for app {item.executor_app}'s executor "
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
    agents = [
        _Agent(offer=o, cpus=_milli(o.cpus), mem=_milli(o.mem), executors=set(o.executors))
        for o in sorted(offers, key=lambda o: o.agent_id)
    ]
    result = PlacementResult()
    for item in items:
        saved = [agent.snapshot() for agent in agents]
        placed: list[Assignment] = []
        for shard in item.shards:
            agent = _choose(agents, item)
            if agent is None:
                continue
            agent.take(item)
            placed.append(Assignment(item.job_key, shard, agent.offer.agent_id, item))
        if len(placed) == len(item.shards):
            result.assignments.extend(placed)
            continue
        if item.all_or_nothing:
            for agent, state in zip(agents, saved, strict=True):
                agent.restore(state)
        else:
            result.assignments.extend(placed)
        result.unplaced[item.job_key] = _shortfall(item, len(placed), agents)
    return result
