"""The whole system for tests: real ZooKeeper, the real Kubernetes API server (shared by
the whole run), the local Mesos with real processes, and controller replicas (in-process
threads or `python -m controller run` subprocesses) authenticated as the chart's
ServiceAccount with only the chart's RBAC.

`Stack` gives tests what they act and look through: a Kubernetes client (admin), the
API server's audit log of the controller's requests, the Mesos
cluster, a kazoo client on the controller's ZooKeeper namespace, and `Runs` — the log
the test jobs append one line to per shard run (their sharding context), which is how
a test counts runs without trusting the controller's own reports.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError
from pydantic import SecretStr

from controller.app import ControllerThread, EventListener, Role
from controller.history.settings import HistorySettings
from controller.mesos.settings import FrameworkSettings
from controller.resources import API_VERSION
from controller.settings import (
    HttpSettings,
    KubernetesSettings,
    Settings,
    StatusSettings,
    ZooKeeperSettings,
)
from devcluster.kube import ControlPlane, KubeClient
from devcluster.kube.identities import Identity, ensure_namespace, grant_chart_rbac
from devcluster.mesos import AgentSpec, LocalMesos
from devcluster.zookeeper import ZooKeeperServer
from tests.kubeworld import clean_slate
from tests.waiting import WAIT, wait_for

NAMESPACE = "default"
SWEEP_INTERVAL = 0.5
PROJECT = Path(__file__).resolve().parents[1]

# Short timings so each scenario takes seconds; the controller's own defaults are longer.
FAST_MESOS = {
    "heartbeat_interval": 0.5,
    "offer_refresh": 0.2,
    "executor_registration_timeout": 20.0,
    "executor_shutdown_grace_period": 1.0,
    "agent_ping_timeout": 0.3,
    "max_agent_ping_timeouts": 3,
    "status_update_retry": 0.5,
    "status_update_retry_max": 2.0,
    "command_kill_grace_period": 1.0,
    "default_refuse_seconds": 0.5,
}
FAST_FRAMEWORK = {
    "launch_batch_seconds": 0.05,
    "offer_hold_seconds": 2.0,
    "decline_refuse_seconds": 0.5,
    "idle_refuse_seconds": 1.0,
    "reconcile_interval_seconds": 0.0,
    "failover_timeout_seconds": 60.0,
    "misfire_threshold_seconds": 2.0,
    "unreachable_grace_seconds": 2.0,
    "unplaceable_report_seconds": 0.5,
}


@dataclass
class Runs:
    """The shard runs the test jobs recorded, one JSON sharding context per line."""

    path: Path

    def all(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def of(self, job: str) -> list[dict[str, Any]]:
        key = f"{NAMESPACE}.{job}"
        return [run for run in self.all() if run["job_name"] == key]

    def fires(self, job: str) -> Counter[str]:
        """Fire time → number of shard runs recorded for it."""
        return Counter(str(run.get("fire_time")) for run in self.of(job))


def app_manifest(
    name: str, app_url: str, namespace: str = NAMESPACE, **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "CloudApp",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "appURL": app_url,
            "bootstrapScript": "./bin/start",
            "cpuCount": 0.1,
            "memoryMB": 32.0,
            **spec,
        },
    }


def job_manifest(
    name: str, app: str, cron: str, namespace: str = NAMESPACE, **spec: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "appName": app,
        "cron": cron,
        "shardingTotalCount": 3,
        "cpuCount": 0.1,
        "memoryMB": 16.0,
    }
    body.update(spec)
    return {
        "apiVersion": API_VERSION,
        "kind": "CloudJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


@dataclass
class Stack:
    api: ControlPlane
    identity: Identity
    mesos: LocalMesos
    zk_hosts: str
    zk_namespace: str
    zk: KazooClient
    workdir: Path
    script_app: Path
    executor_app: Path
    replicas: list[ControllerThread] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    # Where this test's part of the API server's audit log begins.
    audit_start: int = 0
    # The user names the controllers of this test authenticated as.
    accounts: set[str] = field(default_factory=set)
    # The replicas' history database; None: SQLite in workdir.
    history_url: str | None = None
    # The history writer's buffer (records); None: the controller's default.
    history_buffer: int | None = None

    def __post_init__(self) -> None:
        self.accounts.add(self.identity.username)

    @property
    def kube(self) -> KubeClient:
        return self.api.client()

    @property
    def runs(self) -> Runs:
        return Runs(self.workdir / "runs.log")

    def record_command(self) -> str:
        """A script command line that appends its sharding context to the runs log."""
        return f'sh -c \'printf "%s\\n" "$0" >> {self.runs.path}\''

    def script_job(
        self,
        name: str,
        cron: str,
        *,
        app: str = "scripts",
        namespace: str = NAMESPACE,
        **spec: Any,
    ) -> None:
        """Create a transient script job that records each shard run."""
        spec.setdefault("script", {"commandLine": self.record_command()})
        self.kube.create(job_manifest(name, app, cron, namespace, **spec))

    def script_app_object(
        self, name: str = "scripts", *, namespace: str = NAMESPACE, **spec: Any
    ) -> None:
        # Without the fetcher cache: the local Mesos fetcher races when several tasks on
        # one agent fetch the same cached URI at once.
        spec.setdefault("appCacheEnable", False)
        self.kube.create(app_manifest(name, str(self.script_app), namespace, **spec))

    def create_namespace(self, name: str) -> None:
        ensure_namespace(self.api, name)

    def account_for(self, namespaces: Sequence[str]) -> Identity:
        """The chart's ServiceAccount and RBAC for a controller watching `namespaces`
        (a release of their own, rendered with those that exist now); the cluster-wide
        identity when no namespaces are listed. Granting again once a listed namespace
        exists is what `helm upgrade` does then."""
        if not namespaces:
            return self.identity
        existing = {n["metadata"]["name"] for n in self.kube.list("v1", "Namespace")}
        release = "ns-" + hashlib.sha1(",".join(sorted(namespaces)).encode()).hexdigest()[:8]
        account = grant_chart_rbac(
            self.api,
            self.workdir,
            release=release,
            watch_namespaces=tuple(n for n in namespaces if n in existing),
        )
        self.accounts.add(account.username)
        return account

    def strip_finalizers(self, kind: str, name: str, namespace: str = NAMESPACE) -> None:
        """What a user does to an object stuck in deletion: its finalizers removed by hand."""
        patch = {"metadata": {"finalizers": None}}
        self.kube.patch(API_VERSION, kind, name, patch, namespace=namespace)

    def executor_app_object(self, name: str = "workers", **spec: Any) -> None:
        self.kube.create(app_manifest(name, str(self.executor_app), **spec))

    def patch_spec(self, kind: str, name: str, **spec: Any) -> None:
        self.kube.patch(API_VERSION, kind, name, {"spec": spec}, namespace=NAMESPACE)

    def annotate(self, kind: str, name: str, **annotations: str) -> None:
        patch = {"metadata": {"annotations": annotations}}
        self.kube.patch(API_VERSION, kind, name, patch, namespace=NAMESPACE)

    def delete(self, kind: str, name: str, namespace: str = NAMESPACE) -> None:
        self.kube.delete(API_VERSION, kind, name, namespace)

    def settings(
        self, identity: str, *, namespaces: Sequence[str] = (), **status: float
    ) -> Settings:
        return Settings(
            identity=identity,
            mesos=FrameworkSettings(master=self.mesos.master_address, **FAST_FRAMEWORK),
            zookeeper=ZooKeeperSettings(
                hosts=self.zk_hosts, namespace=self.zk_namespace, session_timeout=2.0
            ),
            kubernetes=KubernetesSettings(
                kubeconfig=self.account_for(namespaces).kubeconfig,
                namespaces=list(namespaces),
                orphan_sweep_interval=SWEEP_INTERVAL,
            ),
            http=HttpSettings(host="127.0.0.1", health_port=0, metrics_port=0),
            status=StatusSettings(
                refresh_interval=status.get("refresh_interval", 2.0),
                min_interval=status.get("min_interval", 0.3),
            ),
            history=self.history_settings(),
        )

    def history_settings(self) -> HistorySettings:
        """Every replica of the stack shares one history database (SQLite in workdir,
        unless `history_url` names another)."""
        url = SecretStr(self.history_url) if self.history_url else None
        settings = HistorySettings(
            database_url=url,
            data_dir=self.workdir / "history",
            retry_seconds=0.5,
            timeout_seconds=2.0,
        )
        if self.history_buffer is not None:
            settings = settings.model_copy(update={"buffer_size": self.history_buffer})
        return settings

    def start_controller(
        self,
        identity: str = "replica-1",
        listeners: Sequence[EventListener] = (),
        *,
        namespaces: Sequence[str] = (),
    ) -> ControllerThread:
        replica = ControllerThread(
            self.settings(identity, namespaces=namespaces), listeners=listeners
        )
        replica.start()
        self.replicas.append(replica)
        return replica

    def start_process(
        self, identity: str, *, health_port: int, metrics_port: int
    ) -> subprocess.Popen[bytes]:
        """A replica as its own process (`python -m controller run`), logging to workdir."""
        settings = self.settings(identity)
        env = dict(os.environ)
        env.update(
            {
                "CLOUDJOB_IDENTITY": identity,
                "CLOUDJOB_MESOS__MASTER": settings.mesos.master,
                "CLOUDJOB_ZOOKEEPER__HOSTS": self.zk_hosts,
                "CLOUDJOB_ZOOKEEPER__NAMESPACE": self.zk_namespace,
                "CLOUDJOB_ZOOKEEPER__SESSION_TIMEOUT": "2",
                "CLOUDJOB_KUBERNETES__KUBECONFIG": str(self.identity.kubeconfig),
                "CLOUDJOB_HTTP__HOST": "127.0.0.1",
                "CLOUDJOB_HTTP__HEALTH_PORT": str(health_port),
                "CLOUDJOB_HTTP__METRICS_PORT": str(metrics_port),
                "CLOUDJOB_STATUS__REFRESH_INTERVAL": "2",
                "CLOUDJOB_STATUS__MIN_INTERVAL": "0.3",
                "CLOUDJOB_KUBERNETES__ORPHAN_SWEEP_INTERVAL": str(SWEEP_INTERVAL),
                "CLOUDJOB_HISTORY__DATA_DIR": str(settings.history.data_dir),
                "CLOUDJOB_HISTORY__RETRY_SECONDS": str(settings.history.retry_seconds),
                "CLOUDJOB_HISTORY__TIMEOUT_SECONDS": str(settings.history.timeout_seconds),
                "CLOUDJOB_HISTORY__BUFFER_SIZE": str(settings.history.buffer_size),
            }
        )
        if settings.history.database_url is not None:
            env["CLOUDJOB_HISTORY__DATABASE_URL"] = settings.history.url()
        env.update({f"CLOUDJOB_MESOS__{k.upper()}": str(v) for k, v in FAST_FRAMEWORK.items()})
        log = open(self.workdir / f"{identity}.log", "wb")  # noqa: SIM115 - owned by the child
        process = subprocess.Popen(
            [sys.executable, "-m", "controller", "run"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=PROJECT,
        )
        log.close()
        self.processes.append(process)
        return process

    def leader(self) -> str | None:
        """The identity of the elected replica, as ZooKeeper records it."""
        path = f"/{self.zk_namespace}/ha/election"
        if not self.zk.exists(path):
            return None
        children = sorted(self.zk.get_children(path), key=lambda n: int(n.rsplit("_", 1)[-1]))
        if not children:
            return None
        try:
            data, _ = self.zk.get(f"{path}/{children[0]}")
        except NoNodeError:  # the leader's session just expired; ask again
            return None
        return data.decode()

    def zk_children(self, path: str) -> list[str]:
        full = f"/{self.zk_namespace}/{path}"
        return sorted(self.zk.get_children(full)) if self.zk.exists(full) else []

    def get(self, kind: str, name: str) -> dict[str, Any]:
        return self.kube.get(API_VERSION, kind, name, NAMESPACE)

    def status(self, kind: str, name: str) -> dict[str, Any]:
        return dict(self.get(kind, name).get("status") or {})

    def condition(self, kind: str, name: str, type_: str) -> dict[str, Any] | None:
        conditions = self.status(kind, name).get("conditions") or []
        return next((c for c in conditions if c["type"] == type_), None)

    def exists(self, kind: str, name: str, namespace: str = NAMESPACE) -> bool:
        found = self.kube.list(API_VERSION, kind, namespace)
        return any(item["metadata"]["name"] == name for item in found)

    def mesos_tasks(self) -> dict[str, str]:
        """Task id → state, of every task the local Mesos master knows (live and done)."""
        tasks: dict[str, str] = {}
        for framework in self.mesos.state().get("frameworks", []):
            for task in [*framework.get("tasks", []), *framework.get("completed_tasks", [])]:
                tasks[task["id"]] = task["state"]
        return tasks

    def mesos_executors(self) -> list[str]:
        """Ids of the executors the local Mesos master knows to be running."""
        return sorted(
            executor["executor_id"]
            for framework in self.mesos.state().get("frameworks", [])
            for executor in framework.get("executors", [])
        )

    def requests(self) -> list[dict[str, Any]]:
        """The controller's requests to the API server during this test, from its audit
        log (one event per completed request: verb, objectRef, requestURI, status)."""
        return [
            event
            for event in self.api.audit(since=self.audit_start)
            if event.get("user", {}).get("username") in self.accounts
        ]

    def status_writes(self, plural: str, name: str) -> int:
        """How many writes of the object's status the controller has made."""
        return sum(
            1
            for event in self.requests()
            if event["verb"] in ("patch", "update")
            and event.get("objectRef", {}).get("resource") == plural
            and event["objectRef"].get("name") == name
            and event["objectRef"].get("subresource") == "status"
        )

    def active_frameworks(self) -> list[str]:
        """Ids of the frameworks subscribed to the local Mesos master right now."""
        return [
            framework["id"]
            for framework in self.mesos.state().get("frameworks", [])
            if framework.get("active")
        ]

    def events(self, kind: str, name: str) -> list[dict[str, Any]]:
        obj = self.get(kind, name)
        return self.kube.events(obj)

    def wait_status(
        self,
        kind: str,
        name: str,
        until: Callable[[dict[str, Any]], bool],
        *,
        timeout: float = WAIT,
        what: str = "a status",
    ) -> dict[str, Any]:
        return wait_for(lambda: self.status(kind, name), until, timeout=timeout, what=what)

    def close(self) -> None:
        for replica in self.replicas:
            if replica.alive:
                replica.stop()
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def __iter__(self) -> Iterator[ControllerThread]:
        return iter(self.replicas)


