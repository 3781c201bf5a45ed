"""What the scale benchmark (`bench/scale.py`) watches while it runs: the CloudJobs on
the API server (when each is first seen Scheduled) and the emulated Mesos master's
`/state` (when each task was staged from an ACCEPT and when it was reported running).
Both are threads stopped through `stop()`; every request is time-boxed.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.parse
import urllib.request
from typing import Any

from scale_measures import scheduled_at
from scale_stack import EmulatedMesos

from controller.resources import API_VERSION
from devcluster.kube import ControlPlane

NAMESPACE = "default"
GROUP_PATH = f"/apis/{API_VERSION}/namespaces/{NAMESPACE}/cloudjobs"


class ScheduledWatch(threading.Thread):
    """Watches the CloudJobs and stamps each the first time it is seen Scheduled=True."""

    def __init__(self, api: ControlPlane) -> None:
        super().__init__(name="scheduled-watch", daemon=True)
        self._url = api.url
        self._token = api.admin_token
        self._ssl = ssl.create_default_context(cafile=str(api.ca_cert))
        self.seen: dict[str, float] = {}
        self.errors = 0
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    def _get(self, query: dict[str, str], timeout: float) -> Any:
        request = urllib.request.Request(
            f"{self._url}{GROUP_PATH}?{urllib.parse.urlencode(query)}",
            headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json"},
        )
        return urllib.request.urlopen(request, timeout=timeout, context=self._ssl)

    def _note(self, job: dict[str, Any]) -> None:
        name = job["metadata"]["name"]
        if name not in self.seen and scheduled_at(job):
            self.seen[name] = time.time()

    def _list(self) -> str:
        with self._get({}, 60) as reply:
            listed = json.load(reply)
        for job in listed["items"]:
            self._note(job)
        return str(listed["metadata"]["resourceVersion"])

    def run(self) -> None:
        version: str | None = None
        while not self._stop_event.is_set():
            try:
                if version is None:
                    version = self._list()
                query = {"watch": "1", "resourceVersion": version, "timeoutSeconds": "5"}
                with self._get(query, 30) as stream:
                    for raw in stream:
                        event = json.loads(raw)
                        if event["type"] == "ERROR":
                            version = None  # expired: list again
                            break
                        job = event["object"]
                        version = job["metadata"]["resourceVersion"]
                        if event["type"] in ("ADDED", "MODIFIED"):
                            self._note(job)
                        if self._stop_event.is_set():
                            return
            except (OSError, ValueError, KeyError):
                self.errors += 1
                self._stop_event.wait(0.5)


class MasterSampler(threading.Thread):
    """Polls the master's /state for each task's TASK_STAGING (taken from an ACCEPT) and
    TASK_RUNNING stamps. The master keeps the last 1000 finished tasks per framework, so
    the poll interval is chosen to see every task at the expected launch rate."""

    def __init__(self, mesos: EmulatedMesos, interval: float) -> None:
        super().__init__(name="master-sampler", daemon=True)
        self._mesos = mesos
        self.interval = interval
        self.staging: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.errors = 0
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    def sample(self) -> None:
        try:
            state = self._mesos.state()
        except (OSError, ValueError):
            self.errors += 1
            return
        for framework in state.get("frameworks", []):
            for task in [*framework.get("tasks", []), *framework.get("completed_tasks", [])]:
                for status in task.get("statuses", []):
                    stamps = {"TASK_STAGING": self.staging, "TASK_RUNNING": self.running}.get(
                        status.get("state")
                    )
                    if stamps is not None and status.get("timestamp") is not None:
                        stamps.setdefault(task["id"], float(status["timestamp"]))

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.sample()
