"""The single applies of the scale benchmark (`bench/scale.py`, which starts one per run):
a thread that creates the probe jobs during the measured window, one create call each
at its planned moment, as `kubectl apply` of one manifest would, and stamps when each
call returned. When each is first seen Scheduled is the benchmark's one watch's
business (`scale_probes.ScheduledWatch`), not this one's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from devcluster.kube.clients import KubeClient
from devcluster.kube.errors import ApiError


class SingleApplies(threading.Thread):
    """Creates each job at its moment (at once when the moment has passed: a slow create
    delays the next one rather than dropping it) until all are made or `stop()`."""

    def __init__(self, client: KubeClient, plan: Sequence[tuple[float, dict[str, Any]]]) -> None:
        super().__init__(name="single-applies", daemon=True)
        self._client = client
        self._plan = list(plan)
        self.created: dict[str, float] = {}
        self.refused: list[str] = []
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        for at, job in self._plan:
            if self._stop_event.wait(max(0.0, at - time.time())):
                return
            name = job["metadata"]["name"]
            try:
                self._client.create(job)
            except (ApiError, OSError) as error:
                self.refused.append(f"{name}: {error}")
                continue
            self.created[name] = time.time()
