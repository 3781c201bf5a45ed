"""Helpers for executor tests: the demo app package, a local Mesos, and a small scheduler.

The scheduler is written here on the unmodified pymesos `MesosSchedulerDriver`
(explicit acknowledgements from a thread of its own, a week's failover timeout),
independent of the controller's framework. It records every status update it
receives, in order, per task, once (an update an agent sends again, with the same
uuid, is acknowledged again and not recorded twice), and builds TaskInfos by hand
in the shape the framework uses: executor id `<app key>@-@<agent id>` (the framework's ids add a
version digest; the executor never reads its id), command = the app's
bootstrap script, URI = the app tarball (extract), data = the task payload.
"""

from __future__ import annotations

import base64
import itertools
import queue
import re
import subprocess
import sys
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pymesos import MesosSchedulerDriver, Scheduler

from controller.executor.messages import FrameworkMessage, encode_base64
from controller.resources import ExecutionType, JobKind
from controller.taskdata import JobConfig, ShardingContext, TaskPayload
from devcluster.mesos import AgentSpec, LocalMesos
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
DEMO_APP = ROOT / "examples" / "demo-app"
WAIT = 60.0
TERMINAL = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST"}
TERMINAL |= {"TASK_DROPPED", "TASK_GONE", "TASK_GONE_BY_OPERATOR"}
_task_numbers = itertools.count()


@pytest.fixture(scope="session")
def demo_tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo app package, built by its own build script."""
    output = tmp_path_factory.mktemp("demo-app") / "demo-app.tar.gz"
    subprocess.run([str(DEMO_APP / "build.sh"), str(output)], check=True, capture_output=True)
    return output


@pytest.fixture(scope="session")
def local_mesos() -> Iterator[LocalMesos]:
    cluster = LocalMesos(
        agents=[AgentSpec(cpus=64, mem=65536)],
        heartbeat_interval=2.0,
        offer_refresh=0.2,
        executor_registration_timeout=30.0,
        executor_shutdown_grace_period=5.0,
    )
    cluster.start()
    yield cluster
    cluster.stop()


@dataclass(frozen=True)
class Update:
    state: str
    message: str
    data: bytes | None
    source: str
    reason: str


@dataclass(frozen=True)
class App:
    key: str
    tarball: Path
    bootstrap: str = "bin/start-executor.sh"
    # More variables for the ExecutorInfo's environment.
    environment: tuple[tuple[str, str], ...] = ()

    def executor_id(self, agent_id: str) -> str:
        return f"{self.key}@-@{agent_id}"


def task_id_for(job_key: str, shard: int, agent_id: str) -> str:
    return f"{job_key}@-@{shard}@-@READY@-@{agent_id}@-@{uuid.uuid4()}"


def payload(
    job_key: str,
    task_id: str,
    *,
    kind: JobKind,
    execution_type: ExecutionType = ExecutionType.TRANSIENT,
    command_line: str | None = None,
    callable: str | None = None,
    source: str | None = None,
    streaming: bool = False,
    cron: str = "* * * * * ?",
    misfire: bool = False,
    sampling: int = 0,
    shard: int = 0,
    total: int = 1,
    sharding_parameter: str = "",
    job_parameter: str = "",
) -> TaskPayload:
    return TaskPayload(
        job=JobConfig(
            kind=kind,
            execution_type=execution_type,
            command_line=command_line,
            callable=callable,
            dataflow_source=source,
            streaming=streaming,
            cron=cron,
            misfire=misfire,
            event_trace_sampling_count=sampling,
        ),
        sharding=ShardingContext(
            job_name=job_key,
            task_id=task_id,
            sharding_total_count=total,
            sharding_item=shard,
            sharding_parameter=sharding_parameter,
            job_parameter=job_parameter,
        ),
    )


class RecordingScheduler(Scheduler):  # type: ignore[misc]
    """Records offers, status updates and executor exits; acknowledges off the IO thread."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.offers: dict[str, dict[str, Any]] = {}
        self.updates: dict[str, list[Update]] = defaultdict(list)
        self._seen: set[tuple[str, str]] = set()
        self.executor_exits: list[tuple[str, int]] = []
        self.framework_id: str | None = None
        self.acknowledgements: queue.Queue[dict[str, Any] | None] = queue.Queue()

    def registered(self, driver: Any, framework_id: dict[str, str], master_info: Any) -> None:
        with self.changed:
            self.framework_id = framework_id["value"]
            self.changed.notify_all()

    def resourceOffers(self, driver: Any, offers: list[dict[str, Any]]) -> None:
        with self.changed:
            for offer in offers:
                self.offers[offer["id"]["value"]] = offer
            self.changed.notify_all()

    def offerRescinded(self, driver: Any, offer_id: dict[str, str]) -> None:
        with self.changed:
            self.offers.pop(offer_id["value"], None)

    def statusUpdate(self, driver: Any, status: dict[str, Any]) -> None:
        data = base64.b64decode(status["data"]) if status.get("data") else None
        update = Update(
            state=status["state"],
            message=status.get("message", ""),
            data=data,
            source=status.get("source", ""),
            reason=status.get("reason", ""),
        )
        task_id = status["task_id"]["value"]
        with self.changed:
            # An update sent again (its acknowledgement had not reached the agent when
            # the agent went away) carries the same uuid: acknowledged again, recorded once.
            sent_before = (task_id, status.get("uuid", "")) in self._seen
            if status.get("uuid"):
                self._seen.add((task_id, status["uuid"]))
            if not sent_before:
                self.updates[task_id].append(update)
                self.changed.notify_all()
        self.acknowledgements.put(status)

    def executorLost(self, driver: Any, executor_id: Any, agent_id: Any, status: int) -> None:
        with self.changed:
            self.executor_exits.append((executor_id["value"], status))
            self.changed.notify_all()


