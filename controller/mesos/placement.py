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
  agent with the fewest tasks of the same job, then the most free resources (free
  resources: the fraction of its offered cpus left plus the fraction of its memory);
  ties go to the lower agent id.

Amounts are compared in thousandths (Mesos scalars have three decimals), so float
rounding never over-commits an agent. Used by `launcher.plan_launch` and bench/placement.py.

Cost at thousands of agents: an agent no task of this pass has been placed on still has
exactly what it offered, so agents that offered the same amounts and run the same
executors are one `_Kind`, whose members rank equal but for their ids. For each task
size the kinds are sorted once per pass (`_Pool.order`) and fed into a work item's heap
a run at a time, beside the agents already holding tasks; a shard's choice costs those
agents and a few heap steps, not a look at every agent. The result is the same as
choosing afresh among all agents for every shard, which a property test checks against
exactly that.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from itertools import count
from operator import attrgetter

from controller.mesos.tasks import AppVersion
from controller.mesos.work import WorkItem
from controller.resources import PlacementStrategy


def _milli(value: float) -> int:
    return round(value * 1000)


def _fmt(milli: int) -> str:
    return f"{milli / 1000:g}"


@dataclass(frozen=True)
class AgentOffer:
    """What one agent offers this cycle (all its held offers together; one per agent)."""

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


@dataclass(eq=False, slots=True)
class _Agent:
    """An agent some task has been placed on in this pass (or was, and was rolled back)."""

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


@dataclass(eq=False, slots=True)
class _Kind:
    """Agents that offered the same cpus and memory (in thousandths) and run the same
    executors, by id; those from `next` on hold no task of this pass yet.

    Every rule reads only those amounts, the executors and the tasks placed, so these
    agents rank equal but for their ids: the one with the lowest id left (`offers[next]`)
    stands for them all, and the rest are not looked at until it has been taken.
    """

    cpus: int
    mem: int
    total_cpus: int
    total_mem: int
    executors: frozenset[AppVersion]
    offers: list[AgentOffer] = field(default_factory=list)
    next: int = 0

    @property
    def left(self) -> bool:
        return self.next < len(self.offers)


@dataclass(eq=False, slots=True)
class _Order:
    """The kinds one task fits on, best first (the fullest after it for binpack, the
    emptiest for spread), each with the fraction of its resources the task would leave
    free. A kind's place never changes, since nothing is placed on it while it is a
    kind; only taking its last agent removes it."""

    kinds: list[_Kind]
    # What each kind would have free after the task (the fraction, as `_free_after`).
    frees: list[float]
    # Kinds before this one have no agent left.
    first: int = 0

    def start(self) -> int:
        while self.first < len(self.kinds) and not self.kinds[self.first].left:
            self.first += 1
        return self.first


@dataclass(eq=False, slots=True)
class _Pool:
    """Every agent of the pass: those holding tasks one by one, the rest by kind."""

    size: int
    touched: list[_Agent]
    kinds: list[_Kind]
    # App version → the kinds that run its executor.
    running: dict[AppVersion, list[_Kind]]
    # (cpus, mem, spread, kinds running this version or None for all) → their order.
    orders: dict[tuple[int, int, bool, AppVersion | None], _Order] = field(default_factory=dict)
    # The kinds by their offer, largest first (sorted when a reason first needs them), and
    # how many at its start have no agent left.
    by_size: list[_Kind] | None = None
    by_size_gone: int = 0

    @classmethod
    def of(cls, offers: Iterable[AgentOffer]) -> _Pool:
        kinds: dict[tuple[int, int, frozenset[AppVersion]], _Kind] = {}
        size = 0
        for offer in sorted(offers, key=attrgetter("agent_id")):
            size += 1
            cpus, mem = _milli(offer.cpus), _milli(offer.mem)
            kind = kinds.get((cpus, mem, offer.executors))
            if kind is None:
                kind = _Kind(cpus, mem, max(cpus, 1), max(mem, 1), offer.executors)
                kinds[(cpus, mem, offer.executors)] = kind
            kind.offers.append(offer)
        running: dict[AppVersion, list[_Kind]] = {}
        for kind in kinds.values():
            for version in kind.executors:
                running.setdefault(version, []).append(kind)
        return cls(size, [], list(kinds.values()), running)

    def order(self, cpus: int, mem: int, spread: bool, running: AppVersion | None) -> _Order:
        """The order of the kinds (those running `running`'s executor, if given) for a
        task taking (cpus, mem); worked out once per pass."""
        key = (cpus, mem, spread, running)
        order = self.orders.get(key)
        if order is None:
            kinds = self.kinds if running is None else self.running.get(running, [])
            # Two lists rather than one of pairs: thousands of tuples would bring on
            # garbage collections that cost more than the sort.
            fits = [k for k in kinds if k.left and cpus <= k.cpus and mem <= k.mem]
            frees = [_free_after(k, cpus, mem) for k in fits]
            ranked = sorted(range(len(fits)), key=frees.__getitem__, reverse=spread)
            order = _Order([fits[i] for i in ranked], [frees[i] for i in ranked])
            self.orders[key] = order
        return order

    def largest(self) -> list[_Kind]:
        """The kinds with an agent left that offered the most (cpus, then memory)."""
        if self.by_size is None:
            self.by_size = sorted(self.kinds, key=lambda k: (k.cpus, k.mem), reverse=True)
        kinds = self.by_size
        while self.by_size_gone < len(kinds) and not kinds[self.by_size_gone].left:
            self.by_size_gone += 1
        largest: list[_Kind] = []
        at = self.by_size_gone
        while at < len(kinds) and (
            not largest or (kinds[at].cpus, kinds[at].mem) == (largest[0].cpus, largest[0].mem)
        ):
            if kinds[at].left:
                largest.append(kinds[at])
            at += 1
        return largest

    def touch(self, kind: _Kind) -> _Agent:
        """Take the first agent of `kind` to place a task on it."""
        agent = _Agent.of(kind.offers[kind.next])
        kind.next += 1
        self.touched.append(agent)
        return agent


