"""Runs a real Kubernetes control plane on loopback for the tests and the `dev` stack:
etcd, kube-apiserver and (for namespace deletion and garbage collection)
kube-controller-manager, from the binaries `scripts/build-kube` builds.

The API server is set up the way a test control plane should be: TLS from a throw-away
CA (`pki`), token authentication (an `admin` token in `system:masters`), RBAC
authorization, service-account tokens signed by a key of its own (so the controller can
authenticate as the chart's ServiceAccount through the TokenRequest API), an audit log
of every request (so tests can see what the controller asked for), and etcd without
fsync. `ControlPlane` writes an admin kubeconfig on start and stops every process it
started (by PID) on `stop()`.

    with ControlPlane() as cluster:
        cluster.client().create({...})
        cluster.kubectl("get", "cloudjobs")
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import yaml

from devcluster.kube.binaries import PROJECT, KubeBinaries, find_binaries
from devcluster.kube.clients import KubeClient
from devcluster.kube.errors import ApiError, KubeUnavailable
from devcluster.kube.pki import Pki, make_pki
from devcluster.zookeeper import free_port

PROJECT_CRDS = PROJECT / "crds"
SERVICE_CIDR = "10.96.0.0/24"
CRD_VERSION = "apiextensions.k8s.io/v1"
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived", "ResponseStarted"],
    "rules": [{"level": "Metadata"}],
}


def read_manifests(paths: Iterable[Path | str]) -> Iterator[dict[str, Any]]:
    """Every YAML document in the given files, and in the `*.yaml`/`*.yml` files of the
    given directories (sorted), skipping empty documents."""
    for path in map(Path, paths):
        files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")]) if path.is_dir() else [path]
        for file in files:
            for document in yaml.safe_load_all(file.read_text()):
                if document is not None:
                    yield document


def kubeconfig(
    server: str, ca_cert: Path, token: str, *, user: str, namespace: str = "default"
) -> dict[str, Any]:
    """A kubeconfig with one context: `server` trusted through `ca_cert`, `token` as `user`."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "cloudjob-test",
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_cert.read_bytes()).decode(),
                },
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {
                "name": user,
                "context": {"cluster": "cloudjob-test", "user": user, "namespace": namespace},
            }
        ],
        "current-context": user,
        "preferences": {},
    }


def established(crd: Mapping[str, Any]) -> bool:
    # A CRD just created may carry `conditions: null` until its controller looks at it.
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


