"""Task status updates, sent only through pymesos's executor driver, kept until acknowledged.

`AcknowledgingDriver` is pymesos's `MesosExecutorDriver` with one gap closed:
pymesos resends `self.updates` when it re-subscribes (after an agent restart)
and drops an entry when the agent's ACKNOWLEDGED arrives, but its
`sendStatusUpdate` never records the update there. Here every update gets its
uuid and is recorded before it is sent, so an update the agent never checkpointed
goes out again with the next SUBSCRIBE, and `wait_acknowledged` can tell when the
agent has every update (a clean stop waits for that).

`StatusSender` sends from its own thread, in order, so neither the driver's IO
thread nor the asyncio loop ever blocks on HTTP; a send that fails (agent
restarting, connection reset) is retried with the same uuid until it goes
through or the driver is stopped. Used by the executor service.
"""

from __future__ import annotations

import base64
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from pymesos import MesosExecutorDriver

from controller.executor.messages import BEGIN, COMPLETE

logger = logging.getLogger(__name__)
RETRY_FIRST = 0.2
RETRY_MAX = 5.0


@dataclass(frozen=True)
class TaskUpdate:
    task_id: str
    state: str
    message: str = ""
    data: bytes | None = None


class AcknowledgingDriver(MesosExecutorDriver):  # type: ignore[misc]
    def __init__(self, executor: Any) -> None:
        super().__init__(executor, use_addict=False)
        self._acknowledged = threading.Condition()

    def sendStatusUpdate(self, status: dict[str, Any]) -> None:
        if "uuid" not in status:
            status["uuid"] = base64.b64encode(uuid.uuid4().bytes).decode()
        key = uuid.UUID(bytes=base64.b64decode(status["uuid"]))
        with self._acknowledged:
            self.updates[key] = {"status": status}
        super().sendStatusUpdate(status)

    def on_acknowledged(self, event: dict[str, Any]) -> None:
        super().on_acknowledged(event)
        with self._acknowledged:
            self._acknowledged.notify_all()

    def wait_acknowledged(self, timeout: float) -> bool:
        """Block until the agent acknowledged every update sent so far."""
        with self._acknowledged:
            return self._acknowledged.wait_for(lambda: not self.updates, timeout)

    def unacknowledged(self) -> int:
        with self._acknowledged:
            return len(self.updates)


class StatusSender:
    def __init__(self, driver: AcknowledgingDriver) -> None:
        self._driver = driver
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="status-sender", daemon=True)
        self._drained = threading.Condition()
        self._pending = 0

    def start(self) -> None:
        self._thread.start()

    def send(self, update: TaskUpdate) -> None:
        """Queue an update; never blocks. Safe from any thread."""
        status: dict[str, Any] = {
            "task_id": {"value": update.task_id},
            "state": update.state,
            "executor_id": self._driver.executor_id,
            "uuid": base64.b64encode(uuid.uuid4().bytes).decode(),
        }
        if update.message:
            status["message"] = update.message
        if update.data is not None:
            status["data"] = base64.b64encode(update.data).decode()
        with self._drained:
            self._pending += 1
        # Daemon run framing is frequent; task state changes are what an operator looks for.
        level = logging.DEBUG if update.message in (BEGIN, COMPLETE) else logging.INFO
        logger.log(level, "task %s → %s %s", update.task_id, update.state, update.message)
        self._queue.put(status)

    def wait_sent(self, timeout: float) -> bool:
        """Block until every queued update was handed to the agent (or dropped)."""
        with self._drained:
            return self._drained.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=RETRY_MAX + 1)

    def _run(self) -> None:
        while (status := self._queue.get()) is not None:
            self._deliver(status)
            with self._drained:
                self._pending -= 1
                self._drained.notify_all()

    def _deliver(self, status: dict[str, Any]) -> None:
        delay = RETRY_FIRST
        while True:
            try:
                self._driver.sendStatusUpdate(status)
                return
            except Exception as error:  # pymesos raises bare RuntimeError/OSError
                if self._driver.aborted:
                    logger.error(
                        "dropping %s of task %s: the driver is stopped (%s)",
                        status["state"],
                        status["task_id"]["value"],
                        error,
                    )
                    return
                logger.warning(
                    "sending %s of task %s failed (%s); retrying in %.1f s",
                    status["state"],
                    status["task_id"]["value"],
                    error,
                    delay,
                )
            time.sleep(delay)
            delay = min(RETRY_MAX, delay * 2)
