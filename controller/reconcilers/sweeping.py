"""The orphan sweep: remove from the scheduling core what no CloudJob/CloudApp stands for.

The core keeps a job's definition in ZooKeeper (and its tasks on Mesos) until the job's
object is deleted through the controller's finalizer. Some deletions never pass through
it: a finalizer stripped by hand, objects deleted (or their namespace) while no
controller ran. Their jobs would run forever. The sweep finds them and unschedules them
(and removes such apps), every `interval` seconds of a leadership term.

A key is an orphan when the core holds it, it lies in a watched namespace, and no object
of that kind and name is in the object index — in two sweeps in a row (so for at least one
whole interval: the index fills while kopf lists, and may be incomplete at
first) — and, checked last under the object's reconciliation lock, the API server has
no object of that name (a list by name: a read as fresh as a GET). An object created
meanwhile is either found by that read or its create handler waits for the lock and
schedules it afresh after the removal; nothing is removed on an API error.

`orphans` is the pure decision; `OrphanSweep` runs it. Each removal is logged and
counted in `cloudjob_orphans_removed_total{kind}`. Built by `controller.app` per term.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter

from controller import naming
from controller.operations import SchedulingError, SchedulingOperations
from controller.reconcilers.handling import Reconciliation

log = logging.getLogger(__name__)

JOB, APP = "CloudJob", "CloudApp"

Present = Callable[[], Iterable[tuple[str, str]]]
"""(namespace, name) of every object of one kind kopf knows of now."""

Exists = Callable[[str, str, str], Awaitable[bool | None]]
"""(kind, namespace, name) → whether the API server has the object (None: cannot tell)."""


def watched(key: str, namespaces: Collection[str]) -> bool:
    """Whether `key` lies in a watched namespace (no namespaces: all are watched)."""
    try:
        namespace, _ = naming.split_key(key)
    except ValueError:
        return False
    return not namespaces or namespace in namespaces


def orphans(
    held: Iterable[str],
    present: Iterable[tuple[str, str]],
    namespaces: Collection[str],
) -> set[str]:
    """Keys the core holds, in a watched namespace, that no known object stands for."""
    known = {naming.object_key(namespace, name) for namespace, name in present}
    return {key for key in held if key not in known and watched(key, namespaces)}


class SweepMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.removed = Counter(
            "cloudjob_orphans_removed",
            "Jobs and apps removed from the scheduler because their object no longer exists",
            ["kind"],
            registry=registry,
        )


@dataclass
class OrphanSweep:
    """See the module docstring. `suspects`: kind → keys found orphaned by the last sweep."""

    ops: SchedulingOperations
    reconciliation: Reconciliation
    jobs_present: Present
    apps_present: Present
    exists: Exists
    metrics: SweepMetrics
    namespaces: Collection[str] = ()
    interval: float = 60.0
    suspects: dict[str, set[str]] = field(default_factory=dict)

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep every `interval` seconds until `stop` is set."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
            if stop.is_set():
                return
            try:
                await self.sweep()
            except SchedulingError as error:
                log.info("orphan sweep skipped: %s", error)

    async def sweep(self) -> list[tuple[str, str]]:
        """One sweep; returns the (kind, key) pairs removed."""
        removed: list[tuple[str, str]] = []
        for kind, held, present in (
            (JOB, self.ops.job_keys(), self.jobs_present),
            (APP, self.ops.app_keys(), self.apps_present),
        ):
            found = orphans(held, present(), self.namespaces)
            confirmed = found & self.suspects.get(kind, set())
            self.suspects[kind] = found - confirmed
            for key in sorted(confirmed):
                if await self._remove(kind, key):
                    removed.append((kind, key))
                else:
                    self.suspects[kind].add(key)
        return removed

    async def _remove(self, kind: str, key: str) -> bool:
        namespace, name = naming.split_key(key)

        async def gone() -> bool:
            return await self.exists(kind, namespace, name) is False

        if not await self.reconciliation.remove_orphan(kind == JOB, key, gone):
            return False
        what = "unscheduled its job" if kind == JOB else "removed its app and stopped executors"
        log.warning(
            "%s %s/%s no longer exists but the scheduler still held it: %s",
            kind,
            namespace,
            name,
            what,
        )
        self.metrics.removed.labels(kind).inc()
        return True
