"""The status sender: one ordered queue, failed sends retried with the same uuid."""

from __future__ import annotations

import base64
import threading
from typing import Any

import pytest

from controller.executor.reporting import StatusSender, TaskUpdate

pytestmark = pytest.mark.unit


class FlakyDriver:
    """Stands in for the executor driver: the first `failures` sends fail."""

    def __init__(self, failures: int, aborted: bool = False) -> None:
        self.executor_id = {"value": "app@-@agent"}
        self.failures = failures
        self.aborted = aborted
        self.attempts: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def sendStatusUpdate(self, status: dict[str, Any]) -> None:
        with self.lock:
            self.attempts.append(dict(status))
            if len(self.attempts) <= self.failures:
                raise RuntimeError("Not connected yet")


def test_failed_sends_are_retried_in_order_with_the_same_uuid() -> None:
    driver = FlakyDriver(failures=2)
    sender = StatusSender(driver)  # type: ignore[arg-type]
    sender.start()
    sender.send(TaskUpdate("t1", "TASK_RUNNING"))
    sender.send(TaskUpdate("t1", "TASK_RUNNING", message="COMPLETE", data=b"{}"))
    assert sender.wait_sent(30)
    sender.close()
    states = [(a["task_id"]["value"], a["state"], a.get("message")) for a in driver.attempts]
    assert states == [("t1", "TASK_RUNNING", None)] * 3 + [("t1", "TASK_RUNNING", "COMPLETE")]
    assert len({a["uuid"] for a in driver.attempts[:3]}) == 1
    assert driver.attempts[3]["uuid"] != driver.attempts[0]["uuid"]
    assert all(len(base64.b64decode(a["uuid"])) == 16 for a in driver.attempts)
    assert driver.attempts[3]["data"] == base64.b64encode(b"{}").decode()
    assert driver.attempts[0]["executor_id"] == {"value": "app@-@agent"}


def test_updates_are_dropped_once_the_driver_is_stopped() -> None:
    driver = FlakyDriver(failures=10, aborted=True)
    sender = StatusSender(driver)  # type: ignore[arg-type]
    sender.start()
    sender.send(TaskUpdate("t1", "TASK_KILLED"))
    assert sender.wait_sent(30)
    sender.close()
    assert len(driver.attempts) == 1