def metric(replica: ControllerThread, name: str, **labels: str) -> float:
    """A sample of the replica's metrics registry (0 when absent)."""
    value = replica.controller.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def leading(replica: ControllerThread) -> bool:
    return replica.controller.role is Role.LEADER


AGENTS = [AgentSpec(cpus=1.0, mem=512.0, hostname=f"host-{n}") for n in range(3)]


def build_apps(workdir: Path) -> tuple[Path, Path]:
    """A plain file (what a transient script job's app can be) and an executor package
    whose bootstrap starts the project's executor with this interpreter."""
    plain = workdir / "script-app.sh"
    plain.write_text("#!/bin/sh\nexit 0\n")
    package = workdir / "executor-app.tar.gz"
    start = f"#!/bin/sh\nexec {sys.executable} -m controller.executor\n".encode()
    with tarfile.open(package, "w:gz") as archive:
        info = tarfile.TarInfo("bin/start")
        info.size, info.mode = len(start), 0o755
        archive.addfile(info, io.BytesIO(start))
    return plain, package


@pytest.fixture
def stack(
    zookeeper: ZooKeeperServer,
    zk_client: KazooClient,
    zk_namespace: str,
    start_mesos: Callable[..., LocalMesos],
    tmp_path: Path,
    kube_cluster: ControlPlane,
    controller_identity: Identity,
) -> Iterator[Stack]:
    script_app, executor_app = build_apps(tmp_path)
    built = Stack(
        api=kube_cluster,
        identity=controller_identity,
        mesos=start_mesos(list(AGENTS), work_dir=tmp_path / "mesos", **FAST_MESOS),
        zk_hosts=zookeeper.hosts,
        zk_namespace=zk_namespace,
        zk=zk_client,
        workdir=tmp_path,
        script_app=script_app,
        executor_app=executor_app,
        audit_start=kube_cluster.audit_mark(),
    )
    try:
        yield built
    finally:
        built.close()
        clean_slate(kube_cluster)
