"""The running executor: pymesos driver, asyncio loop thread, status sender, supervisor.

Threads and who owns what:

- pymesos's IO thread calls `MesosCallbacks`; every callback only decodes what it
  was given and hands it to the loop with `call_soon_threadsafe` — it never
  blocks, so the driver keeps reading its event stream (ACKNOWLEDGED, KILL, ...).
- The loop thread runs the `TaskSupervisor`: task coroutines, daemon clocks, job
  processes.
- The status sender thread makes the driver's blocking HTTP calls.
- The main thread starts everything and waits until the executor is done.

How it ends:

- idle (no task) for the idle timeout (`CLOUDJOB_EXECUTOR_IDLE_TIMEOUT`): stop
  the driver and exit 0; the framework sees the executor end with status 0, which
  costs no task anything.
- framework message `STOP`, or SIGTERM: kill every task (TASK_KILLED each), wait
  (bounded) until the agent acknowledged every update, stop the driver; exit 0.
- agent SHUTDOWN, or the agent connection closes without checkpointing: kill
  every job within half the grace period; exit 0. (On SHUTDOWN, and on a lost
  connection when MESOS_CHECKPOINT is unset, pymesos also aborts the driver and
  SIGKILLs the process group after the grace period; with MESOS_CHECKPOINT=0,
  which Mesos sets without checkpointing, pymesos would retry for a day.)
- with checkpointing (MESOS_CHECKPOINT=1), a lost agent connection is retried by
  pymesos; if the agent does not come back within the recovery timeout, shut
  down as above.
- the driver's IO thread dies (pymesos interrupts the main thread): kill every
  job; exit 1.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any

from pymesos import Executor

from controller.executor.environment import ExecutorEnvironment
from controller.executor.messages import MessageError, Stop, Trigger, decode_base64
from controller.executor.reporting import AcknowledgingDriver, StatusSender, TaskUpdate
from controller.executor.supervising import TASK_ERROR, TaskSupervisor

logger = logging.getLogger(__name__)
ACKNOWLEDGE_WAIT = 10.0
STOP_WAIT = 60.0


class ExecutorService:
    def __init__(self, environment: ExecutorEnvironment) -> None:
        self._environment = environment
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(
            target=self._run_loop, name="executor-loop", daemon=True
        )
        self._driver = AcknowledgingDriver(MesosCallbacks(self))
        self._sender = StatusSender(self._driver)
        self._supervisor = TaskSupervisor(
            environment=environment, report=self._sender.send, on_idle=self._arm_idle
        )
        self._done = threading.Event()
        self._stopping = False
        self._recovery: asyncio.TimerHandle | None = None
        self._idle: asyncio.TimerHandle | None = None

    def run(self) -> int:
        """Serve until stopped; the process exit status."""
        self._loop_thread.start()
        self._sender.start()
        signal.signal(signal.SIGTERM, self._on_sigterm)
        self._call(self._arm_idle)
        exit_status = 0
        try:
            self._driver.start()
            while not self._done.wait(0.5):
                pass
        except BaseException as error:  # pymesos re-raises its IO thread's failure here
            logger.error("executor driver failed (%r); killing every job", error)
            exit_status = 1
            self._submit(self._shutdown(grace=self._environment.grace_seconds / 2, drain=False))
            self._done.wait(STOP_WAIT)
        finally:
            self._driver.stop()
            self._driver.join()
            self._sender.close()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop_thread.join(timeout=5)
        logger.info("executor exits with status %d", exit_status)
        return exit_status

    # Called on pymesos's IO thread (through MesosCallbacks) or a signal handler.

    def launch(self, task: dict[str, Any]) -> None:
        self._call(self._launch, task)

    def refuse(self, task_id: str, reason: str) -> None:
        self._sender.send(TaskUpdate(task_id=task_id, state=TASK_ERROR, message=reason))

    def kill(self, task_id: str) -> None:
        self._call(self._supervisor.kill, task_id)

    def message(self, data: str) -> None:
        try:
            message = decode_base64(data)
        except MessageError as error:
            logger.error("ignoring a framework message: %s", error)
            return
        if isinstance(message, Stop):
            logger.info("framework asked this executor to stop")
            self._submit(self._shutdown(grace=None, drain=True))
        elif isinstance(message, Trigger):
            self._call(self._supervisor.trigger, message)

    def connected(self) -> None:
        self._call(self._cancel_recovery)

    def disconnected(self) -> None:
        if self._environment.checkpoint:
            self._call(self._start_recovery)
        else:
            logger.warning("lost the agent, and the framework does not checkpoint; shutting down")
            self.agent_shutdown()

    def agent_shutdown(self) -> None:
        self._submit(self._shutdown(grace=self._environment.grace_seconds / 2, drain=False))

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        logger.info("SIGTERM: stopping")
        self._submit(self._shutdown(grace=self._environment.grace_seconds / 2, drain=True))

    # On the loop thread.

    async def _shutdown(self, *, grace: float | None, drain: bool) -> None:
        if self._stopping:
            return
        self._stopping = True
        await self._supervisor.stop(grace)
        if drain:
            await self._loop.run_in_executor(None, self._drain)
        self._done.set()

    def _drain(self) -> None:
        sent = self._sender.wait_sent(ACKNOWLEDGE_WAIT)
        if not (sent and self._driver.wait_acknowledged(ACKNOWLEDGE_WAIT)):
            logger.warning(
                "stopping with %d status update(s) the agent has not acknowledged",
                self._driver.unacknowledged(),
            )

    def _launch(self, task: dict[str, Any]) -> None:
        self._cancel_idle()
        self._supervisor.launch(task)
        if not self._supervisor.task_ids:
            self._arm_idle()  # the launch was refused: still idle

    def _arm_idle(self) -> None:
        self._cancel_idle()
        if self._environment.idle_seconds > 0 and not self._stopping:
            self._idle = self._loop.call_later(self._environment.idle_seconds, self._idle_expired)

    def _cancel_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _idle_expired(self) -> None:
        self._idle = None
        if self._supervisor.retire_if_idle():
            logger.info("no task for %.0f s; the executor exits", self._environment.idle_seconds)
            self._loop.create_task(self._shutdown(grace=None, drain=True))

    def _start_recovery(self) -> None:
        if self._recovery is None:
            logger.warning(
                "lost the agent; waiting %.0f s for it to come back",
                self._environment.recovery_seconds,
            )
            self._recovery = self._loop.call_later(
                self._environment.recovery_seconds, self._recovery_expired
            )

    def _cancel_recovery(self) -> None:
        if self._recovery is not None:
            self._recovery.cancel()
            self._recovery = None

    def _recovery_expired(self) -> None:
        logger.error("the agent did not come back within the recovery timeout; shutting down")
        self._loop.create_task(
            self._shutdown(grace=self._environment.grace_seconds / 2, drain=False)
        )

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()
        self._loop.close()

    def _call(self, function: Callable[..., Any], *args: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(function, *args)
        except RuntimeError:
            logger.info("executor loop already closed; dropping %s", function.__name__)

    def _submit(self, coroutine: Coroutine[Any, Any, None]) -> None:
        try:
            asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        except RuntimeError:
            coroutine.close()


class MesosCallbacks(Executor):  # type: ignore[misc]
    """pymesos's Executor interface; each callback hands off and returns at once."""

    def __init__(self, service: ExecutorService) -> None:
        self._service = service

    def registered(
        self,
        driver: Any,
        executor_info: dict[str, Any],
        framework_info: dict[str, Any],
        agent_info: dict[str, Any],
    ) -> None:
        logger.info(
            "registered as executor %s of framework %s on agent %s",
            executor_info.get("executor_id", {}).get("value"),
            framework_info.get("id", {}).get("value"),
            agent_info.get("id", {}).get("value"),
        )
        self._service.connected()

    def reregistered(self, driver: Any, agent_info: dict[str, Any]) -> None:
        logger.info("re-registered with agent %s", agent_info.get("id", {}).get("value"))
        self._service.connected()

    def disconnected(self, driver: Any) -> None:
        logger.warning("disconnected from the agent")
        self._service.disconnected()

    def launchTask(self, driver: Any, task: dict[str, Any]) -> None:
        self._service.launch(task)

    def launchTaskGroup(self, driver: Any, tasks: list[dict[str, Any]]) -> None:
        for task in tasks:
            self._service.refuse(
                task["task_id"]["value"],
                "task groups are not supported by this executor; launch tasks one by one",
            )

    def killTask(self, driver: Any, task_id: dict[str, Any]) -> None:
        self._service.kill(task_id["value"])

    def frameworkMessage(self, driver: Any, message: str) -> None:
        self._service.message(message)

    def shutdown(self, driver: Any) -> None:
        logger.info("the agent shuts this executor down")
        self._service.agent_shutdown()

    def error(self, driver: Any, message: str) -> None:
        logger.error("executor error from the agent: %s", message)