@dataclass(frozen=True, slots=True)
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

    def on(self, executors: AbstractSet[AppVersion]) -> tuple[int, int, bool]:
        """(cpus, mem, starts an executor) to place one task on an agent running
        `executors`."""
        if self.executor is not None and self.executor not in executors:
            return self.cpus + self.executor_cpus, self.mem + self.executor_mem, True
        return self.cpus, self.mem, False


# What a placement changed on an agent, to undo an all-or-nothing item that failed:
# (agent, cpus before, mem before, executor version added or None).
_Undo = tuple[_Agent, int, int, AppVersion | None]


def _take(agent: _Agent, need: _Need, job_key: str, undo: list[_Undo]) -> bool:
    cpus, mem, starts = need.on(agent.executors)
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


def _free_after(agent: _Agent | _Kind, cpus: int, mem: int) -> float:
    """Fraction of the agent's offered resources left after taking (cpus, mem)."""
    return (agent.cpus - cpus) / agent.total_cpus + (agent.mem - mem) / agent.total_mem


# How an item ranks a candidate: (binpack: starts an executor, spread: tasks of the job;
# binpack: free after, spread: minus free after; agent id), so ranks never tie.
_Rank = tuple[int, float, str]


@dataclass(eq=False, slots=True)
class _Stream:
    """The kinds of one order that a work item may use, fed into its heap a run of equal
    rank (but for the agent id) at a time: a kind ranks after every kind of the runs
    before its own, so the next run is needed only once one of the last run fed in has
    been taken."""

    order: _Order
    spread: bool
    # What binpack ranks first: whether a task here starts an executor.
    starts: bool
    # Kinds running this executor belong to the item's other stream.
    skip: AppVersion | None
    # The last kind of the order looked at, and how many runs have been fed in.
    seen: int = -1
    runs: int = 0

    def rank(self, free: float, kind: _Kind) -> _Rank:
        agent_id = kind.offers[kind.next].agent_id
        return (0, -free, agent_id) if self.spread else (self.starts, free, agent_id)

    def feed(self, heap: list[_Entry], numbers: Iterator[int]) -> None:
        kinds, frees = self.order.kinds, self.order.frees
        at = max(self.seen + 1, self.order.start())
        self.runs += 1
        run: float | None = None
        while at < len(kinds):
            free, kind = frees[at], kinds[at]
            if run is not None and free != run:
                break
            if kind.left and (self.skip is None or self.skip not in kind.executors):
                run = free
                heapq.heappush(
                    heap, (self.rank(free, kind), next(numbers), (kind, self, self.runs))
                )
            at += 1
        self.seen = at - 1


# A heap entry: the rank, a number (ranks never tie, so never compared), and the agent,
# or the kind whose first agent it stands for with its stream and the run it was fed in.
_Entry = tuple[_Rank, int, _Agent | tuple[_Kind, _Stream, int]]


def _streams(item: WorkItem, need: _Need, pool: _Pool, spread: bool) -> list[_Stream]:
    """Where an item's task may go among the agents still in kinds: beside its app's
    running executor, or anywhere else with the executor's overhead (or anywhere, for a
    task of the command executor)."""
    if need.executor is None:
        return [_Stream(pool.order(need.cpus, need.mem, spread, None), spread, False, None)]
    beside = pool.order(need.cpus, need.mem, spread, need.executor)
    elsewhere = pool.order(
        need.cpus + need.executor_cpus, need.mem + need.executor_mem, spread, None
    )
    return [
        _Stream(beside, spread, False, None),
        _Stream(elsewhere, spread, True, need.executor),
    ]


