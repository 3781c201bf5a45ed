"""Placement of shards on offered agents, and which work is eligible
(docs/semantics.md#launching)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.mesos.placement import AgentOffer, place
from controller.mesos.tasks import AppVersion, ExecutorOptions, MetaInfo, app_version
from controller.mesos.work import QueueSnapshot, WorkItem, eligible_work, work_item
from controller.resources import PlacementStrategy
from controller.state.records import LaunchSource
from tests.framework.factories import make_app, make_job

pytestmark = pytest.mark.unit

VERSION = "0123456789ab"


def item(
    job: str = "ns.job",
    shards: int = 3,
    cpus: float = 1.0,
    mem: float = 100.0,
    *,
    source: LaunchSource = LaunchSource.READY,
    executor: str | None = "ns.app",
    executor_cpus: float = 0.5,
    executor_mem: float = 50.0,
    strategy: PlacementStrategy = PlacementStrategy.BINPACK,
) -> WorkItem:
    return WorkItem(
        job_key=job,
        app_key="ns.app",
        launch_type=source,
        shards=tuple(range(shards)),
        cpus=cpus,
        mem=mem,
        strategy=strategy,
        executor=AppVersion(executor, VERSION) if executor else None,
        executor_cpus=executor_cpus if executor else 0.0,
        executor_mem=executor_mem if executor else 0.0,
    )


def agent(name: str, cpus: float, mem: float, *executors: str) -> AgentOffer:
    """An agent running the current version's executor of each app in `executors`."""
    return AgentOffer(
        name, f"host-{name}", cpus, mem, frozenset(AppVersion(e, VERSION) for e in executors)
    )


def test_all_shards_placed_with_executor_overhead_once_per_agent() -> None:
    # 3 tasks of 1 cpu + one executor 0.5 cpu = 3.5 cpus fit one 3.5-cpu agent exactly.
    result = place([item()], [agent("a", 3.5, 1000)])
    assert [(a.shard, a.agent_id) for a in result.assignments] == [(0, "a"), (1, "a"), (2, "a")]
    assert result.unplaced == {}


def test_executor_overhead_prevents_over_commit() -> None:
    # Without the executor's 0.5 cpus the three tasks would fit in 3 cpus.
    result = place([item()], [agent("a", 3.0, 1000)])
    assert result.assignments == []
    assert "cannot place all 3 shards (only 2 fit)" in result.unplaced["ns.job"]
    assert "executor" in result.unplaced["ns.job"]


def test_running_executor_needs_no_overhead() -> None:
    result = place([item()], [agent("a", 3.0, 1000, "ns.app")])
    assert len(result.assignments) == 3


def test_an_executor_of_an_older_app_version_costs_the_new_one_its_overhead() -> None:
    old = AgentOffer("a", "host-a", 3.0, 1000, frozenset({AppVersion("ns.app", "fedcba987654")}))
    result = place([item()], [old])
    assert result.assignments == []
    assert "for app ns.app's executor" in result.unplaced["ns.job"]
    assert len(place([item()], [replace(old, cpus=3.5)]).assignments) == 3


def test_command_executor_tasks_carry_no_app_overhead() -> None:
    result = place([item(executor=None)], [agent("a", 3.0, 300)])
    assert len(result.assignments) == 3


def test_ready_job_is_all_or_nothing_and_frees_what_it_tried() -> None:
    big = item("ns.big", shards=4, executor=None)
    small = item("ns.small", shards=2, executor=None)
    result = place([big, small], [agent("a", 2, 1000), agent("b", 1, 1000)])
    assert {a.job_key for a in result.assignments} == {"ns.small"}
    assert len(result.assignments) == 2
    assert "none were launched" in result.unplaced["ns.big"]


def test_failover_items_are_exempt_from_all_or_nothing() -> None:
    items = [
        item("ns.job", shards=1, source=LaunchSource.FAILOVER, executor=None),
        WorkItem("ns.job", "ns.app", LaunchSource.FAILOVER, (2,), 1.0, 100.0),
    ]
    result = place(items, [agent("a", 1, 1000)])
    assert [(a.shard, a.agent_id) for a in result.assignments] == [(0, "a")]
    assert "failed-over shard 2" in result.unplaced["ns.job"]


def test_memory_is_a_constraint_too() -> None:
    result = place([item(shards=1, mem=600)], [agent("a", 8, 600)])
    assert result.assignments == []
    assert "600 MB" in result.unplaced["ns.job"]


def test_no_offers_says_so() -> None:
    result = place([item()], [])
    assert "no agent is offering resources" in result.unplaced["ns.job"]


def test_binpack_fills_one_agent_before_the_next() -> None:
    result = place([item(shards=3, executor=None)], [agent("a", 4, 1000), agent("b", 8, 1000)])
    assert Counter(a.agent_id for a in result.assignments) == {"a": 3}


