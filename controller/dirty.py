"""The queue of objects whose status is out of date: marked by the scheduling core,
drained by the Kubernetes layer's status refresher.

Whatever shows in a CloudJob's status marks the job when it changes — a fire, a
launch, a task state, a run's end, its unplaceable condition, its run-history
summary — and a change to an app's executors marks the app. The kopf change handlers
mark the object they handled as `urgent`. The refresher pops objects one at a time,
recomputes their status and writes what differs (`controller.reconcilers.refreshing`).

Marks coalesce: an object already queued stays one entry however often it is marked.
An object popped less than `min_gap` seconds ago is due only once that gap has passed,
so a busy job is refreshed at most once per `min_gap`. Urgent marks skip the gap and
the line: they are popped first, in the order marked, so that a user's edit shows at
once even while thousands of busy jobs wait for the status writes' rate limit. Work
therefore follows changes, never the number of objects. `on_mark` is called whenever
a mark makes something due sooner (the refresher wakes on it).

Pure bookkeeping on the caller's clock; event-loop only. Built by `controller.app`,
handed to the `SchedulingService` (which marks) and to each term's refresher.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class ObjectKind(StrEnum):
    JOB = "CloudJob"
    APP = "CloudApp"


DirtyKey = tuple[ObjectKind, str]
"""The kind and the `<namespace>.<name>` key of one object."""


def _nothing() -> None:
    pass


@dataclass
class DirtyQueue:
    """See the module docstring. `marked` and `coalesced` count marks since the start."""

    min_gap: float = 1.0
    clock: Callable[[], float] = time.monotonic
    on_mark: Callable[[], None] = _nothing
    marked: int = 0
    coalesced: int = 0
    _due: dict[DirtyKey, float] = field(default_factory=dict)
    _urgent: dict[DirtyKey, None] = field(default_factory=dict)
    _heap: list[tuple[float, int, DirtyKey]] = field(default_factory=list)
    _popped: dict[DirtyKey, float] = field(default_factory=dict)
    _sequence: int = 0

    def __len__(self) -> int:
        return len(self._due) + len(self._urgent)

    def __contains__(self, item: DirtyKey) -> bool:
        return item in self._due or item in self._urgent

    def mark(self, kind: ObjectKind, key: str, *, urgent: bool = False) -> None:
        now, item = self.clock(), (kind, key)
        self.marked += 1
        if item in self._urgent:
            self.coalesced += 1
            return
        if urgent:
            # Its timed entry, if any, is left behind in the heap; `pop` skips it.
            if self._due.pop(item, None) is not None:
                self.coalesced += 1
            self._urgent[item] = None
            self.on_mark()
            return
        last = self._popped.get(item)
        due = now if last is None else max(now, last + self.min_gap)
        queued = self._due.get(item)
        if queued is not None:
            self.coalesced += 1
            if queued <= due:
                return
        self._due[item] = due
        self._sequence += 1
        # A superseded heap entry stays behind; `pop` skips it (its due no longer matches).
        heapq.heappush(self._heap, (due, self._sequence, item))
        self.on_mark()

    def pop(self) -> DirtyKey | None:
        """The next object due now (no longer queued from here on), or None."""
        now = self.clock()
        if self._urgent:
            item = next(iter(self._urgent))
            del self._urgent[item]
            self._popped[item] = now
            return item
        heap = self._heap
        while heap and heap[0][0] <= now:
            due, _, item = heapq.heappop(heap)
            if self._due.get(item) != due:
                continue
            del self._due[item]
            self._popped[item] = now
            return item
        return None

    def due_in(self) -> float | None:
        """Seconds until the next object is due (0: now), None when none is queued."""
        if self._urgent:
            return 0.0
        heap = self._heap
        while heap and self._due.get(heap[0][2]) != heap[0][0]:
            heapq.heappop(heap)
        return max(0.0, heap[0][0] - self.clock()) if heap else None

    def forget(self, kind: ObjectKind, key: str) -> None:
        """The object is gone: drop its entry and what is remembered of it."""
        self._due.pop((kind, key), None)
        self._urgent.pop((kind, key), None)
        self._popped.pop((kind, key), None)
