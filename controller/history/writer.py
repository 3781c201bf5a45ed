"""`HistoryWriter`: the run history's bounded buffer and the task that writes it.

The scheduling core calls `submit` with a spool unit — the records of one state
change, already in ZooKeeper's spool in the same transaction as the change (see
`spool`) — once the change is committed; `submit` only appends to a bounded buffer
and never waits, so no database — slow, down or gone — ever delays a launch or a
status update. The writer task (`run`, one per process, on the controller's loop)
writes the buffer in batches of whole units, one transaction each, then applies the
committed runs to the `Summaries` and deletes the units from the spool. While the
database is unavailable the batch stays in the buffer and is retried every
`retry_seconds`; when the buffer is full the oldest units are dropped — from the spool
too — and their records counted (`cloudjob_history_records_dropped_total`), with one
log line when dropping starts and one when the database is back. `health` says which
of these holds, for /readyz.

`lead` (called when this replica becomes leader, with the spool) makes the writer
adopt the units a previous leader left in the spool (ahead of its own: they are
older), migrate the schema to head, write what waits and reload the summaries;
`follow` forgets the summaries, since another leader writes now. Retention runs every
`retention_interval` while leading. Built by `controller.app.Controller`; read by the
scheduling core (summaries) and the metrics. `summary_changed` is told the key of every
job whose summary a write or a reload changed (the controller marks that job's status
out of date).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.history.database import migrate, open_engine
from controller.history.records import JobRemoved, RunAbandoned, RunEnded, RunLaunched
from controller.history.settings import HistorySettings
from controller.history.spool import Spool, SpoolUnit
from controller.history.storing import apply_retention, load_summaries, write_batch
from controller.history.summaries import Summaries
from controller.operations import JobHistory

log = logging.getLogger(__name__)

# Units waiting at most, whatever their size: a new leader lists the spool in one
# ZooKeeper reply (at most 1 MiB; a unit's name costs about 20 bytes of it), and may
# find a full spool of the last leader's beside a few of its own.
MAX_UNITS = 20_000


class HistoryMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.written = Counter(
            "cloudjob_history_records_written", "history records committed", registry=registry
        )
        self.dropped = Counter(
            "cloudjob_history_records_dropped",
            "history records dropped because the buffer was full (database unavailable)",
            registry=registry,
        )
        self.buffered = Gauge(
            "cloudjob_history_records_buffered",
            "history records waiting to be written",
            registry=registry,
        )
        self.up = Gauge(
            "cloudjob_history_database_up",
            "1 while the last write or read of the history database succeeded",
            registry=registry,
        )
        self.pruned = Counter(
            "cloudjob_history_rows_pruned",
            "history rows deleted by the retention",
            ("table",),
            registry=registry,
        )


class HistoryWriter:
    def __init__(
        self,
        settings: HistorySettings,
        *,
        registry: CollectorRegistry,
        engine: Callable[[str, float], AsyncEngine] = open_engine,
        summary_changed: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self._summary_changed = summary_changed
        self.summaries = Summaries(settings.recent_runs)
        self.metrics = HistoryMetrics(registry)
        self._open = engine
        self._engine: AsyncEngine | None = None
        self._buffer: deque[SpoolUnit] = deque()
        self._records = 0
        self._spool: Spool | None = None
        # Units written (or dropped) whose spool nodes are still to be deleted.
        self._unspool: set[str] = set()
        self._wake = _Wake()
        self._leading = False
        self._adopt = False
        self._reload = False
        self._migrated = False
        # None: nothing went wrong (yet); else why the last try failed.
        self._problem: str | None = None
        self._used = False
        self._dropped_in_outage = 0
        self._next_retention = 0.0
        self._progress = asyncio.Condition()

    # ------------------------------------------------------------------ inputs
    def submit(self, unit: SpoolUnit) -> None:
        """Queue a unit for writing; never waits. Loop thread only."""
        if not unit.records:
            return
        self._buffer.append(unit)
        self._records += len(unit.records)
        self._bound()
        self._wake.set()

    def _bound(self) -> None:
        """Drop the oldest units while the buffer holds more records than its size, or
        more than `MAX_UNITS` units."""
        excess = 0
        while self._buffer and (
            self._records > self.settings.buffer_size or len(self._buffer) > MAX_UNITS
        ):
            unit = self._buffer.popleft()
            self._records -= len(unit.records)
            self._unspool.add(unit.name)
            excess += len(unit.records)
        if excess:
            self.metrics.dropped.inc(excess)
            if self._dropped_in_outage == 0:
                log.warning(
                    "run history buffer full (%d records; database: %s): dropping the "
                    "oldest records until it is written again",
                    self.settings.buffer_size,
                    self._problem or "slow to write",
                )
            self._dropped_in_outage += excess
        self.metrics.buffered.set(self._records)

    def lead(self, spool: Spool) -> None:
        """This replica leads: adopt what the spool holds, migrate, reload the
        summaries, then write."""
        self._spool = spool
        self._leading = True
        self._adopt = True
        self._reload = True
        self._next_retention = 0.0
        self._wake.set()

    def follow(self) -> None:
        """Another replica leads: the summaries would go stale."""
        self._leading = False
        self._reload = False
        self.summaries.unload()

    # ------------------------------------------------------------------ reads
    @property
    def spooled(self) -> bool:
        """Records reach this writer through the spool (see `submit`)."""
        return True

    def job_history(self, job_key: str) -> JobHistory | None:
        """The job's counters and recent runs as committed; None until loaded."""
        return self.summaries.of(job_key)

    @property
    def health(self) -> str:
        """Why the history is not being written; else "ok" once the database answered,
        "idle" before it was first needed (a standby's usual state)."""
        if self._problem is not None:
            return f"unavailable: {self._problem}"
        return "ok" if self._used else "idle"

    @property
    def buffered(self) -> int:
        return self._records

    async def wait_until(self, check: Callable[[], bool]) -> None:
        """Return once `check()` holds, re-checked after every round of the writer."""
        async with self._progress:
            await self._progress.wait_for(check)

    # ------------------------------------------------------------------ the task
    async def run(self, stop: asyncio.Event) -> None:
        """Write until `stop` is set; then try once to write what is left."""
        # One waiter on `stop` for the whole run and no task created per wait: kopf takes
        # every task created while an operator runs for one of its own, and waits 5 s for
        # it when that operator stops, at the end of each leadership term.
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                if not await self._step():
                    await asyncio.wait({stopping}, timeout=self.settings.retry_seconds)
                elif not self._buffer and not self._reload and not self._adopt:
                    woken = self._wake.cleared()
                    due = self._retention_due_in()
                    if self._unspool:
                        due = min(due, self.settings.retry_seconds)
                    either: set[asyncio.Future[Any]] = {stopping, woken}
                    await asyncio.wait(either, timeout=max(0.0, due), return_when="FIRST_COMPLETED")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._write_all(), self.settings.retry_seconds)
        finally:
            stopping.cancel()
            if self._engine is not None:
                await self._engine.dispose()
                self._engine = None

    async def _step(self) -> bool:
        """One round; whoever waits in `wait_until` looks again after it."""
        try:
            return await self._round()
        finally:
            async with self._progress:
                self._progress.notify_all()

    async def _round(self) -> bool:
        """Reload if asked, write a batch, prune if due. False on a failure."""
        retain = self._leading and self._retention_due_in() <= 0
        await self._delete_spooled()
        if not (self._adopt or self._reload or self._buffer or retain):
            return True
        try:
            if self._adopt:
                await self._adopt_spool()
            engine = self._engine_now()
            if self._reload:
                await self._load(engine)
            if self._buffer:
                await self._write(engine)
            if retain:
                await self._retain(engine)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self._failed(error)
            return False
        self._recovered()
        return True

    def _engine_now(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = self._open(self.settings.url(), self.settings.timeout_seconds)
        return self._engine

    async def _adopt_spool(self) -> None:
        """Put the units a previous leader left in the spool ahead of this term's."""
        if self._spool is None:
            self._adopt = False
            return
        units = await asyncio.to_thread(self._spool.read)
        known = self._unspool | {unit.name for unit in self._buffer}
        found = [unit for unit in units if unit.name not in known]
        unreadable = [unit.name for unit in found if not unit.records]
        found = [unit for unit in found if unit.records]
        self._unspool.update(unreadable)
        self._buffer.extendleft(reversed(found))
        self._records += sum(len(unit.records) for unit in found)
        self._adopt = False
        if found:
            log.info(
                "run history: %d record(s) in %d unit(s) adopted from the spool",
                sum(len(unit.records) for unit in found),
                len(found),
            )
        self._bound()

    async def _delete_spooled(self) -> None:
        """Delete the spool nodes of units written or dropped; kept for later on failure
        (a unit written again changes nothing)."""
        if self._spool is None or not self._unspool:
            return
        names = sorted(self._unspool)
        try:
            await asyncio.to_thread(self._spool.delete, names)
        except Exception as error:
            log.debug("spooled history units not deleted yet: %s", error)
            return
        self._unspool.difference_update(names)

    async def _load(self, engine: AsyncEngine) -> None:
        if not self._migrated:
            await migrate(engine)
            self._migrated = True
        # What waits — the units adopted from the spool above all — is written before
        # the summaries are read: a previous leader still writing the same units then
        # changes nothing after the read, and the summaries stay the database's own.
        while self._buffer:
            await self._write(engine)
        async with engine.connect() as connection:
            loaded = await load_summaries(connection, self.settings.recent_runs)
        self.summaries.load(loaded.totals, loaded.rows)
        self._reload = False
        self._tell(loaded.totals)
        log.info("run history loaded: %d job(s) with counters", len(loaded.totals))

    async def _write(self, engine: AsyncEngine) -> None:
        units: list[SpoolUnit] = []
        size = 0
        for unit in self._buffer:
            if units and size + len(unit.records) > self.settings.batch_size:
                break
            units.append(unit)
            size += len(unit.records)
        async with engine.begin() as connection:
            changed = await write_batch(connection, [r for unit in units for r in unit.records])
        for unit in units:
            self._buffer.popleft()
            self._unspool.add(unit.name)
        self._records -= size
        self.metrics.written.inc(size)
        self.metrics.buffered.set(self._records)
        for record in changed:
            if isinstance(record, JobRemoved):
                self.summaries.removed(record)
            elif isinstance(record, RunEnded):
                self.summaries.ended(record)
            elif isinstance(record, RunAbandoned):
                self.summaries.abandoned(record)
            elif isinstance(record, RunLaunched):
                self.summaries.launched(record)
        self._tell(
            dict.fromkeys(
                r.job_key if isinstance(r, (RunAbandoned, JobRemoved)) else r.place.job_key
                for r in changed
            )
        )

    def _tell(self, job_keys: Iterable[str]) -> None:
        if self._summary_changed is not None:
            for job_key in job_keys:
                self._summary_changed(job_key)

    async def _write_all(self) -> None:
        if self._engine is not None:
            while self._buffer:
                await self._write(self._engine)
        await self._delete_spooled()

    async def _retain(self, engine: AsyncEngine) -> None:
        settings = self.settings
        older_than = datetime.now(UTC) - timedelta(days=settings.retention_days)
        async with engine.begin() as connection:
            pruned = await apply_retention(
                connection, older_than=older_than, runs_per_job=settings.retention_runs_per_job
            )
        self.metrics.pruned.labels("runs").inc(pruned.runs)
        self.metrics.pruned.labels("transitions").inc(pruned.transitions)
        self._next_retention = asyncio.get_running_loop().time() + settings.retention_interval
        if pruned.runs or pruned.transitions:
            log.info(
                "run history retention: %d run(s), %d transition(s) deleted",
                pruned.runs,
                pruned.transitions,
            )

    def _retention_due_in(self) -> float:
        if not self._leading:
            return self.settings.retention_interval
        return self._next_retention - asyncio.get_running_loop().time()

    def _failed(self, error: Exception) -> None:
        problem = f"{type(error).__name__}: {error}".splitlines()[0][:300]
        if self._problem is None:
            log.warning(
                "run history database unavailable (%s); scheduling goes on, %d record(s) "
                "buffered (at most %d, then the oldest are dropped and counted)",
                problem,
                self._records,
                self.settings.buffer_size,
            )
        self._problem = problem
        self.metrics.up.set(0)

    def _recovered(self) -> None:
        self._used = True
        if self._problem is not None:
            log.warning(
                "run history database available again; %d record(s) were dropped meanwhile",
                self._dropped_in_outage,
            )
        self._problem = None
        self._dropped_in_outage = 0
        self.metrics.up.set(1)


class _Wake:
    """A wake-up call for the writer's task, waited for as a plain future (no task)."""

    def __init__(self) -> None:
        self._woken: asyncio.Future[None] | None = None

    def set(self) -> None:
        if self._woken is not None and not self._woken.done():
            self._woken.set_result(None)

    def cleared(self) -> asyncio.Future[None]:
        """A future done at the next `set`."""
        self._woken = asyncio.get_running_loop().create_future()
        return self._woken
