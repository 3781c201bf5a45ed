"""Fixtures for the Local Mesos conformance suite.

`make_cluster` starts an emulated cluster with short timeouts; `make_framework`
subscribes an unmodified pymesos MesosSchedulerDriver whose scheduler records
every callback, so tests wait on conditions instead of sleeping. `raw_call`
posts a scheduler call over plain HTTP with the framework's stream id, for what
pymesos cannot send (e.g. RECONCILE with an agent id).
"""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pymesos import MesosSchedulerDriver, Scheduler

from devcluster.mesos import AgentSpec, LocalMesos
from tests.waiting import wait_for

EXECUTOR_APP = Path(__file__).with_name("executor_app.py")
FAST = {
    "heartbeat_interval": 0.5,
    "offer_refresh": 0.1,
    "executor_registration_timeout": 10.0,
    "executor_shutdown_grace_period": 1.0,
    "agent_ping_timeout": 0.2,
    "max_agent_ping_timeouts": 3,
    "status_update_retry": 0.5,
    "status_update_retry_max": 2.0,
    "command_kill_grace_period": 1.0,
}
WAIT = 30.0
SUBSCRIBE_BODY = json.dumps(
    {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "root", "name": "raw"}}}
).encode()

Json = dict[str, Any]


def scalar(name: str, amount: float) -> Json:
    return {"name": name, "type": "SCALAR", "scalar": {"value": amount}}


def small(cpus: float = 0.1, mem: float = 32.0) -> list[Json]:
    return [scalar("cpus", cpus), scalar("mem", mem)]


def command_task(task_id: str, agent_id: str, command: str, **extra: Any) -> Json:
    task = {
        "task_id": {"value": task_id},
        "agent_id": {"value": agent_id},
        "name": task_id,
        "resources": small(),
        "command": {"value": command},
    }
    task.update(extra)
    return task


def executor_info(executor_id: str = "ex1", **extra: Any) -> Json:
    info = {
        "executor_id": {"value": executor_id},
        "command": {"value": f"{sys.executable} {EXECUTOR_APP}"},
        "resources": small(),
    }
    info.update(extra)
    return info


def executor_task(task_id: str, agent_id: str, spec: Json, executor: Json | None = None) -> Json:
    return {
        "task_id": {"value": task_id},
        "agent_id": {"value": agent_id},
        "name": task_id,
        "resources": small(),
        "executor": executor or executor_info(),
        "data": base64.b64encode(json.dumps(spec).encode()).decode(),
    }


@dataclass
class Recorder(Scheduler):  # type: ignore[misc]
    """A pymesos Scheduler that records callbacks; it never raises on the driver thread."""

    auto_ack: bool = True
    events: list[tuple[str, Any]] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def _add(self, kind: str, payload: Any = None) -> None:
        with self.cond:
            self.events.append((kind, payload))
            self.cond.notify_all()

    def registered(self, driver: Any, framework_id: Any, master_info: Any) -> None:
        self._add("registered", framework_id["value"])

    def reregistered(self, driver: Any, master_info: Any) -> None:
        self._add("reregistered", master_info)

    def disconnected(self, driver: Any) -> None:
        self._add("disconnected")

    def resourceOffers(self, driver: Any, offers: Any) -> None:
        for offer in offers:
            self._add("offer", offer)

    def offerRescinded(self, driver: Any, offer_id: Any) -> None:
        self._add("rescind", offer_id["value"])

    def statusUpdate(self, driver: Any, status: Any) -> None:
        self._add("update", status)
        if self.auto_ack and "uuid" in status:
            try:
                driver.acknowledgeStatusUpdate(status)
            except Exception as exc:  # the driver thread must never raise
                self._add("ack_failed", repr(exc))

    def frameworkMessage(self, driver: Any, executor_id: Any, agent_id: Any, data: Any) -> None:
        self._add("message", {"executor_id": executor_id, "agent_id": agent_id, "data": data})

    def slaveLost(self, driver: Any, agent_id: Any) -> None:
        self._add("agent_lost", agent_id["value"])

    def executorLost(self, driver: Any, executor_id: Any, agent_id: Any, status: Any) -> None:
        self._add("executor_lost", {"executor_id": executor_id["value"], "status": status})

    def error(self, driver: Any, message: Any) -> None:
        # As the docs advise, a scheduler aborts on ERROR; otherwise pymesos would
        # resubscribe at once (and, after "Framework failed over", fail over back).
        self._add("error", message)
        driver.stop(failover=True)

    def processHeartBeat(self, driver: Any) -> None:
        self._add("heartbeat")


