"""One term of the engine over the in-memory ZooKeeper and Mesos: subscription,
operations and event dispatch end to end, each step waited for on the fake's calls."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from controller.history.records import HistoryRecord, JobRemoved, RunAbandoned, RunLaunched
from controller.history.spool import SpoolUnit, decode
from controller.mesos.calls import MesosCallError, NotLeading, refusal_level
from controller.mesos.engine import FrameworkEngine
from controller.mesos.events import MasterError, OffersReceived, StatusReceived, Subscribed
from controller.mesos.history_port import NoHistory
from controller.mesos.states import TaskState
from controller.mesos.statistics import JobStatistics
from controller.mesos.tasks import ExecutorId, app_version
from controller.metrics import FrameworkMetrics
from controller.operations import ReconcileKind, RuntimeEvent, SchedulingError, TriggerResult
from controller.state import NotLeader, ReadyEntry, StateStore, StateUnavailable
from tests.framework.factories import make_app, make_job
from tests.framework.fakes import FakeFence, FakeGateway, FakeMesos
from tests.framework.world import offer, settings, update
from tests.waiting import async_wait_for

pytestmark = pytest.mark.unit


class RecordedHistory(NoHistory):
    """The history seam, spooled, keeping what the term handed it."""

    def __init__(self) -> None:
        self.records: list[HistoryRecord] = []

    @property
    def spooled(self) -> bool:
        return True

    def submit(self, unit: SpoolUnit) -> None:
        self.records.extend(unit.records)


class Term:
    def __init__(self) -> None:
        self.history = RecordedHistory()
        self.gateway = FakeGateway()
        self.fence = FakeFence()
        self.mesos = FakeMesos()
        self.registry = CollectorRegistry()
        self.events: list[RuntimeEvent] = []
        self.store = StateStore(self.gateway, self.fence)
        self.engine = FrameworkEngine(
            store=self.store,
            fence=self.fence,
            connect=self.mesos.connect,
            settings=settings(),
            metrics=FrameworkMetrics(self.registry),
            stats=JobStatistics(),
            emit=self.events.append,
            history=self.history,
        )

    async def subscribe(self, framework_id: str = "fw-1") -> None:
        self.mesos.deliver(Subscribed(framework_id, "127.0.0.1:5050", 1.0, resubscribed=False))
        await self.mesos.until(lambda: [] in self.mesos.reconciled)


@pytest.fixture
async def term() -> AsyncIterator[Term]:
    built = Term()
    await built.engine.start()
    yield built
    await built.engine.close()


async def test_a_term_subscribes_with_the_stored_id_and_reconciles(term: Term) -> None:
    assert term.mesos.started_with == [None]
    await term.subscribe()
    assert term.engine.subscribed
    assert term.store.framework_id() == "fw-1"
    assert term.registry.get_sample_value("cloudjob_mesos_subscribed") == 1


async def test_a_triggered_job_is_launched_and_its_updates_acknowledged(term: Term) -> None:
    await term.subscribe()
    await term.engine.put_app(make_app("app"))
    await term.engine.schedule(make_job("job", shards=2))
    assert await term.engine.trigger("ns.job", "t1") is TriggerResult.RAN
    term.mesos.deliver(OffersReceived((offer("o1", "a1"),)))
    await term.mesos.until(lambda: bool(term.mesos.accepted))
    tasks = sorted(term.store.running())
    assert len(tasks) == 2

    for n, task in enumerate(tasks):
        term.mesos.deliver(StatusReceived(update(task, TaskState.FINISHED, uid=n)))
    await term.mesos.until(lambda: len(term.mesos.acknowledged) == 2)
    assert term.store.running() == {}
    assert term.engine.job_runtime("ns.job").succeeded == 2
    assert await term.engine.trigger("ns.job", "t1") is TriggerResult.ALREADY_HANDLED


async def test_scheduling_a_job_already_in_force_waits_for_no_store_write(term: Term) -> None:
    """A new leader's operator resumes every job with the definition the core already
    holds; those must not queue behind the store's writes, as fires do not."""
    await term.subscribe()
    await term.engine.put_app(make_app("app"))
    await term.engine.schedule(make_job("job"))
    await term.engine.schedule(make_job("daemon", jobExecutionType="DAEMON"))
    release = term.gateway.hold_commits()
    writing = asyncio.create_task(asyncio.to_thread(term.store.put_job, make_job("other")))
    try:
        await asyncio.to_thread(term.gateway.commit_waiting.wait)
        # Equal, not the same object: what a resume builds from the body.
        await asyncio.wait_for(term.engine.schedule(make_job("job")), 10)
        changed = asyncio.create_task(term.engine.schedule(make_job("job", shards=2)))
        daemon = asyncio.create_task(
            term.engine.schedule(make_job("daemon", jobExecutionType="DAEMON"))
        )
        await asyncio.sleep(0.05)
        assert not changed.done() and not daemon.done()  # those go through the store
    finally:
        release.set()
    await asyncio.gather(writing, changed, daemon)
    assert term.store.job("ns.job") == make_job("job", shards=2)
    assert term.store.job("ns.other") == make_job("other")