class ControlPlane:
    """etcd + kube-apiserver (+ kube-controller-manager) on 127.0.0.1. See the module
    docstring. `work_dir`: where data, certificates, logs and kubeconfigs go (default: a
    temporary directory removed on stop). `event_ttl`: seconds the API server keeps an
    Event (default its own, one hour)."""

    def __init__(
        self,
        work_dir: Path | None = None,
        *,
        controller_manager: bool = True,
        binaries: KubeBinaries | None = None,
        event_ttl: int | None = None,
    ) -> None:
        self._own_dir = work_dir is None
        self._event_ttl = event_ttl
        self.work_dir = work_dir or Path(tempfile.mkdtemp(prefix="cloudjob-kube-"))
        self._with_controller_manager = controller_manager
        self._binaries = binaries
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self.admin_token = secrets.token_hex(16)
        self.port = 0
        self._etcd_url = ""
        self._pki: Pki | None = None
        self.admin_kubeconfig = self.work_dir / "admin.kubeconfig"
        self.audit_log = self.work_dir / "audit.log"

    # --- lifecycle -----------------------------------------------------------

    @property
    def binaries(self) -> KubeBinaries:
        if self._binaries is None:
            self._binaries = find_binaries()
        return self._binaries

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_cert(self) -> Path:
        if self._pki is None:
            raise KubeUnavailable("the control plane is not started")
        return self._pki.ca_cert

    def start(self, timeout: float = 120.0) -> Self:
        binaries = self.binaries
        self.work_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._pki = make_pki(self.work_dir / "pki")
            self._etcd_url = self._start_etcd(binaries)
            self._start_apiserver(binaries, self._etcd_url)
            self._wait_ready(timeout)
            self.write_kubeconfig(self.admin_kubeconfig, self.admin_token, user="admin")
            if self._with_controller_manager:
                self._start_controller_manager(binaries)
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, name: str, argv: Sequence[str]) -> None:
        log = open(self.work_dir / f"{name}.log", "wb")  # noqa: SIM115 - owned by the child
        self._processes[name] = subprocess.Popen(
            list(argv), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    def _log_tail(self, name: str, lines: int = 30) -> str:
        path = self.work_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def _check_alive(self) -> None:
        for name, process in self._processes.items():
            if process.poll() is not None:
                raise KubeUnavailable(
                    f"{name} exited with {process.returncode}:\n{self._log_tail(name)}"
                )

    def _start_etcd(self, binaries: KubeBinaries) -> str:
        client, peer = free_port(), free_port()
        client_url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
        self._spawn(
            "etcd",
            [
                str(binaries.etcd),
                f"--data-dir={self.work_dir / 'etcd'}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )
        return client_url

    def _start_apiserver(self, binaries: KubeBinaries, etcd_url: str) -> None:
        assert self._pki is not None
        # A restarted API server keeps its port: clients and kubeconfigs still name it.
        self.port = self.port or free_port()
        tokens = self.work_dir / "tokens.csv"
        tokens.write_text(f'{self.admin_token},admin,admin,"system:masters"\n')
        tokens.chmod(0o600)
        policy = self.work_dir / "audit-policy.yaml"
        policy.write_text(yaml.safe_dump(AUDIT_POLICY))
        self._spawn(
            "kube-apiserver",
            [
                str(binaries.apiserver),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                # The default reconciler refuses a loopback address for the kubernetes service.
                "--endpoint-reconciler-type=none",
                f"--secure-port={self.port}",
                f"--tls-cert-file={self._pki.serving_cert}",
                f"--tls-private-key-file={self._pki.serving_key}",
                f"--token-auth-file={tokens}",
                "--authorization-mode=RBAC",
                f"--service-account-issuer={self.url}",
                f"--service-account-key-file={self._pki.service_account_public}",
                f"--service-account-signing-key-file={self._pki.service_account_key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--disable-admission-plugins=ServiceAccount",
                "--allow-privileged=true",
                f"--audit-policy-file={policy}",
                f"--audit-log-path={self.audit_log}",
                f"--cert-dir={self.work_dir / 'certs'}",
                *([f"--event-ttl={self._event_ttl}s"] if self._event_ttl is not None else []),
                "--v=1",
            ],
        )

    def _start_controller_manager(self, binaries: KubeBinaries) -> None:
        # Only what a test cluster needs: deleting namespaces and collecting garbage.
        self._spawn(
            "kube-controller-manager",
            [
                str(binaries.controller_manager),
                f"--kubeconfig={self.admin_kubeconfig}",
                "--controllers=namespace-controller,garbage-collector-controller",
                "--leader-elect=false",
                "--secure-port=0",
                "--concurrent-gc-syncs=5",
                "--v=1",
            ],
        )

    def _ssl(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_cert))

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        request = urllib.request.Request(
            f"{self.url}/readyz", headers={"Authorization": f"Bearer {self.admin_token}"}
        )
        last = ""
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                with urllib.request.urlopen(request, timeout=5, context=self._ssl()) as reply:
                    if reply.status == 200:
                        return
            except urllib.error.HTTPError as error:
                last = error.read().decode(errors="replace")[-500:]
            except OSError as error:
                last = str(error)
            time.sleep(0.2)
        raise KubeUnavailable(
            f"kube-apiserver not ready within {timeout}s ({last})\n"
            f"{self._log_tail('kube-apiserver')}"
        )

    def kill_apiserver(self) -> None:
        """Kill the API server alone (SIGKILL; etcd and the data stay): clients get
        refused connections until `start_apiserver`."""
        process = self._processes.pop("kube-apiserver", None)
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def start_apiserver(self, timeout: float = 120.0) -> None:
        """Start the API server again on its port; returns once it is ready."""
        if "kube-apiserver" in self._processes:
            raise KubeUnavailable("the API server is running already")
        self._start_apiserver(self.binaries, self._etcd_url)
        self._wait_ready(timeout)

    def _terminate(self, name: str) -> None:
        process = self._processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop(self) -> None:
        # The API server first, so that nothing writes to etcd while it goes.
        for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
            self._terminate(name)
        if self._own_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- access ----------------------------------------------------------------

    def write_kubeconfig(
        self, path: Path, token: str, *, user: str, namespace: str = "default"
    ) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            yaml.safe_dump(
                kubeconfig(self.url, self.ca_cert, token, user=user, namespace=namespace)
            )
        )
        path.chmod(0o600)
        return path

    def client(self, token: str | None = None, *, namespace: str = "default") -> KubeClient:
        """A client authenticated as admin, or with `token`."""
        return KubeClient(
            self.url,
            token=token or self.admin_token,
            ssl_context=self._ssl(),
            namespace=namespace,
        )

    def service_account_token(self, namespace: str, name: str, *, seconds: int = 86400) -> str:
        """A token of the ServiceAccount `namespace/name` (created if missing), as the
        kubelet would mount it: through the TokenRequest API."""
        admin = self.client()
        account = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace},
        }
        try:
            admin.create(account)
        except ApiError as error:
            if error.reason != "AlreadyExists":
                raise
        granted = admin.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": seconds},
            },
        )
        token: str = granted["status"]["token"]
        return token

    def install_crds(
        self, paths: Iterable[Path | str] = (PROJECT_CRDS,), timeout: float = 30.0
    ) -> None:
        """Create or update the CRDs in `paths` and wait until each is Established."""
        admin = self.client()
        names = []
        for manifest in read_manifests(paths):
            admin.apply(manifest)
            names.append(manifest["metadata"]["name"])
        for name in names:
            admin.wait_for(
                partial(admin.get, CRD_VERSION, "CustomResourceDefinition", name),
                established,
                within=timeout,
            )

    def kubectl(
        self,
        *args: str,
        kubeconfig: Path | None = None,
        input: str | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run the matching kubectl against this control plane (admin unless told)."""
        return subprocess.run(
            [
                str(self.binaries.kubectl),
                f"--kubeconfig={kubeconfig or self.admin_kubeconfig}",
                *args,
            ],
            input=input,
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    def audit_mark(self) -> int:
        """A position in the audit log: `audit(since=mark)` returns what came after it."""
        return self.audit_log.stat().st_size if self.audit_log.exists() else 0

    def audit(self, *, since: int = 0, user: str | None = None) -> list[dict[str, Any]]:
        """The completed requests the API server has logged after `since` (an
        `audit_mark`), oldest first, optionally only those of `user`."""
        if not self.audit_log.exists():
            return []
        with self.audit_log.open("rb") as log:
            log.seek(since)
            data = log.read()
        # A line still being written has no newline yet.
        complete = data[: data.rfind(b"\n") + 1]
        events = []
        for line in complete.splitlines():
            event: dict[str, Any] = json.loads(line)
            if user is None or event.get("user", {}).get("username") == user:
                events.append(event)
        return events
