"""The status refresher: one per leadership term, draining the dirty queue and writing
status patches, rate-limited cluster-wide.

The scheduling core marks objects in the `DirtyQueue` when something their status
shows changes (`controller.dirty`); the kopf change handlers mark the object they
handled. The refresher pops due objects, `IN_FLIGHT` at a time (never one object
twice at once), reads each as the watch last showed it (`Known`, from the object
index: no API read), asks the term's `Reconciliation` for its status patch and, when
something differs, takes a token from its `TokenBucket` and writes the patch to the
`status` subresource. So status writes are
bounded per second whatever the number of objects, a busy object is written at most
once per the queue's gap, and an idle object costs nothing. An object a handler is
working on is skipped and marked again, so one slow handler never holds up the rest.
A write that fails marks the object again (after a pause, so an unreachable API
server is not hammered).

`runtime_event` turns the core's runtime events into Kubernetes Events on the job
(through the `EventRecorder`, which aggregates and paces them); task state changes only
move the status. Built per term by `controller.app`.
"""

from __future__ import annotations

import asyncio
import logging
import marshal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import kopf
from prometheus_client import CollectorRegistry, Counter, Gauge

from controller.dirty import DirtyQueue, ObjectKind
from controller.operations import EventKind, RuntimeEvent, SchedulingError
from controller.reconcilers.handling import ObjectView, Post, Reconciliation
from controller.reconcilers.jobs import AppLookup
from controller.reconcilers.kubeapi import ApiError
from controller.reconcilers.pacing import TokenBucket
from controller.reconcilers.recording import EventRecorder, ObjectRef

log = logging.getLogger(__name__)

FAILURE_PAUSE = 1.0
"""Seconds a worker pauses after a failed refresh or write."""
IN_FLIGHT = 8
"""Objects refreshed at once: a status write waits for the API server, and one at a
time the writes could not use the rate they are allowed."""
# Task state changes only move the status; every other runtime event is also an Event.
_QUIET_EVENTS = frozenset({EventKind.TASK_STATE})


class Known:
    """An object as the watch last showed it, and how Events refer to it.

    The object index keeps one for every object while it exists, so its spec, status
    and annotations are kept packed (`marshal` bytes of their plain data; in memory
    only, never stored) and unpacked at each read: as dicts and strings a job with a
    usual status took about 9.7 KiB, packed about 1.5 KiB (docs/scale.md).
    """

    __slots__ = ("_head", "_packed", "ref")

    def __init__(self, view: ObjectView, ref: ObjectRef) -> None:
        self.ref = ref
        self._head = (view.namespace, view.name, view.generation, view.deleting)
        self._packed = marshal.dumps((dict(view.spec), dict(view.status), dict(view.annotations)))

    @property
    def view(self) -> ObjectView:
        """A fresh copy of the object as last seen: the caller may keep or change it."""
        namespace, name, generation, deleting = self._head
        spec, status, annotations = marshal.loads(self._packed)
        return ObjectView(namespace, name, generation, spec, status, annotations, deleting)


Lookup = Callable[[ObjectKind, str], Known | None]
"""(kind, key) → the object as last seen, None when not (or no longer) known."""

StatusWrite = Callable[[ObjectKind, ObjectView, dict[str, Any]], Awaitable[None]]
"""Writes a merge patch of `.status` on the object (raises `ApiError`)."""


class RefreshMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.refreshes = Counter(
            "cloudjob_status_refreshes",
            "Status refreshes of dirty objects (a write follows only when status changed)",
            ["kind"],
            registry=registry,
        )
        self.writes = Counter(
            "cloudjob_status_writes",
            "Status patches written by the refresher",
            ["kind"],
            registry=registry,
        )
        self.failures = Counter(
            "cloudjob_status_write_failures",
            "Status refreshes or writes that failed and were queued again",
            ["kind"],
            registry=registry,
        )
        self.dirty = Gauge(
            "cloudjob_status_dirty_objects",
            "Objects waiting for a status refresh",
            registry=registry,
        )


