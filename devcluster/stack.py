"""The `dev` stack: the whole system on one machine, in one command.

It starts a real ZooKeeper (from the Debian package), the local Mesos emulator with a
few agents (registered in ZooKeeper, so the controller finds the master through
`zk://`), a real Kubernetes control plane (etcd, kube-apiserver and
kube-controller-manager built by `scripts/build-kube`) with the CRDs, builds the demo
app and serves its package over HTTP on loopback, runs the controller as
`python -m controller run` (the production entry point, in a subprocess) as the chart's
ServiceAccount with only the chart's RBAC, applies the example manifests with kubectl,
and then narrates: Kubernetes Events, job status changes, and the output of every
finished task. Ctrl-C (or `duration`) stops everything in reverse order.

Development only: the Mesos here is an emulator, not a production component.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from devcluster.kube import ControlPlane, KubeClient
from devcluster.kube.identities import Identity, grant_chart_rbac
from devcluster.mesos import AgentSpec, LocalMesos
from devcluster.zookeeper import ZooKeeperServer, free_port

PROJECT = Path(__file__).resolve().parent.parent
DEMO_APP = PROJECT / "examples" / "demo-app"
MANIFESTS = PROJECT / "examples" / "manifests"
API_VERSION = "cloudjob.io/v1alpha1"
BANNER = (
    "cloudjob-controller dev stack: real ZooKeeper and Kubernetes API server, "
    "EMULATED Mesos (development only, not a production component)"
)
POLL = 0.5

Say = Callable[[str], None]


def _say(line: str) -> None:
    print(line, flush=True)


def build_demo_app(output: Path) -> Path:
    subprocess.run(
        ["sh", str(DEMO_APP / "build.sh"), str(output)], check=True, stdout=subprocess.DEVNULL
    )
    return output


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    """Serve `directory` over HTTP on loopback; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="package-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def example_manifests(app_url: str) -> list[dict[str, Any]]:
    """The example app and jobs, with the app's URL pointing at the served package."""
    documents: list[dict[str, Any]] = []
    for path in (MANIFESTS / "app.yaml", MANIFESTS / "jobs.yaml"):
        documents.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    for document in documents:
        if document["kind"] == "CloudApp":
            document["spec"]["appURL"] = app_url
    return documents


@dataclass
class Narrator:
    """Prints what changes: new Events, job status, and the output of finished tasks."""

    kube: KubeClient
    mesos: LocalMesos
    sandboxes: Path
    say: Say
    _events: set[str] = field(default_factory=set)
    _status: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    _finished: set[str] = field(default_factory=set)

    def poll(self) -> None:
        self._print_events()
        self._print_job_status()
        self._print_task_results()

    def _print_events(self) -> None:
        events = self.kube.list("v1", "Event", "default")
        for event in sorted(events, key=lambda e: str(e.get("lastTimestamp") or "")):
            uid = event["metadata"].get("uid") or event["metadata"]["name"]
            if uid in self._events:
                continue
            self._events.add(uid)
            involved = event.get("involvedObject", {})
            self.say(
                f"[event] {involved.get('kind', '?')}/{involved.get('name', '?')} "
                f"{event.get('type', '')} {event.get('reason', '')}: {event.get('message', '')}"
            )

    def _print_job_status(self) -> None:
        for job in self.kube.list(API_VERSION, "CloudJob", "default"):
            status = job.get("status") or {}
            if not status:
                continue
            facts = (
                status.get("state"),
                status.get("succeeded"),
                status.get("failed"),
                len(status.get("activeShards") or []),
            )
            name = job["metadata"]["name"]
            if self._status.get(name) == facts:
                continue
            self._status[name] = facts
            state, succeeded, failed, active = facts
            self.say(
                f"[status] CloudJob/{name}: state={state} active shards={active} "
                f"succeeded={succeeded} failed={failed} next={status.get('nextScheduleTime')}"
            )

    def _print_task_results(self) -> None:
        for framework in self.mesos.state().get("frameworks", []):
            for task in framework.get("completed_tasks", []):
                task_id = task["id"]
                if task_id in self._finished:
                    continue
                self._finished.add(task_id)
                job, _, rest = task_id.partition("@-@")
                shard = rest.partition("@-@")[0] or "?"
                hosts = {agent.agent_id: agent.hostname for agent in self.mesos.agents}
                agent = hosts.get(task.get("slave_id", ""), task.get("slave_id", "?"))
                self.say(
                    f"[task] {task['state']} {job} shard {shard} on {agent}: "
                    f"{self._first_output_line(task_id)}"
                )

    def _first_output_line(self, task_id: str) -> str:
        # Command tasks write to their executor sandbox; executor tasks to tasks/<id>/.
        patterns = (
            f"slaves/*/frameworks/*/executors/{task_id}/runs/latest/stdout",
            f"slaves/*/frameworks/*/executors/*/runs/latest/tasks/{task_id}/stdout",
        )
        for pattern in patterns:
            for path in self.sandboxes.glob(pattern):
                lines = [line for line in path.read_text(errors="replace").splitlines() if line]
                return lines[0][:200] if lines else "(no output)"
        return "(no output)"