class Framework:
    """A running pymesos scheduler driver plus its recorded events."""

    def __init__(
        self, cluster: LocalMesos, info: Json, master: str | None = None, auto_ack: bool = True
    ) -> None:
        self.cluster = cluster
        self.info = info
        self.recorder = Recorder(auto_ack=auto_ack)
        self.driver = MesosSchedulerDriver(
            self.recorder,
            info,
            master or cluster.master_address,
            use_addict=False,
            implicit_acknowledgements=False,
            failover=True,
        )
        self._seen = 0

    # ------------------------------------------------------------- waiting

    def wait(self, predicate: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
        deadline = time.monotonic() + timeout
        with self.recorder.cond:
            while True:
                result = predicate()
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    kinds = [kind for kind, _ in self.recorder.events]
                    raise AssertionError(f"timed out waiting for {what}; events: {kinds[-40:]}")
                self.recorder.cond.wait(min(left, 0.2))

    def events(self, kind: str) -> list[Any]:
        return [payload for k, payload in list(self.recorder.events) if k == kind]

    def updates(self, task_id: str | None = None) -> list[Json]:
        return [
            u for u in self.events("update") if task_id is None or u["task_id"]["value"] == task_id
        ]

    def states(self, task_id: str) -> list[str]:
        return [u["state"] for u in self.updates(task_id)]

    def distinct_states(self, task_id: str) -> list[str]:
        """States in arrival order, each reliable update (uuid) counted once: retries
        of an update whose acknowledgement was still in flight are legitimate."""
        seen: set[str] = set()
        states = []
        for update in self.updates(task_id):
            if "uuid" in update:
                if update["uuid"] in seen:
                    continue
                seen.add(update["uuid"])
            states.append(update["state"])
        return states

    def wait_state(self, task_id: str, state: str, timeout: float = WAIT) -> Json:
        def found() -> Json | None:
            for update in self.updates(task_id):
                if update["state"] == state:
                    return update
            return None

        result: Json = self.wait(found, f"{state} for {task_id}", timeout)
        return result

    def wait_subscribed(self) -> str:
        ids: list[str] = self.wait(lambda: self.events("registered"), "SUBSCRIBED")
        self.wait(lambda: self.driver.connected, "the driver to hold a stream id")
        return ids[-1]

    def next_offer(self, agent_id: str | None = None, timeout: float = WAIT) -> Json:
        """The oldest offer not yet handed out (optionally for one agent)."""

        def pick() -> Json | None:
            offers = self.events("offer")
            for index in range(self._seen, len(offers)):
                offer = offers[index]
                if agent_id is None or offer["agent_id"]["value"] == agent_id:
                    self._seen = index + 1
                    return offer
            return None

        result: Json = self.wait(
            pick, f"an offer{'' if agent_id is None else ' from ' + agent_id}", timeout
        )
        return result

    # ---------------------------------------------------------------- calls

    def start(self) -> Framework:
        self.driver.start()
        return self

    @property
    def framework_id(self) -> str:
        return str(self.driver.framework_id)

    def ack(self, status: Json) -> None:
        self.driver.acknowledgeStatusUpdate(status)

    def ack_all(self, task_id: str) -> None:
        for status in self.updates(task_id):
            if "uuid" in status:
                self.ack(status)

    def launch(self, offer: Json, tasks: list[Json], refuse_seconds: float = 0.05) -> None:
        self.driver.launchTasks(offer["id"], tasks, {"refuse_seconds": refuse_seconds})

    def raw_call(self, call: Json) -> tuple[int, str]:
        """POST a call with this framework's stream id; returns (status, body)."""
        body = json.dumps({"framework_id": {"value": self.framework_id}, **call}).encode()
        headers = {
            "Content-Type": "application/json",
            "Mesos-Stream-Id": str(self.driver.stream_id),
        }
        return http_post(self.cluster.master_url + "/api/v1/scheduler", body, headers)

    def stop(self) -> None:
        self.driver.stop(failover=True)
        self.driver.join()


def http_post(
    url: str, body: bytes, headers: dict[str, str], method: str = "POST"
) -> tuple[int, str]:
    """Send exactly these headers (urllib would add a Content-Type of its own)."""
    parsed = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    try:
        connection.request(method, parsed.path, body=body, headers=headers)
        response = connection.getresponse()
        return int(response.status), response.read().decode()
    finally:
        connection.close()


def sandbox_of(cluster: LocalMesos, framework_id: str, executor_id: str) -> Path:
    """The sandbox of the executor's latest run (agents make it off their loop, so this
    waits for it to appear)."""
    pattern = f"slaves/*/frameworks/{framework_id}/executors/{executor_id}/runs/latest"
    runs = wait_for(
        lambda: list(cluster.work_dir.glob(pattern)), what=f"the sandbox of {executor_id}"
    )
    assert len(runs) == 1, runs
    return runs[0].resolve()


def http_get_json(url: str) -> Json:
    with urllib.request.urlopen(url, timeout=10) as response:
        result: Json = json.loads(response.read())
        return result


def framework_info(name: str = "conformance", partition_aware: bool = True, **extra: Any) -> Json:
    info: Json = {"user": "root", "name": name, "failover_timeout": 604800.0}
    capabilities = [{"type": "PARTITION_AWARE"}] if partition_aware else []
    capabilities += extra.pop("capabilities", [])
    if capabilities:
        info["capabilities"] = capabilities
    info.update(extra)
    return info


@pytest.fixture
def make_cluster(
    start_mesos: Callable[..., LocalMesos], tmp_path: Path
) -> Callable[..., LocalMesos]:
    clusters = itertools.count()

    def make(agents: list[AgentSpec] | None = None, **overrides: Any) -> LocalMesos:
        work_dir = tmp_path / f"mesos{next(clusters)}"
        return start_mesos(agents or [AgentSpec()], work_dir=work_dir, **{**FAST, **overrides})

    return make


@pytest.fixture
def cluster(make_cluster: Callable[..., LocalMesos]) -> LocalMesos:
    return make_cluster()


@pytest.fixture
def make_framework(
    make_cluster: Callable[..., LocalMesos],
) -> Iterator[Callable[..., Framework]]:
    # Depends on make_cluster so that frameworks stop before their clusters do,
    # whatever order a test names the fixtures in.
    frameworks: list[Framework] = []

    def make(
        cluster: LocalMesos,
        info: Json | None = None,
        master: str | None = None,
        auto_ack: bool = True,
    ) -> Framework:
        framework = Framework(cluster, info or framework_info(), master, auto_ack)
        frameworks.append(framework)
        return framework.start()

    yield make
    for framework in frameworks:
        framework.stop()


@pytest.fixture
def framework(cluster: LocalMesos, make_framework: Callable[..., Framework]) -> Framework:
    fw = make_framework(cluster)
    fw.wait_subscribed()
    return fw