def test_binpack_prefers_an_agent_running_the_apps_executor() -> None:
    result = place([item(shards=1)], [agent("a", 2, 1000), agent("b", 8, 1000, "ns.app")])
    assert [a.agent_id for a in result.assignments] == ["b"]


def test_spread_puts_shards_on_different_agents() -> None:
    spread = item(shards=3, executor=None, strategy=PlacementStrategy.SPREAD)
    result = place([spread], [agent("a", 8, 1000), agent("b", 8, 1000), agent("c", 8, 1000)])
    assert Counter(a.agent_id for a in result.assignments) == {"a": 1, "b": 1, "c": 1}


def test_placement_is_deterministic() -> None:
    offers = [agent("b", 4, 400), agent("a", 4, 400)]
    first = place([item(shards=4)], offers)
    second = place([item(shards=4)], list(reversed(offers)))
    assert first.assignments == second.assignments


@settings(max_examples=200)
@given(
    jobs=st.lists(
        st.tuples(
            st.integers(1, 5),
            st.floats(0.1, 2.0),
            st.floats(1, 500),
            st.booleans(),
            st.booleans(),
            st.sampled_from(list(PlacementStrategy)),
        ),
        min_size=1,
        max_size=6,
    ),
    agents=st.lists(
        st.tuples(st.floats(0, 8), st.floats(0, 2000), st.booleans()), min_size=0, max_size=5
    ),
)
def test_never_over_commits_and_ready_jobs_are_whole(
    jobs: list[tuple[int, float, float, bool, bool, PlacementStrategy]],
    agents: list[tuple[float, float, bool]],
) -> None:
    items = [
        item(
            f"ns.j{i}",
            shards=shards,
            cpus=cpus,
            mem=mem,
            source=LaunchSource.READY if ready else LaunchSource.FAILOVER,
            executor=f"ns.app{i % 2}" if custom else None,
            strategy=strategy,
        )
        for i, (shards, cpus, mem, ready, custom, strategy) in enumerate(jobs)
    ]
    offers = [
        agent(f"a{n}", cpus, mem, *(["ns.app0"] if running else []))
        for n, (cpus, mem, running) in enumerate(agents)
    ]
    result = place(items, offers)
    by_name = {o.agent_id: o for o in offers}
    for agent_id, assigned in result.by_agent().items():
        offer = by_name[agent_id]
        cpus = sum(round(a.item.cpus * 1000) for a in assigned)
        mem = sum(round(a.item.mem * 1000) for a in assigned)
        for app in {a.item.executor for a in assigned} - {None} - offer.executors:
            overhead = next(a.item for a in assigned if a.item.executor == app)
            cpus += round(overhead.executor_cpus * 1000)
            mem += round(overhead.executor_mem * 1000)
        assert cpus <= round(offer.cpus * 1000)
        assert mem <= round(offer.mem * 1000)
    placed = Counter(a.job_key for a in result.assignments)
    for work in items:
        count = placed.get(work.job_key, 0)
        if work.all_or_nothing:
            assert count in (0, len(work.shards))
        assert (count == len(work.shards)) == (work.job_key not in result.unplaced)


# eligibility ----------------------------------------------------------------------------

APP = make_app()
JOBS = {
    j.key: j
    for j in (
        make_job("a"),
        make_job("b", shards=2),
        make_job("c", shards=1),
        make_job("daemon", executionType="DAEMON", shards=2),
    )
}
APPS = {APP.key: APP}


def test_failover_first_then_ready_and_ready_waits_for_its_failover() -> None:
    queues = QueueSnapshot(
        ready={"ns.a": 2, "ns.b": 1, "ns.c": 1},
        failover=[MetaInfo("ns.b", 1)],
        running=[MetaInfo("ns.c", 0)],
    )
    work = eligible_work(queues, JOBS, APPS)
    assert [(w.job_key, w.launch_type, w.shards) for w in work.items] == [
        ("ns.b", LaunchSource.FAILOVER, (1,)),
        ("ns.a", LaunchSource.READY, (0, 1, 2)),
    ]
    assert work.waiting["ns.b"] == "its failed-over shards launch first"
    assert work.waiting["ns.c"] == "its previous run is still running"


def test_failover_of_a_running_shard_waits_and_stale_entries_are_reported() -> None:
    queues = QueueSnapshot(
        ready={"ns.gone": 1},
        failover=[MetaInfo("ns.b", 0), MetaInfo("ns.gone", 0), MetaInfo("ns.c", 5)],
        running=[MetaInfo("ns.b", 0)],
    )
    work = eligible_work(queues, JOBS, APPS)
    assert work.items == []
    assert work.stale_ready == ["ns.gone"]
    assert work.stale_failover == [MetaInfo("ns.c", 5), MetaInfo("ns.gone", 0)]