class DevStack:
    """Everything `scripts/dev` runs; `run()` blocks until stopped."""

    def __init__(self, *, agents: int = 3, work_dir: Path | None = None, say: Say = _say) -> None:
        self.agents = agents
        self.work_dir = work_dir or Path(tempfile.mkdtemp(prefix="cloudjob-dev-"))
        self.say = say
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self, duration: float | None = None) -> int:
        logging.basicConfig(level=logging.WARNING, format="[%(name)s] %(message)s")
        # The emulated master's ZooKeeper client reconnects while ZooKeeper settles.
        logging.getLogger("kazoo.client").setLevel(logging.ERROR)
        self.say(BANNER)
        self.say(f"work directory: {self.work_dir}")
        with contextlib.ExitStack() as stack:
            zk = ZooKeeperServer(data_dir=self.work_dir / "zookeeper")
            (self.work_dir / "zookeeper").mkdir(parents=True, exist_ok=True)
            zk.start()
            stack.callback(zk.stop)
            self.say(f"zookeeper: {zk.hosts}")

            # The demo app's bootstrap runs the executor with this interpreter.
            os.environ["CLOUDJOB_PYTHON"] = sys.executable
            mesos = LocalMesos(
                agents=[
                    AgentSpec(
                        cpus=2.0,
                        mem=2048.0,
                        hostname=f"agent-{i + 1}",
                        attributes={"rack": f"r{i % 2 + 1}"},
                    )
                    for i in range(self.agents)
                ],
                zk_hosts=zk.hosts,
                zk_path="/mesos",
                work_dir=self.work_dir / "mesos",
                heartbeat_interval=5.0,
            )
            mesos.start()
            stack.callback(mesos.stop)
            self.say(
                f"mesos (emulated): master {mesos.master_url}, {self.agents} agents, "
                f"detected through {mesos.zk_url}"
            )

            api = ControlPlane(self.work_dir / "kube")
            self.say("kubernetes: starting etcd, kube-apiserver, kube-controller-manager")
            api.start()
            stack.callback(api.stop)
            api.install_crds()
            kubeconfig = self.work_dir / "kubeconfig"
            api.write_kubeconfig(kubeconfig, api.admin_token, user="admin")
            self.say(f"kubernetes API: {api.url} (a real kube-apiserver; admin kubeconfig below)")
            # kubectl's directory, and this environment's for the kubectl-cloudjob plugin.
            path = f"{api.binaries.directory}:{Path(sys.executable).parent}"
            self.say(f"  export KUBECONFIG={kubeconfig} PATH={path}:$PATH")
            # The controller runs here, not in the cluster: the plugin reads its API directly.
            health_port = free_port()
            self.say(f"  export CLOUDJOB_API=http://127.0.0.1:{health_port}")
            self.say("  kubectl get cjob -o wide")
            self.say("  kubectl cloudjob runs hello-script")
            identity = grant_chart_rbac(api, self.work_dir)

            www = self.work_dir / "www"
            www.mkdir(exist_ok=True)
            build_demo_app(www / "demo-app.tar.gz")
            base_url = stack.enter_context(serve_directory(www))
            self.say(f"demo app package: {base_url}/demo-app.tar.gz")

            controller = self._start_controller(zk.hosts, mesos, identity, health_port)
            stack.callback(self._stop_controller, controller)

            kube = api.client()
            manifests = list(example_manifests(f"{base_url}/demo-app.tar.gz"))
            applied = api.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(manifests))
            for line in applied.stdout.splitlines():
                self.say(f"kubectl apply: {line}")

            narrator = Narrator(kube, mesos, self.work_dir / "mesos", self.say)
            deadline = None if duration is None else time.monotonic() + duration
            while not self._stop.wait(POLL):
                if controller.poll() is not None:
                    self.say(f"the controller exited with {controller.returncode}")
                    return 1
                narrator.poll()
                if deadline is not None and time.monotonic() > deadline:
                    break
            self.say("stopping")
        self.say("stopped")
        return 0

    def _start_controller(
        self, zk_hosts: str, mesos: LocalMesos, identity: Identity, health_port: int
    ) -> subprocess.Popen[bytes]:
        env = dict(
            os.environ,
            CLOUDJOB_MESOS__MASTER=mesos.zk_url or mesos.master_address,
            CLOUDJOB_ZOOKEEPER__HOSTS=zk_hosts,
            CLOUDJOB_KUBERNETES__KUBECONFIG=str(identity.kubeconfig),
            CLOUDJOB_HTTP__HOST="127.0.0.1",
            CLOUDJOB_HTTP__HEALTH_PORT=str(health_port),
            CLOUDJOB_HTTP__METRICS_PORT=str(free_port()),
            CLOUDJOB_STATUS__REFRESH_INTERVAL="2",
            CLOUDJOB_STATUS__MIN_INTERVAL="1",
            # The run history's SQLite file lives with the rest of the stack's state.
            CLOUDJOB_HISTORY__DATA_DIR=str(self.work_dir / "history"),
            # Short enough to watch work move off a killed agent or report what cannot fit.
            CLOUDJOB_MESOS__UNREACHABLE_GRACE_SECONDS="30",
            CLOUDJOB_MESOS__UNPLACEABLE_REPORT_SECONDS="3",
        )
        health = f"http://127.0.0.1:{env['CLOUDJOB_HTTP__HEALTH_PORT']}"
        self.say(
            f"controller: python -m controller run (health :{env['CLOUDJOB_HTTP__HEALTH_PORT']},"
            f" metrics :{env['CLOUDJOB_HTTP__METRICS_PORT']}; run history API "
            f"{health}/api/v1/runs)"
        )
        self.say(f"console: {health}/console/")
        # Its own session: Ctrl-C reaches the stack, which stops it in order.
        return subprocess.Popen(
            [sys.executable, "-m", "controller", "run"], env=env, start_new_session=True
        )

    def _stop_controller(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