async def test_removing_an_app_stops_the_executors_the_master_knows(term: Term) -> None:
    await term.subscribe()
    await term.engine.put_app(make_app("app"))
    term.mesos.master_executors = [("ns.app@-@a7", "a7"), ("ns.other@-@a7", "a7")]
    await term.engine.remove_app("ns.app")
    assert [(agent, executor) for agent, executor, _ in term.mesos.messages] == [
        ("a7", "ns.app@-@a7")
    ]


async def test_an_idle_executor_of_an_old_app_version_the_master_lists_is_shut_down(
    term: Term,
) -> None:
    # An earlier controller's executor (an id from before versions) and one of the
    # current version: only the old one goes.
    await term.engine.put_app(make_app("app"))
    current = ExecutorId.of(app_version(make_app("app"), settings().executor_options), "a7")
    term.mesos.master_executors = [("ns.app@-@a7", "a7"), (current.value, "a7")]
    await term.subscribe()
    await term.mesos.until(lambda: bool(term.mesos.shutdowns))
    assert term.mesos.shutdowns == [("a7", "ns.app@-@a7")]


async def test_a_framework_the_master_removed_registers_anew(term: Term) -> None:
    await term.subscribe("fw-old")
    term.mesos.deliver(MasterError("Framework has been removed"))
    await term.mesos.until(lambda: term.mesos.started_with == [None, None])
    assert term.store.framework_id() is None
    assert not term.engine.subscribed


async def test_no_call_goes_out_once_the_term_no_longer_leads(term: Term) -> None:
    await term.subscribe()
    assert term.mesos.may_call()
    term.fence.depose()
    assert not term.mesos.may_call(), "the connection asks the fence before every call"


async def test_an_on_demand_reconciliation_asks_about_the_apps_tasks_or_everything(
    term: Term,
) -> None:
    with pytest.raises(SchedulingError):
        await term.engine.reconcile(ReconcileKind.EXPLICIT)
    await term.subscribe()
    await term.engine.put_app(make_app("app"))
    await term.engine.put_app(make_app("other"))
    await term.engine.schedule(make_job("job", shards=2))
    await term.engine.trigger("ns.job", "t1")
    term.mesos.deliver(OffersReceived((offer("o1", "a1"),)))
    await term.mesos.until(lambda: bool(term.mesos.accepted))
    asked_before = len(term.mesos.reconciled)

    assert await term.engine.reconcile(ReconcileKind.EXPLICIT, "ns.other") == 0
    assert await term.engine.reconcile(ReconcileKind.EXPLICIT, "ns.app") == 2
    await term.mesos.until(lambda: len(term.mesos.reconciled) == asked_before + 1)
    assert sorted(t for t, _ in term.mesos.reconciled[-1]) == sorted(term.store.running())
    assert await term.engine.reconcile(ReconcileKind.IMPLICIT) == 0
    await term.mesos.until(lambda: term.mesos.reconciled[-1] == [])
    assert (
        term.registry.get_sample_value(
            "cloudjob_reconciliation_runs_total", {"trigger": "requested"}
        )
        == 3
    )


def spooled(term: Term) -> list[HistoryRecord]:
    prefix = term.store.layout.history_spool + "/"
    return [
        r
        for p, (data, _) in term.gateway.nodes.items()
        if p.startswith(prefix)
        for r in decode(data)
    ]