@dataclass
class Framework:
    """A registered test framework on the local Mesos, with helpers to drive executors."""

    cluster: LocalMesos
    scheduler: RecordingScheduler
    driver: Any
    apps_by_executor: dict[str, App] = field(default_factory=dict)

    acknowledger: threading.Thread | None = None

    def start(self) -> None:
        self.acknowledger = threading.Thread(
            target=self._acknowledge, name="acknowledger", daemon=True
        )
        self.acknowledger.start()
        self.driver.start()
        self.wait_for(lambda: self.scheduler.framework_id is not None, "framework registration")

    def _acknowledge(self) -> None:
        while (status := self.scheduler.acknowledgements.get()) is not None:
            try:
                self.driver.acknowledgeStatusUpdate(status)
            except Exception as error:  # the master retries unacknowledged updates
                print(f"acknowledgement failed: {error!r}", file=sys.stderr)

    def tear_down(self) -> None:
        """TEARDOWN the framework: the agent shuts its executors down. Idempotent."""
        if self.acknowledger is None:
            return
        self.scheduler.acknowledgements.put(None)
        self.acknowledger.join(timeout=5)
        self.acknowledger = None
        self.driver.stop()
        self.driver.join()

    @property
    def agent_id(self) -> str:
        return self.cluster.agents[0].agent_id

    def task(self, app: App, job_key: str, shard: int = 0, **job: Any) -> dict[str, Any]:
        """A TaskInfo for one shard of a job of `app`, on the first agent."""
        task_id = task_id_for(job_key, shard, self.agent_id)
        data = payload(job_key, task_id, shard=shard, **job).encode_base64()
        return self.raw_task(app, task_id, data)

    def raw_task(self, app: App, task_id: str, data: str | None) -> dict[str, Any]:
        executor_id = app.executor_id(self.agent_id)
        self.apps_by_executor[executor_id] = app
        info: dict[str, Any] = {
            "name": task_id.split("@-@")[0],
            "task_id": {"value": task_id},
            "agent_id": {"value": self.agent_id},
            "resources": [_scalar("cpus", 0.1), _scalar("mem", 16)],
            "executor": {
                "type": "CUSTOM",
                "executor_id": {"value": executor_id},
                "name": f"{app.key} executor",
                "command": {
                    "value": app.bootstrap,
                    "shell": True,
                    "uris": [{"value": str(app.tarball), "extract": True, "cache": False}],
                    "environment": {
                        "variables": [
                            {"name": "CLOUDJOB_PYTHON", "value": sys.executable},
                            {"name": "CLOUDJOB_EXECUTOR_LOG_LEVEL", "value": "DEBUG"},
                            *({"name": k, "value": v} for k, v in app.environment),
                        ]
                    },
                },
                "resources": [_scalar("cpus", 0.1), _scalar("mem", 32)],
            },
        }
        if data is not None:
            info["data"] = data
        return info

    def launch(self, *tasks: dict[str, Any]) -> list[str]:
        """Launch on the agent's current offers; returns the task ids."""
        self.wait_for(lambda: self._offer_ids(), "an offer from the agent")
        with self.scheduler.changed:
            offer_ids = self._offer_ids()
            for offer_id in offer_ids:
                del self.scheduler.offers[offer_id]
        self.driver.launchTasks(
            [{"value": offer_id} for offer_id in offer_ids], list(tasks), {"refuse_seconds": 0}
        )
        return [task["task_id"]["value"] for task in tasks]

    def _offer_ids(self) -> list[str]:
        return [
            offer_id
            for offer_id, offer in self.scheduler.offers.items()
            if offer["agent_id"]["value"] == self.agent_id
        ]

    def kill(self, task_id: str) -> None:
        self.driver.killTask({"value": task_id})

    def send(self, app: App, message: FrameworkMessage) -> None:
        self.driver.sendFrameworkMessage(
            {"value": app.executor_id(self.agent_id)},
            {"value": self.agent_id},
            encode_base64(message),
        )

    def updates(self, task_id: str) -> list[Update]:
        with self.scheduler.changed:
            return list(self.scheduler.updates[task_id])

    def states(self, task_id: str) -> list[str]:
        return [update.state for update in self.updates(task_id)]

    def runs_reported(self, task_id: str) -> list[str]:
        """The messages of a daemon task's RUNNING updates after the first."""
        return [u.message for u in self.updates(task_id) if u.state == "TASK_RUNNING"][1:]

    def wait_terminal(self, task_id: str) -> list[Update]:
        self.wait_for(
            lambda: bool(self.states(task_id)) and self.states(task_id)[-1] in TERMINAL,
            f"a terminal state of {task_id}",
        )
        return self.updates(task_id)

    def wait_for(self, condition: Callable[[], Any], what: str, timeout: float = WAIT) -> None:
        with self.scheduler.changed:
            if self.scheduler.changed.wait_for(condition, timeout):
                return
        raise AssertionError(f"timed out waiting for {what}\n{self.diagnosis()}")

    def wait_for_file(
        self, path: Callable[[], Path], condition: Callable[[str], bool], what: str
    ) -> str:
        """Poll a file (job output) until its text satisfies `condition`."""

        def text() -> str:
            candidate = path()
            return candidate.read_text() if candidate.exists() else ""

        try:
            return wait_for(text, condition, what=what, timeout=WAIT)
        except AssertionError as timeout:
            raise AssertionError(f"{timeout}\n{self.diagnosis()}") from None

    def sandbox(self, app: App) -> Path:
        executor_id = app.executor_id(self.agent_id)
        assert self.scheduler.framework_id is not None
        return (
            self.cluster.work_dir
            / "slaves"
            / self.agent_id
            / "frameworks"
            / self.scheduler.framework_id
            / "executors"
            / executor_id
            / "runs"
            / "latest"
        )

    def task_output(self, app: App, task_id: str, stream: str = "stdout") -> Path:
        return self.sandbox(app) / "tasks" / task_id / stream

    def diagnosis(self) -> str:
        lines = ["status updates:"]
        with self.scheduler.changed:
            for task_id, updates in self.scheduler.updates.items():
                lines.append(f"  {task_id}: {[(u.state, u.message) for u in updates]}")
            lines.append(f"executor exits: {self.scheduler.executor_exits}")
        for app in {*self.apps_by_executor.values()}:
            stderr = self.sandbox(app) / "stderr"
            if stderr.exists():
                lines.append(f"--- {app.key} executor stderr (tail) ---")
                lines.extend(stderr.read_text().splitlines()[-40:])
        return "\n".join(lines)


