"""Watching the campaign's stack: `Monitor` samples, in a thread, whether the stack is
whole and whom ZooKeeper names leader (the trial dates each fault's recovery from it,
and the zombie check compares the master's subscriptions with it); `wait_until` is the
trial's time-boxed wait. Used by `devcluster.campaign.trial`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from devcluster.campaign.rig import Rig


def wait_until(check: Callable[[], bool], timeout: float, what: str, every: float = 0.3) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f}s for {what}")
        time.sleep(every)


@dataclass
class Monitor:
    """Samples whether the system is whole, a few times a second, in a thread."""

    rig: Rig
    samples: list[tuple[float, bool, str | None]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                whole, leader = self.rig.observe()
            except Exception:  # a fault mid-way makes the stack not whole, not the trial fail
                whole, leader = False, None
            self.samples.append((time.time(), whole, leader))
            self._stop.wait(0.25)

    def recovered(self, after: float) -> float | None:
        return next((t for t, whole, _ in list(self.samples) if t >= after and whole), None)

    def leaders(self) -> list[tuple[float, str | None]]:
        return [(t, leader) for t, _, leader in list(self.samples)]

    def stop(self) -> None:
        self._stop.set()