async def test_a_job_unscheduled_while_running_ends_its_runs_as_killed_and_its_counters(
    term: Term,
) -> None:
    await term.subscribe()
    await term.engine.put_app(make_app("app"))
    await term.engine.schedule(make_job("job", shards=2))
    await term.engine.trigger("ns.job", "t1")
    term.mesos.deliver(OffersReceived((offer("o1", "a1"),)))
    await term.mesos.until(lambda: bool(term.mesos.accepted))
    launched = sorted(r.run_key for r in term.history.records if isinstance(r, RunLaunched))
    assert launched == sorted(term.store.running())

    await term.engine.unschedule("ns.job")
    ended = [r for r in term.history.records if isinstance(r, RunAbandoned)]
    assert sorted(r.run_key for r in ended) == launched
    assert {r.message for r in ended} == {"killed by the scheduler: unscheduled"}
    (removed,) = [r for r in term.history.records if isinstance(r, JobRemoved)]
    assert removed.job_key == "ns.job"
    # spooled in the removal's own transaction: every record handed over is in the spool
    assert sorted(map(repr, spooled(term))) == sorted(map(repr, term.history.records))


async def test_a_new_term_catches_up_missed_fires_then_its_timers_go_on_from_there() -> None:
    """The previous leader handled its last fires ten seconds ago and no one led since:
    the new term queues what was missed — every fire (misfire on), the newest (misfire
    off), nothing older than the deadline — and its timers never fire one of them again."""
    gateway, fence = FakeGateway(), FakeFence()
    handled = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=10)
    earlier = StateStore(gateway, fence, clock=lambda: handled)
    earlier.load()
    earlier.put_app(make_app())
    every_second = {"cron": "* * * * * ?", "startingDeadlineSeconds": 300}
    on = make_job("on", misfire=True, **every_second)
    off = make_job("off", misfire=False, **every_second)
    short = make_job("short", misfire=True, cron="* * * * * ?", startingDeadlineSeconds=0)
    for job in (on, off, short):
        earlier.put_job(job)
    events: list[RuntimeEvent] = []
    store = StateStore(gateway, fence)
    engine = FrameworkEngine(
        store=store,
        fence=fence,
        connect=FakeMesos().connect,
        settings=settings(misfire_threshold_seconds=3),
        metrics=FrameworkMetrics(CollectorRegistry()),
        stats=JobStatistics(),
        emit=events.append,
        history=NoHistory(),
    )
    await engine.start()
    try:
        caught = store.last_fired(on.key)
        assert caught is not None and caught >= handled + timedelta(seconds=10)
        missed = int((caught - handled).total_seconds())
        assert store.ready()[on.key].count == missed
        assert store.ready()[on.key].fires == tuple(
            handled + timedelta(seconds=n) for n in range(1, missed + 1)
        )
        assert store.ready()[off.key] == ReadyEntry(1, (caught,))
        # a deadline below the misfire threshold counts as the threshold: 3 s late at most
        assert store.ready()[short.key].fires[0] >= caught - timedelta(seconds=3)
        await async_wait_for(
            lambda: [e for e in events if e.job_key == on.key and "cron fired" in e.message],
            what="a fire of the new term's timer",
        )
        fired = [e.at for e in events if e.job_key == on.key]
        assert len(fired) == len(set(fired)) and min(fired[1:]) > caught
    finally:
        await engine.close()


async def test_a_term_that_no_longer_leads_steps_down_without_an_error(
    term: Term, caplog: pytest.LogCaptureFixture
) -> None:
    """A fire the deposed term can no longer queue is left to the next leader (its last
    fire handled stays put), and an operation reaching the ended term is a 'retry later'."""
    await term.engine.put_app(make_app())
    job = make_job("every-second", cron="* * * * * ?")
    await term.engine.schedule(job)
    before = term.store.last_fired(job.key)
    term.fence.depose()
    with caplog.at_level(logging.INFO):
        await async_wait_for(
            lambda: [r for r in caplog.records if "left to the next leader" in r.getMessage()],
            what="a fire left to the next leader",
        )
    assert term.store.last_fired(job.key) == before
    await term.engine.close()
    with pytest.raises(SchedulingError, match="no longer leads"):
        await term.engine.schedule(job)  # unchanged: no write, straight to its timer
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.parametrize(
    ("error", "level"),
    [
        (NotLeading("KILL: not sent, this process no longer leads"), logging.DEBUG),
        (NotLeader("this process does not lead"), logging.DEBUG),
        (MesosCallError("KILL: not subscribed to a Mesos master"), logging.WARNING),
        (StateUnavailable("ZooKeeper did not answer"), logging.WARNING),
    ],
)
def test_refusals_while_stepping_down_are_logged_quietly(error: Exception, level: int) -> None:
    assert refusal_level(error) == level