@dataclass
class StatusRefresher:
    """See the module docstring."""

    queue: DirtyQueue
    reconciliation: Reconciliation
    known: Lookup
    apps_now: AppLookup
    recorder: EventRecorder
    write: StatusWrite
    bucket: TokenBucket
    metrics: RefreshMetrics

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh whatever is due until `stop` is set, `IN_FLIGHT` objects at a time."""
        wake = asyncio.Event()
        self.queue.on_mark = wake.set
        busy: set[tuple[ObjectKind, str]] = set()
        again: set[tuple[ObjectKind, str]] = set()

        async def worker() -> None:
            while not stop.is_set():
                self.metrics.dirty.set(len(self.queue))
                item = self.queue.pop()
                if item is None:
                    wake.clear()
                    await wait_any(stop, wake, self.queue.due_in())
                    continue
                if item in busy:
                    # Being written by another worker: write it again after that one,
                    # never beside it (the older patch could land last).
                    again.add(item)
                    continue
                busy.add(item)
                try:
                    refreshed = await self.refresh(*item, stop)
                finally:
                    busy.discard(item)
                    if item in again:
                        again.discard(item)
                        self.queue.mark(*item)
                if not refreshed:
                    await wait_any(stop, None, FAILURE_PAUSE)
                else:
                    # An unchanged status awaits nothing: without this a worker would
                    # refresh every due object before anything else on the loop ran.
                    await asyncio.sleep(0)

        try:
            await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
        finally:
            self.queue.on_mark = _ignore

    async def refresh(self, kind: ObjectKind, key: str, stop: asyncio.Event) -> bool:
        """Refresh one object and write its patch, if any; False when that failed (the
        object is marked again)."""
        known = self.known(kind, key)
        if known is None:
            return True
        if self.reconciliation.busy(kind, key):
            # A handler holds the object (and marks it when done): never queue behind it.
            self.queue.mark(kind, key)
            return True
        self.metrics.refreshes.labels(kind.value).inc()
        seen = known.view
        try:
            if kind is ObjectKind.JOB:
                post = self._poster(known.ref)
                patch = await self.reconciliation.job_refresh(seen, self.apps_now, post)
            else:
                patch = await self.reconciliation.app_refresh(seen)
            if not patch:
                return True
            while (wait := self.bucket.take(time.monotonic())) > 0:
                if await wait_any(stop, None, wait):
                    return True
            if not self.reconciliation.leading():
                return True
            await self.write(kind, seen, patch)
            self.metrics.writes.labels(kind.value).inc()
            return True
        except (ApiError, SchedulingError, kopf.TemporaryError) as error:
            log.warning("%s %s: status not refreshed (%s); trying again", kind, key, error)
        except Exception:
            log.exception("%s %s: status refresh failed; trying again", kind, key)
        self.metrics.failures.labels(kind.value).inc()
        self.queue.mark(kind, key)
        return False

    def runtime_event(self, event: RuntimeEvent) -> None:
        """Post the core's event on its job (the core has marked the job dirty)."""
        if event.kind in _QUIET_EVENTS:
            return
        known = self.known(ObjectKind.JOB, event.job_key)
        if known is not None:
            self._poster(known.ref)(
                warning=event.warning, reason=event.kind.value, message=event.message
            )

    def _poster(self, ref: ObjectRef) -> Post:
        recorder = self.recorder

        def post(*, warning: bool, reason: str, message: str) -> None:
            recorder.post(ref, warning=warning, reason=reason, message=message)

        return post


def _ignore() -> None:
    pass


async def wait_any(stop: asyncio.Event, wake: asyncio.Event | None, seconds: float | None) -> bool:
    """Until `stop` (True), `wake` or `seconds` (None: no limit) — whichever comes first."""
    waiters = {asyncio.ensure_future(stop.wait())}
    if wake is not None:
        waiters.add(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return stop.is_set()
