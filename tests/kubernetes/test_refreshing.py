"""The dirty queue, the write pacing, the drift sweep's spreading, and the status
refresher draining the queue over an in-memory core (the `SchedulingOperations` seam)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from controller.dirty import DirtyQueue, ObjectKind
from controller.operations import EventKind, RuntimeEvent
from controller.reconcilers.apps import RECONCILE_ANNOTATION as RECONCILE
from controller.reconcilers.drift import DriftSweep, spread
from controller.reconcilers.handling import ObjectView, Reconciliation
from controller.reconcilers.jobs import TRIGGER_ANNOTATION as TRIGGER
from controller.reconcilers.kubeapi import ApiError, KubeApi
from controller.reconcilers.pacing import TokenBucket
from controller.reconcilers.recording import EventRecorder, ObjectRef
from controller.reconcilers.refreshing import IN_FLIGHT, Known, RefreshMetrics, StatusRefresher
from controller.reconcilers.status import AppAvailability
from tests.kubernetes.core import MemoryCore

pytestmark = pytest.mark.unit

JOB = ObjectKind.JOB
SPEC: dict[str, Any] = {
    "appName": "demo",
    "cron": "0 0 0 1 1 ? 2099",
    "shardingTotalCount": 1,
    "cpuCount": 0.1,
    "memoryMB": 16.0,
    "script": {"commandLine": "echo hi"},
}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------- the dirty queue
def test_marks_of_a_queued_object_coalesce_and_wake_the_refresher_once() -> None:
    woken: list[int] = []
    queue = DirtyQueue(min_gap=1.0, clock=Clock(), on_mark=lambda: woken.append(1))
    for _ in range(5):
        queue.mark(JOB, "a.x")
    queue.mark(JOB, "a.y")
    assert len(queue) == 2 and (queue.marked, queue.coalesced) == (6, 4)
    assert len(woken) == 2
    assert [queue.pop(), queue.pop(), queue.pop()] == [(JOB, "a.x"), (JOB, "a.y"), None]
    assert queue.due_in() is None


def test_an_object_is_refreshed_at_most_once_per_gap_unless_urgent() -> None:
    clock = Clock()
    queue = DirtyQueue(min_gap=1.0, clock=clock)
    queue.mark(JOB, "a.x")
    assert queue.pop() == (JOB, "a.x")
    clock.now += 0.25
    queue.mark(JOB, "a.x")
    assert queue.pop() is None
    assert queue.due_in() == pytest.approx(0.75)
    clock.now += 0.75
    assert queue.pop() == (JOB, "a.x")

    clock.now += 0.1
    queue.mark(JOB, "a.x")
    queue.mark(JOB, "a.x", urgent=True)  # a user's edit: no gap, and one entry still
    assert len(queue) == 1 and queue.pop() == (JOB, "a.x")
    assert queue.pop() is None and queue.due_in() is None


def test_a_users_edit_goes_before_a_backlog_of_overdue_objects() -> None:
    clock = Clock()
    queue = DirtyQueue(min_gap=1.0, clock=clock)
    for number in range(1000):
        queue.mark(JOB, f"a.busy-{number}")
    clock.now += 60.0  # every busy job overdue, as when writes are rate-limited
    queue.mark(JOB, "a.busy-7", urgent=True)  # queued already: moves to the front
    queue.mark(JOB, "a.new", urgent=True)
    queue.mark(JOB, "a.new")  # a later plain mark leaves it in front
    assert len(queue) == 1001
    assert [queue.pop(), queue.pop()] == [(JOB, "a.busy-7"), (JOB, "a.new")]
    assert queue.pop() == (JOB, "a.busy-0")
    popped = {queue.pop() for _ in range(998)}
    assert (JOB, "a.busy-7") not in popped and len(popped) == 998
    assert queue.pop() is None and queue.due_in() is None and len(queue) == 0


def test_a_forgotten_object_leaves_the_queue() -> None:
    queue = DirtyQueue(clock=Clock())
    queue.mark(JOB, "a.x")
    queue.mark(ObjectKind.APP, "a.x")
    queue.mark(JOB, "a.y", urgent=True)
    queue.forget(JOB, "a.x")
    queue.forget(JOB, "a.y")
    assert queue.pop() == (ObjectKind.APP, "a.x")
    assert queue.pop() is None


# ---------------------------------------------------------------- pacing and spreading
def test_the_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=10.0, burst=3)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.1)
    assert bucket.take(0.05) == pytest.approx(0.05)
    assert bucket.take(0.1) == 0.0
    assert bucket.take(100.0) == 0.0  # refills to the burst, never beyond
    assert [bucket.take(100.0) for _ in range(3)][-1] == pytest.approx(0.1)
    with pytest.raises(ValueError):
        TokenBucket(rate=0.0, burst=1)


def test_the_sweep_spreads_objects_over_its_period() -> None:
    assert spread(10_000, 300.0) == (7, 0.2)
    assert spread(3, 300.0) == (1, 100.0)
    assert spread(0, 300.0) == (0, 300.0)
    per_batch, tick = spread(1_000, 10.0)
    assert per_batch * (10.0 / tick) >= 1_000 and tick >= 0.2


async def test_a_sweep_round_asks_every_object_for_a_re_apply() -> None:
    asked: list[tuple[ObjectKind, str]] = []
    objects = [(ObjectKind.APP, "a.app"), (JOB, "a.x"), (JOB, "a.y")]
    sweep = DriftSweep(
        objects=lambda: objects,
        reapply=lambda kind, key: asked.append((kind, key)),
        period=0.03,
    )
    assert await sweep.round(asyncio.Event())
    assert asked == objects
    stop = asyncio.Event()
    stop.set()
    assert not await sweep.round(stop)


# ---------------------------------------------------------------- the refresher
def job_view(name: str, status: dict[str, Any] | None = None) -> ObjectView:
    return ObjectView(
        namespace="team-a",
        name=name,
        generation=1,
        spec=SPEC,
        status=status or {},
        annotations={},
    )


class World:
    """A refresher over the in-memory core; writes land in `written` (and in the
    objects, as the watch would show them)."""

    def __init__(self, *, leading: Callable[[], bool] = lambda: True) -> None:
        self.core = MemoryCore()
        self.queue = DirtyQueue(min_gap=0.0)
        self.reconciliation = Reconciliation(ops=self.core, dirty=self.queue, leading=leading)
        self.objects: dict[tuple[ObjectKind, str], Known] = {}
        self.written: list[tuple[str, dict[str, Any]]] = []
        self.wrote = asyncio.Event()
        self.failures = 0
        self.recorder = EventRecorder(
            KubeApi(lambda: pytest.fail("no request is made"), user_agent="test"),
            component="test",
            instance="test",
            leading=leading,
        )
        self.refresher = StatusRefresher(
            queue=self.queue,
            reconciliation=self.reconciliation,
            known=lambda kind, key: self.objects.get((kind, key)),
            apps_now=lambda namespace, name: AppAvailability.AVAILABLE,
            recorder=self.recorder,
            write=self.write,
            bucket=TokenBucket(rate=1000.0, burst=10),
            metrics=RefreshMetrics(CollectorRegistry()),
        )

    def add(self, name: str) -> None:
        view = job_view(name)
        self.objects[(JOB, view.key)] = Known(
            view, ObjectRef("cloudjob.io/v1", "CloudJob", "team-a", name, f"uid-{name}")
        )

    async def create(self, name: str, *, resumed: bool = False) -> None:
        """What kopf's create handler does: the job is scheduled and marked urgent (its
        resume handler: marked only)."""
        self.add(name)

        def post(*, warning: bool, reason: str, message: str) -> None:
            pytest.fail(f"a valid job's creation posts nothing, not {reason}")

        await self.reconciliation.job_changed(
            job_view(name),
            lambda namespace, app: AppAvailability.AVAILABLE,
            post,
            urgent=not resumed,
        )

    async def write(self, kind: ObjectKind, view: ObjectView, patch: dict[str, Any]) -> None:
        if self.failures:
            self.failures -= 1
            raise ApiError(0, "the API server is unreachable")
        self.written.append((view.key, patch))
        known = self.objects[(kind, view.key)]
        status = {**known.view.status, **patch}
        self.objects[(kind, view.key)] = Known(job_view(view.name, status), known.ref)
        self.wrote.set()

    async def until_written(self, count: int) -> None:
        while len(self.written) < count:
            self.wrote.clear()
            await asyncio.wait_for(self.wrote.wait(), 10.0)


async def test_the_refresher_writes_a_dirty_job_once_and_an_unchanged_one_never() -> None:
    world = World()
    await world.create("report")
    stop = asyncio.Event()
    task = asyncio.create_task(world.refresher.run(stop))
    try:
        await world.until_written(1)
        assert world.written[0][0] == "team-a.report"
        assert world.written[0][1]["state"] == "Scheduled"

        # Marked again with nothing new: refreshed, not written; a new job is.
        world.queue.mark(JOB, "team-a.report")
        await world.create("other")
        await world.until_written(2)
        assert [key for key, _ in world.written] == ["team-a.report", "team-a.other"]
        assert len(world.queue) == 0
    finally:
        stop.set()
        await task


async def test_a_failed_write_marks_the_object_again() -> None:
    world = World()
    await world.create("report")
    world.failures = 1
    stop = asyncio.Event()
    task = asyncio.create_task(world.refresher.run(stop))
    try:
        await world.until_written(1)
        assert world.written[0][1]["state"] == "Scheduled"
    finally:
        stop.set()
        await task


async def test_a_term_that_no_longer_leads_writes_nothing() -> None:
    leads = [False]
    world = World(leading=lambda: leads[0])
    world.add("report")
    assert await world.refresher.refresh(JOB, "team-a.report", asyncio.Event())
    assert world.written == []


def test_runtime_events_become_events_on_their_job_but_task_states_do_not() -> None:
    world = World()
    world.add("report")
    for kind in (EventKind.TASK_STATE, EventKind.FAILED):
        world.refresher.runtime_event(
            RuntimeEvent(kind=kind, job_key="team-a.report", message=f"{kind} happened")
        )
    world.refresher.runtime_event(
        RuntimeEvent(kind=EventKind.FAILED, job_key="team-a.unknown", message="lost")
    )
    writes, _ = world.recorder.book.due(0.0)
    assert [(w.entry.reason, w.entry.ref.name) for w in writes] == [("Failed", "report")]


async def test_an_object_a_handler_holds_is_skipped_and_marked_again() -> None:
    world = World()
    await world.create("report")
    assert world.queue.pop() == (JOB, "team-a.report")
    async with world.reconciliation.mailboxes.lock("CloudJob/team-a.report"):
        assert await world.refresher.refresh(JOB, "team-a.report", asyncio.Event())
    assert world.written == [] and len(world.queue) == 1


def test_a_trigger_or_reconcile_value_not_acted_on_marks_its_object_at_once() -> None:
    """kopf calls no update handler for an annotation change: every event is looked at."""
    queue = DirtyQueue(min_gap=60.0, clock=Clock())
    reconciliation = Reconciliation(ops=MemoryCore(), dirty=queue, leading=lambda: True)
    handled = job_view("report", status={"lastTrigger": "t1"})
    reconciliation.annotations_seen(JOB, replace(handled, annotations={TRIGGER: "t1"}))
    reconciliation.annotations_seen(JOB, job_view("plain"))
    reconciliation.annotations_seen(
        JOB, replace(job_view("gone"), annotations={TRIGGER: "t9"}, deleting=True)
    )
    assert len(queue) == 0
    reconciliation.annotations_seen(JOB, replace(handled, annotations={TRIGGER: "t2"}))
    app = replace(job_view("workers"), annotations={RECONCILE: "now"})
    reconciliation.annotations_seen(ObjectKind.APP, app)
    reconciliation.annotations_seen(
        ObjectKind.APP, replace(app, status={"lastReconcile": "now"}, name="done")
    )
    assert [queue.pop(), queue.pop(), queue.pop()] == [
        (JOB, "team-a.report"),
        (ObjectKind.APP, "team-a.workers"),
        None,
    ]


async def test_a_job_applied_while_a_new_leader_resumes_thousands_is_refreshed_first() -> None:
    world = World()
    for n in range(2000):
        await world.create(f"resumed-{n}", resumed=True)
    await world.create("applied")
    assert world.queue.pop() == (JOB, "team-a.applied")
    assert world.queue.pop() == (JOB, "team-a.resumed-0")


async def test_refreshes_that_write_nothing_let_the_loop_run_between_them() -> None:
    world = World()
    names = [f"job-{n}" for n in range(100)]
    for name in names:
        await world.create(name)
    stop = asyncio.Event()
    task = asyncio.create_task(world.refresher.run(stop))
    try:
        await world.until_written(len(names))
        for name in names:  # nothing left to write for any of them
            world.queue.mark(JOB, job_view(name).key, urgent=True)
        left: list[int] = []
        while not left or left[-1]:
            await asyncio.sleep(0)
            left.append(len(world.queue))
        assert any(0 < n < len(names) for n in left), left
        assert len(world.written) == len(names)
    finally:
        stop.set()
        await task


async def test_slow_writes_go_several_at_a_time_and_one_object_never_twice_at_once() -> None:
    world = World()
    names = [f"job-{n}" for n in range(IN_FLIGHT + 2)]
    for name in names:
        await world.create(name)
    release, all_busy = asyncio.Event(), asyncio.Event()
    writing: list[str] = []
    at_once: list[int] = []
    write = world.write

    async def slow(kind: ObjectKind, view: ObjectView, patch: dict[str, Any]) -> None:
        writing.append(view.key)
        at_once.append(len(writing))
        if len(writing) == IN_FLIGHT:
            all_busy.set()
        await release.wait()
        writing.remove(view.key)
        await write(kind, view, patch)

    world.refresher.write = slow
    stop = asyncio.Event()
    task = asyncio.create_task(world.refresher.run(stop))
    try:
        await asyncio.wait_for(all_busy.wait(), 10)
        # Marked while its write is under way: written again after it, not beside it.
        first = writing[0]
        world.queue.mark(JOB, first, urgent=True)
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(writing) == IN_FLIGHT and writing.count(first) == 1
        release.set()
        await world.until_written(len(names))
        assert max(at_once) == IN_FLIGHT
    finally:
        stop.set()
        release.set()
        await task
