"""Watching the campaign's stack: `Monitor` samples, in a thread, whether the stack is
whole and whom ZooKeeper names leader (the trial dates each fault's recovery from it,
and the zombie check compares the master's subscriptions with it); `outages` finds
the spans the stack was not whole in, fault or not; `wait_until` is the trial's
time-boxed wait. Used by `devcluster.campaign.trial`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from devcluster.campaign.rig import Rig

Sample = tuple[float, bool, str | None]
"""(time, whether the stack was whole, the replica ZooKeeper named leader)."""


def outages(samples: Sequence[Sample]) -> list[tuple[float, float]]:
    """Spans in which the stack was not whole or its leader changed, whatever caused it
    (a fault, or the machine: on a loaded one a ZooKeeper ping that times out suspends
    the leader): from the last whole sample before to the first whole sample after (or
    the last sample). Pure."""
    spans: list[tuple[float, float]] = []
    last_whole: Sample | None = None
    opened: float | None = None
    for sample in samples:
        moment, is_whole, leader = sample
        changed = last_whole is not None and leader != last_whole[2]
        if last_whole is not None and opened is None and (changed or not is_whole):
            opened = last_whole[0]
        if is_whole:
            if opened is not None:
                spans.append((opened, moment))
                opened = None
            last_whole = sample
    if opened is not None and samples:
        spans.append((opened, samples[-1][0]))
    return spans


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
    samples: list[Sample] = field(default_factory=list)
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
