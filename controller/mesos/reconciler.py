"""Reconciliation with the master: the runs, the periodic one, and on-demand asks.

`Reconciler` executes the pure `reconciliation.ReconciliationRun`: a run starts from
every task recorded as running, asks the master about those not heard of yet (explicit
rounds, backing off between them), and ends with one implicit round. The engine starts
a run on every subscription (the first of a term gates launches: the jobs of tasks not
accounted for yet launch nothing) and the periodic loop on an interval; one run at a
time — a new subscription replaces a run in flight (keeping its gate), a periodic one
never does. The status pipeline reports each applied update (`observe`) and each task
no longer recorded (`forget`); when the run settles the launch cycle is woken through
`on_settled`. `ask` reconciles a few tasks right away (an ACCEPT whose outcome is
unknown).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from enum import StrEnum

from controller.mesos.background import Background
from controller.mesos.calls import MesosCallError, MesosCalls, refusal_level
from controller.mesos.reconciliation import ReconciliationRun, backoff
from controller.mesos.settings import FrameworkSettings
from controller.metrics import FrameworkMetrics
from controller.state import StateStore

log = logging.getLogger(__name__)


class ReconcileTrigger(StrEnum):
    """What started a run (the `trigger` label of `cloudjob_reconciliation_runs_total`)."""

    SUBSCRIBED = "subscribed"
    PERIODIC = "periodic"
    REQUESTED = "requested"
    """Asked for through an app's annotation or the API (an explicit or implicit ask)."""


class Reconciler:
    def __init__(
        self,
        *,
        store: StateStore,
        mesos: MesosCalls,
        settings: FrameworkSettings,
        metrics: FrameworkMetrics,
        background: Background,
        on_settled: Callable[[], None],
    ) -> None:
        self._store = store
        self._mesos = mesos
        self._settings = settings
        self._metrics = metrics
        self._background = background
        self._on_settled = on_settled
        self._run: ReconciliationRun | None = None
        self._task: asyncio.Task[None] | None = None
        self._answered = asyncio.Event()

    @property
    def reconciling(self) -> bool:
        """A run is open (started and not settled)."""
        return self._run is not None

    def unsettled_jobs(self) -> set[str]:
        """Jobs whose launches wait for the open run (none unless it gates launches)."""
        return self._run.unsettled_jobs() if self._run is not None else set()

    def start(self, trigger: ReconcileTrigger, *, gate: bool) -> None:
        current, task = self._run, self._task
        if task is not None and not task.done():
            if trigger is ReconcileTrigger.PERIODIC:
                return
            gate = gate or (current is not None and current.gate_launches)
            task.cancel()
        running = {t.task_id: t.agent_id or None for t in self._store.running().values()}
        run = ReconciliationRun.start(running, gate_launches=gate)
        self._run = run
        self._answered = asyncio.Event()
        self._metrics.reconciliations.labels(trigger.value).inc()
        self._task = self._background.spawn(self._reconcile(run), f"reconciliation ({trigger})")

    def observe(self, task_id: str) -> None:
        """An update about the task was applied: it answers for the task."""
        if self._run is not None:
            self._run.observe(task_id)
            if self._run.settled:
                self._answered.set()

    def forget(self, task_id: str) -> None:
        """The task is no longer recorded: stop asking about it."""
        if self._run is not None:
            self._run.forget(task_id)
            if self._run.settled:
                self._answered.set()

    def ask(self, tasks: list[tuple[str, str | None]]) -> None:
        """Ask about a few tasks right away, outside any run (no tasks: an implicit
        reconciliation, the master reports every task it knows)."""

        async def ask() -> None:
            try:
                await self._mesos.reconcile(tasks)
            except MesosCallError as error:
                log.log(refusal_level(error), "reconciling %d tasks failed: %s", len(tasks), error)

        self._background.spawn(ask(), "reconcile tasks")

    async def periodic(self, subscribed: Callable[[], bool]) -> None:
        """Start a run every `reconcile_interval_seconds` while subscribed."""
        while True:
            await asyncio.sleep(self._settings.reconcile_interval_seconds)
            if subscribed():
                self.start(ReconcileTrigger.PERIODIC, gate=False)

    async def _reconcile(self, run: ReconciliationRun) -> None:
        settings = self._settings
        started = time.monotonic()
        attempt = 0
        try:
            while not run.settled:
                request = run.next_round()
                if not request:
                    break
                await self._mesos.reconcile(request)
                self._metrics.reconciliation_rounds.inc()
                wait = backoff(
                    attempt,
                    base=settings.reconcile_backoff_seconds,
                    cap=settings.reconcile_backoff_max_seconds,
                )
                try:
                    await asyncio.wait_for(self._answered.wait(), wait)
                except TimeoutError:
                    log.info(
                        "reconciliation: %d task(s) not answered yet (round %d)",
                        len(run.remaining),
                        run.rounds,
                    )
                attempt += 1
            await self._mesos.reconcile([])
            self._metrics.reconciliation_seconds.observe(time.monotonic() - started)
            log.info("reconciliation settled after %d round(s)", run.rounds)
        except MesosCallError as error:
            log.log(
                refusal_level(error),
                "reconciliation interrupted (it restarts on resubscription): %s",
                error,
            )
        finally:
            if self._run is run and run.settled:
                self._run = None
                self._on_settled()
