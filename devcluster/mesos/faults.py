"""Fault switches that tests flip on the emulated cluster.

They outlive master restarts, so they live outside the master: how UPDATE
events reach schedulers (delayed, duplicated, reordered), which task
launches get lost (accepted with 202 but never performed) and whether the
agents' processes may start (held: a slow container launch). Used by the
master and the agents' spawner, and set through LocalMesos.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

DROP_AT_MASTER = "master"
DROP_AT_AGENT = "agent"


@dataclass
class LaunchDrop:
    task_id_prefix: str
    where: str


def _open_gate() -> threading.Event:
    gate = threading.Event()
    gate.set()
    return gate


@dataclass
class Faults:
    update_delay: float = 0.0
    duplicate_updates: bool = False
    reorder_updates: bool = False
    # How long a held-back update waits for a later one to overtake it.
    reorder_window: float = 0.5
    # Non-zero: scheduler streams cut their bytes into chunks of this size.
    stream_chunk_size: int = 0
    launch_drops: list[LaunchDrop] = field(default_factory=list)
    # Cleared: processes wait to start until it is set (waited on by spawning threads).
    process_starts: threading.Event = field(default_factory=_open_gate)

    def take_launch_drop(self, task_id: str) -> str | None:
        """Where the launch of `task_id` is lost (consuming the rule), or None."""
        for index, rule in enumerate(self.launch_drops):
            if task_id.startswith(rule.task_id_prefix):
                del self.launch_drops[index]
                return rule.where
        return None