def test_a_stale_failover_entry_does_not_hold_back_its_jobs_ready_run() -> None:
    # ns.c has one shard now; an entry for shard 5 is left from a larger sharding count.
    queues = QueueSnapshot(ready={"ns.c": 1}, failover=[MetaInfo("ns.c", 5)], running=[])
    work = eligible_work(queues, JOBS, APPS)
    assert [(w.job_key, w.launch_type, w.shards) for w in work.items] == [
        ("ns.c", LaunchSource.READY, (0,))
    ]
    assert work.stale_failover == [MetaInfo("ns.c", 5)]
    assert "ns.c" not in work.waiting


def test_disabled_and_unsettled_jobs_do_not_launch() -> None:
    jobs = dict(JOBS)
    jobs["ns.off"] = make_job("off", disabled=True)
    queues = QueueSnapshot(
        ready={"ns.a": 1, "ns.b": 1, "ns.off": 1, "ns.c": 1},
        failover=[],
        running=[],
        disabled_jobs={"ns.a"},
    )
    work = eligible_work(queues, jobs, APPS, unsettled_jobs={"ns.c"})
    assert [w.job_key for w in work.items] == ["ns.b"]
    assert work.waiting == {
        "ns.a": "the job is disabled",
        "ns.off": "the job is disabled",
        "ns.c": "waiting for reconciliation of its tasks with Mesos",
    }


def test_disabled_or_missing_app_blocks_its_jobs() -> None:
    queues = QueueSnapshot(ready={"ns.a": 1}, failover=[], running=[], disabled_apps={"ns.app"})
    assert eligible_work(queues, JOBS, APPS).waiting["ns.a"] == "its app ns.app is disabled"
    enabled = QueueSnapshot(ready={"ns.a": 1}, failover=[], running=[])
    assert eligible_work(enabled, JOBS, {}).waiting["ns.a"] == "its app ns.app is not defined"


def test_work_item_carries_executor_overhead_only_for_custom_executors() -> None:
    script = work_item(JOBS["ns.a"], APP, LaunchSource.READY, (0,))
    daemon = work_item(JOBS["ns.daemon"], APP, LaunchSource.READY, (0, 1))
    assert script.executor is None and script.executor_cpus == 0
    assert daemon.executor == app_version(APP, ExecutorOptions())
    assert (daemon.executor_cpus, daemon.executor_mem) == (1.0, 128.0)


# The oracle ---------------------------------------------------------------------------
#
# The rules written plainly: every shard looks at every agent afresh, and an
# all-or-nothing item that falls short restores a copy of everything. `place` must agree
# with it on every input: the same assignments in the same order and the same reasons.

OLD = "fedcba987654"


def _reference(
    items: list[WorkItem], offers: list[AgentOffer]
) -> tuple[list[tuple[str, int, str]], dict[str, str]]:
    """(job, shard, agent) in order, and job → the part of its reason about the offers."""
    ids = sorted(o.agent_id for o in offers)
    by_id = {o.agent_id: o for o in offers}
    free = {o.agent_id: [round(o.cpus * 1000), round(o.mem * 1000)] for o in offers}
    total = {
        o.agent_id: (max(round(o.cpus * 1000), 1), max(round(o.mem * 1000), 1)) for o in offers
    }
    executors = {o.agent_id: set(o.executors) for o in offers}
    tasks: Counter[tuple[str, str]] = Counter()
    out: list[tuple[str, int, str]] = []
    unplaced: dict[str, str] = {}
    for work in items:
        saved = (
            {k: list(v) for k, v in free.items()},
            {k: set(v) for k, v in executors.items()},
            Counter(tasks),
        )
        placed = []
        for shard in work.shards:
            options = []
            for agent_id in ids:
                starts = work.executor is not None and work.executor not in executors[agent_id]
                cpus = round(work.cpus * 1000) + (round(work.executor_cpus * 1000) if starts else 0)
                mem = round(work.mem * 1000) + (round(work.executor_mem * 1000) if starts else 0)
                if cpus <= free[agent_id][0] and mem <= free[agent_id][1]:
                    left = (free[agent_id][0] - cpus) / total[agent_id][0] + (
                        free[agent_id][1] - mem
                    ) / total[agent_id][1]
                    if work.strategy is PlacementStrategy.SPREAD:
                        rank: tuple[object, ...] = (
                            tasks[(work.job_key, agent_id)],
                            -left,
                            agent_id,
                        )
                    else:
                        rank = (starts, left, agent_id)
                    options.append((rank, agent_id, cpus, mem))
            if not options:
                continue
            _, agent_id, cpus, mem = min(options)
            free[agent_id][0] -= cpus
            free[agent_id][1] -= mem
            if work.executor is not None:
                executors[agent_id].add(work.executor)
            tasks[(work.job_key, agent_id)] += 1
            placed.append((work.job_key, shard, agent_id))
        if len(placed) == len(work.shards):
            out.extend(placed)
            continue
        if work.all_or_nothing:
            free, executors, tasks = saved
        else:
            out.extend(placed)
        if not ids:
            unplaced[work.job_key] = "no agent is offering resources now"
            continue
        largest = max(ids, key=lambda i: free[i])  # the first of equals: the lowest id
        cpus, mem = free[largest]
        unplaced[work.job_key] = (
            f"{len(ids)} agent(s) offering; the largest free offer is {cpus / 1000:g} cpus "
            f"and {mem / 1000:g} MB on {by_id[largest].hostname}"
        )
    return out, unplaced


