"""Carries out the roll-out of app versions: SHUTDOWN old idle executors, replace daemons.

The engine wakes the `Roller` after anything that may move the roll-out on (`changed`:
an app edited, a task ended or started running, offers naming executors) and tells it
when an executor ended (`executor_ended`). After each subscription it has the master's
list of the framework's executors put into the registry (`learn`), so that old idle
executors an earlier leader left on agents that offer nothing are retired too. Each
step plans under the state lock (`rollout.plan_rollout` on the store's view, the
executor registry and the kill book), kills the daemon tasks to move through the kill
book (`KillBook.replace`: their shards are launched again, on executors of the new
version) and sends SHUTDOWN to the executors to retire. A SHUTDOWN is sent once per
executor: the registry forgets it and the offer pool counts its resources as gone;
offers made before it ended may name it again, so the ones sent are remembered until
Mesos reports the executor gone.
Asyncio-loop only; one per leadership term.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from controller.mesos.calls import MesosCallError, MesosCalls
from controller.mesos.executors import ExecutorRegistry
from controller.mesos.kills import KillBook
from controller.mesos.reconciler import Reconciler
from controller.mesos.rollout import outdated, plan_rollout
from controller.mesos.settings import FrameworkSettings
from controller.mesos.state_lock import StateLock
from controller.mesos.tasks import ExecutorId, app_version
from controller.mesos.woken import run_when_woken
from controller.state import StateStore

log = logging.getLogger(__name__)


class Roller:
    def __init__(
        self,
        *,
        store: StateStore,
        mesos: MesosCalls,
        lock: StateLock,
        settings: FrameworkSettings,
        executors: ExecutorRegistry,
        kills: KillBook,
        reconciler: Reconciler,
        executor_gone: Callable[[ExecutorId], None],
        subscribed: Callable[[], bool],
    ) -> None:
        self._store = store
        self._mesos = mesos
        self._lock = lock
        self._settings = settings
        self._executors = executors
        self._kills = kills
        self._reconciler = reconciler
        self._executor_gone = executor_gone
        self._subscribed = subscribed
        self._wake = asyncio.Event()
        self._shut_down: set[str] = set()

    def changed(self) -> None:
        self._wake.set()

    def executor_ended(self, executor: str) -> None:
        self._shut_down.discard(executor)

    async def learn(self, master: str, framework_id: str) -> None:
        try:
            listed = await self._mesos.executors(master, framework_id)
        except MesosCallError as error:
            log.info("could not list the executors on %s; offers will name them: %s", master, error)
            return
        for executor, _ in listed:
            self._executors.listed(executor)
        self.changed()

    async def run(self) -> None:
        await run_when_woken(
            self._wake,
            self.step,
            what="app roll-out step",
            delay=lambda: self._settings.launch_batch_seconds,
        )

    async def step(self) -> None:
        if not self._subscribed():
            return
        store = self._store
        options = self._settings.executor_options
        current = {key: app_version(app, options) for key, app in store.apps().items()}
        if not any(outdated(v, current) for v in self._executors.versions()):
            # Every task runs in a known executor, so nothing runs on an old version
            # either: skip the plan, which reads every running task and job.
            return
        async with self._lock.last():
            plan = plan_rollout(
                executors=self._executors.known(),
                running=store.running().values(),
                jobs=store.jobs(),
                current=current,
                replacing=self._kills.replacing(),
                unsettled_jobs=self._reconciler.unsettled_jobs(),
                batch=self._settings.daemon_rollout_batch,
            )
            for task in plan.replace:
                log.info(
                    "moving daemon task %s off executor %s of an outdated app version",
                    task.task_id,
                    task.executor_id,
                )
                await self._kills.replace(task.task_id, task.agent_id)
        for executor in plan.retire:
            if executor.value in self._shut_down:
                continue
            try:
                await self._mesos.shutdown(executor.agent_id, executor.value)
            except MesosCallError as error:
                log.warning("SHUTDOWN of executor %s failed: %s", executor, error)
                continue
            log.info("executor %s of an outdated app version has no task: shut down", executor)
            self._shut_down.add(executor.value)
            self._executors.forget(executor.value)
            self._executor_gone(executor)