def process_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie nobody reaped yet counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(") ", 1)[1].split()[1])


def wait_gone(pid: int, timeout: float = WAIT) -> None:
    wait_for(lambda: not process_alive(pid), what=f"process {pid} to end", timeout=timeout)


def job_pid(text: str) -> int:
    """The pid a demo sleepy job prints when it starts."""
    match = re.search(r"\(pid (\d+)\)", text)
    assert match is not None, text
    return int(match.group(1))


def _scalar(name: str, amount: float) -> dict[str, Any]:
    return {"name": name, "type": "SCALAR", "scalar": {"value": amount}}


def start_framework(cluster: LocalMesos, checkpoint: bool = True) -> Framework:
    scheduler = RecordingScheduler()
    driver = MesosSchedulerDriver(
        scheduler,
        {
            "user": "",
            "name": f"executor-tests-{next(_task_numbers)}",
            "failover_timeout": 7 * 24 * 3600.0,
            "checkpoint": checkpoint,
            "capabilities": [{"type": "PARTITION_AWARE"}],
        },
        cluster.master_address,
        use_addict=False,
        implicit_acknowledgements=False,
    )
    harness = Framework(cluster=cluster, scheduler=scheduler, driver=driver)
    harness.start()
    return harness


@pytest.fixture
def framework(local_mesos: LocalMesos) -> Iterator[Framework]:
    harness = start_framework(local_mesos)
    yield harness
    harness.tear_down()


@pytest.fixture
def demo_app(demo_tarball: Path) -> App:
    return App(key="tests.demo-app", tarball=demo_tarball)