# Small sets of amounts mixed with arbitrary thousandths, so that near ties in the
# fractions occur.
def _amounts(common: list[float], most: int) -> st.SearchStrategy[float]:
    return st.one_of(st.sampled_from(common), st.integers(0, most).map(lambda m: m / 1000))


EXECUTOR_SETS = [
    frozenset(),
    frozenset({AppVersion("ns.app0", VERSION)}),
    frozenset({AppVersion("ns.app1", VERSION)}),
    frozenset({AppVersion("ns.app0", VERSION), AppVersion("ns.app1", VERSION)}),
    frozenset({AppVersion("ns.app0", OLD)}),
]


@st.composite
def _offers(draw: st.DrawFn) -> list[AgentOffer]:
    # Agents take their amounts from a few shapes, so that many offer the same (and rank
    # equal but for their ids, or but for their executors).
    shapes = draw(
        st.lists(
            st.tuples(
                _amounts([0.5, 1.0, 2.0, 3.5, 8.0], 8000),
                _amounts([0.0, 256.0, 1024.0], 2_000_000),
            ),
            min_size=1,
            max_size=4,
        )
    )
    count = draw(st.integers(0, 16))
    names = draw(st.permutations([f"a{n}" for n in range(count)]))
    return [
        AgentOffer(
            name,
            f"host-{name}",
            *draw(st.sampled_from(shapes)),
            draw(st.sampled_from(EXECUTOR_SETS)),
        )
        for name in names
    ]


@st.composite
def _items(draw: st.DrawFn) -> list[WorkItem]:
    items = []
    for _ in range(draw(st.integers(1, 10))):
        executor = draw(st.sampled_from([None, "ns.app0", "ns.app1"]))
        overhead = draw(st.sampled_from([(0.0, 0.0), (0.5, 50.0), (1.0, 128.0)]))
        shards = draw(st.integers(1, 6))
        items.append(
            replace(
                # Few job names: failed-over shards of one job spread away from each other.
                item(
                    draw(st.sampled_from(["ns.j0", "ns.j1", "ns.j2", "ns.j3"])),
                    shards=shards,
                    cpus=draw(_amounts([0.0, 0.1, 0.25, 0.5, 1.0, 1.5], 3000)),
                    mem=draw(_amounts([16.0, 64.0, 128.0, 512.0], 600_000)),
                    source=draw(st.sampled_from([LaunchSource.READY, LaunchSource.FAILOVER])),
                    executor=executor,
                    executor_cpus=overhead[0],
                    executor_mem=overhead[1],
                    strategy=draw(st.sampled_from(list(PlacementStrategy))),
                ),
                app_key=executor or "ns.app0",
            )
        )
    return items


@settings(max_examples=1000)
@given(items=_items(), offers=_offers())
def test_placement_matches_choosing_afresh_for_every_shard(
    items: list[WorkItem], offers: list[AgentOffer]
) -> None:
    result = place(items, offers)
    assignments, reasons = _reference(items, offers)
    assert [(a.job_key, a.shard, a.agent_id) for a in result.assignments] == assignments
    assert result.unplaced.keys() == reasons.keys()
    for job_key, where in reasons.items():
        assert result.unplaced[job_key].endswith(where)


def test_the_oracle_sees_what_the_rules_decide() -> None:
    # Guards the oracle itself: spread over equal agents goes by id; binpack fills the
    # fuller agent (a, 3 of 4 cpus and 900 of 1000 MB left, before c with 2 of 2 cpus);
    # a job that does not fit names the largest free offer left.
    spread = item("ns.s", shards=2, executor=None, strategy=PlacementStrategy.SPREAD)
    fill = item("ns.b", shards=1, executor=None)
    big = item("ns.big", shards=3, cpus=4.0, executor=None)
    offers = [agent("b", 4, 1000), agent("a", 4, 1000), agent("c", 2, 1000)]
    assert _reference([spread, fill, big], offers) == (
        [("ns.s", 0, "a"), ("ns.s", 1, "b"), ("ns.b", 0, "a")],
        {"ns.big": "3 agent(s) offering; the largest free offer is 3 cpus and 900 MB on host-b"},
    )