def _candidates(item: WorkItem, need: _Need, pool: _Pool) -> tuple[list[_Entry], Iterator[int]]:
    """The heap of an item's candidates: every touched agent it fits on, and the first
    run of each stream."""
    spread = item.strategy is PlacementStrategy.SPREAD
    numbers = count()
    heap: list[_Entry] = []
    for agent in pool.touched:
        cpus, mem, starts = need.on(agent.executors)
        if cpus <= agent.cpus and mem <= agent.mem:
            free = _free_after(agent, cpus, mem)
            rank = (
                (agent.job_tasks.get(item.job_key, 0), -free, agent.offer.agent_id)
                if spread
                else (starts, free, agent.offer.agent_id)
            )
            heap.append((rank, next(numbers), agent))
    heapq.heapify(heap)
    for stream in _streams(item, need, pool, spread):
        stream.feed(heap, numbers)
    return heap, numbers


def _pop(heap: list[_Entry], numbers: Iterator[int], pool: _Pool) -> _Agent:
    """The best candidate; one standing for a kind is taken out of it, the kind's next
    agent takes its place and, at the end of what its stream fed in, the next run."""
    rank, _, where = heapq.heappop(heap)
    if isinstance(where, _Agent):
        return where
    kind, stream, run = where
    agent = pool.touch(kind)
    if kind.left:
        heapq.heappush(
            heap, ((rank[0], rank[1], kind.offers[kind.next].agent_id), next(numbers), where)
        )
    if run == stream.runs:
        stream.feed(heap, numbers)
    return agent


def _binpack(item: WorkItem, need: _Need, pool: _Pool, undo: list[_Undo]) -> list[Assignment]:
    # Reusing a running executor beats starting another one; then fill the fullest agent.
    # Filling an agent only makes it more preferred, so one pass in this order places
    # each shard where choosing afresh for every shard would.
    heap, numbers = _candidates(item, need, pool)
    placed: list[Assignment] = []
    shards = iter(item.shards)
    shard = next(shards, None)
    while shard is not None and heap:
        agent = _pop(heap, numbers, pool)
        while shard is not None and _take(agent, need, item.job_key, undo):
            placed.append(Assignment(item.job_key, shard, agent.offer.agent_id, item))
            shard = next(shards, None)
    return placed


def _spread(item: WorkItem, need: _Need, pool: _Pool, undo: list[_Undo]) -> list[Assignment]:
    # The agent with the fewest tasks of this job, then the most free resources.
    heap, numbers = _candidates(item, need, pool)
    placed: list[Assignment] = []
    for shard in item.shards:
        if not heap:
            break
        agent = _pop(heap, numbers, pool)
        _take(agent, need, item.job_key, undo)
        placed.append(Assignment(item.job_key, shard, agent.offer.agent_id, item))
        cpus, mem, _ = need.on(agent.executors)
        if cpus <= agent.cpus and mem <= agent.mem:
            rank = (
                agent.job_tasks[item.job_key],
                -_free_after(agent, cpus, mem),
                agent.offer.agent_id,
            )
            heapq.heappush(heap, (rank, next(numbers), agent))
    return placed


def _largest_free(pool: _Pool) -> tuple[int, int, AgentOffer] | None:
    """The largest free (cpus, mem) now, on the agent with the lowest id that has it."""
    best: tuple[int, int, AgentOffer] | None = None
    frees = [(a.cpus, a.mem, a.offer) for a in pool.touched]
    frees.extend((k.cpus, k.mem, k.offers[k.next]) for k in pool.largest())
    for cpus, mem, offer in frees:
        if (
            best is None
            or (cpus, mem) > best[:2]
            or ((cpus, mem) == best[:2] and offer.agent_id < best[2].agent_id)
        ):
            best = (cpus, mem, offer)
    return best


def _shortfall(item: WorkItem, placed: int, pool: _Pool) -> str:
    total = len(item.shards)
    need = f"{_fmt(_milli(item.cpus))} cpus and {_fmt(_milli(item.mem))} MB memory per shard"
    if item.executor is not None:
        need += (
            f", plus {_fmt(_milli(item.executor_cpus))} cpus and "
            f"{_fmt(_milli(item.executor_mem))} MB for app {item.executor.app_key}'s executor "
            "on each agent where it is not running yet"
        )
    best = _largest_free(pool)
    if best is None:
        where = "no agent is offering resources now"
    else:
        cpus, mem, offer = best
        where = (
            f"{pool.size} agent(s) offering; the largest free offer is "
            f"{_fmt(cpus)} cpus and {_fmt(mem)} MB on {offer.hostname}"
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
    pool = _Pool.of(offers)
    result = PlacementResult()
    for item in items:
        need = _Need.of(item)
        undo: list[_Undo] = []
        if item.strategy is PlacementStrategy.SPREAD:
            placed = _spread(item, need, pool, undo)
        else:
            placed = _binpack(item, need, pool, undo)
        if len(placed) == len(item.shards):
            result.assignments.extend(placed)
            continue
        if item.all_or_nothing:
            _rollback(undo, item.job_key)
        else:
            result.assignments.extend(placed)
        result.unplaced[item.job_key] = _shortfall(item, len(placed), pool)
    return result
