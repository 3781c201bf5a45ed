"""Starts and stops the Kubernetes API emulator as a real HTTP server on 127.0.0.1.

`KubeApiServer` serves an `ApiHandler` on a free loopback port with aiohttp's low-level
server (not `kmock.Server`, which also patches aiohttp's resolver process-wide and must be
exited in strict LIFO order). It runs either inside the caller's event loop
(`async with KubeApiServer(...)`) or on its own loop in a background thread
(`with KubeApiServer(...)` / `start()` and `stop()`), which suits sync tests and keeps the
server responsive while the test's own loop is busy. On start it registers the given CRD
manifests and writes a kubeconfig naming the server, for kopf, the `kubernetes` package
and kubectl. Used by the tests and the `dev` stack; not a production component.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp.web
import yaml

from devcluster.kube.clients import AsyncKubeClient, KubeClient
from devcluster.kube.resources import CRDS, ResourceType
from devcluster.kube.serving import ApiHandler
from devcluster.kube.storage import Storage

PROJECT_CRDS = Path(__file__).resolve().parents[2] / "crds"


class KubeApiServerError(RuntimeError):
    """The emulator could not start: a manifest is unreadable or invalid, or no port."""


def read_manifests(paths: Iterable[Path | str]) -> Iterator[dict[str, Any]]:
    """Every YAML document in the given files, and in the `*.yaml`/`*.yml` files of the
    given directories (sorted), skipping empty documents."""
    for path in map(Path, paths):
        files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")]) if path.is_dir() else [path]
        for file in files:
            try:
                documents = list(yaml.safe_load_all(file.read_text()))
            except (OSError, yaml.YAMLError) as error:
                raise KubeApiServerError(f"cannot read manifest {file}: {error}") from error
            for document in documents:
                if document is None:
                    continue
                if not isinstance(document, dict):
                    raise KubeApiServerError(f"{file}: a manifest must be a mapping")
                yield document


def kubeconfig(
    url: str, *, namespace: str = "default", name: str = "cloudjob-emulator"
) -> dict[str, Any]:
    """A kubeconfig with one context for the emulator (plain HTTP, no credentials)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": url}}],
        "users": [{"name": name, "user": {}}],
        "contexts": [
            {"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}
        ],
        "current-context": name,
        "preferences": {},
    }


class KubeApiServer:
    """The emulated Kubernetes API on http://127.0.0.1:PORT, with CRDs registered.

    `crds`: CRD manifest files or directories (e.g. `PROJECT_CRDS`). `kubeconfig_path`:
    where to write the kubeconfig (default: a temporary file removed on stop).
    `extra_types`: more built-in resource types to serve. `keep_requests`: how many
    requests the KMock handler's log keeps (None: all).
    """

    def __init__(
        self,
        *,
        crds: Iterable[Path | str] = (),
        port: int = 0,
        kubeconfig_path: Path | str | None = None,
        namespace: str = "default",
        history: int = 10_000,
        extra_types: Iterable[ResourceType] = (),
        keep_requests: int | None = 10_000,
    ) -> None:
        self._crds = [Path(path) for path in crds]
        self._port = port
        self._namespace = namespace
        self._history = history
        self._extra_types = tuple(extra_types)
        self._keep_requests = keep_requests
        self._own_dir: Path | None = None
        self.kubeconfig_path = Path(kubeconfig_path) if kubeconfig_path else None
        self._handler: ApiHandler | None = None
        self._runner: aiohttp.web.ServerRunner | None = None
        self._url: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop_requested: asyncio.Event | None = None

    # Facts about the running server -----------------------------------------------------

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the API emulator is not running")
        return self._url

    @property
    def handler(self) -> ApiHandler:
        """The KMock handler: its request log, and the DSL for injecting faults."""
        if self._handler is None:
            raise RuntimeError("the API emulator is not running")
        return self._handler

    @property
    def internal_errors(self) -> list[Exception]:
        """Exceptions the emulator raised while serving (each was answered with a 500)."""
        return list(self.handler.errors)

    def client(self) -> KubeClient:
        """A synchronous client over HTTP (for sync tests and scripts)."""
        return KubeClient(self.url)

    def async_client(self) -> AsyncKubeClient:
        """An asyncio client over HTTP (for async tests; close it with `await c.close()`)."""
        return AsyncKubeClient(self.url)

    # In the caller's event loop ---------------------------------------------------------

    async def __aenter__(self) -> Self:
        storage = Storage(history=self._history, extra_types=self._extra_types)
        for manifest in read_manifests(self._crds):
            if manifest.get("kind") != CRDS.kind:
                raise KubeApiServerError(
                    f"only CustomResourceDefinitions can be preloaded, got {manifest.get('kind')}"
                    f" {manifest.get('metadata', {}).get('name')!r}"
                )
            try:
                storage.create(CRDS, None, manifest)
            except Exception as error:
                raise KubeApiServerError(
                    f"CRD {manifest.get('metadata', {}).get('name')!r} is invalid: {error}"
                ) from error
        handler = ApiHandler(storage=storage, keep_requests=self._keep_requests)
        await handler.__aenter__()
        server = aiohttp.web.Server(handler, handler_cancellation=True, access_log=None)
        runner = aiohttp.web.ServerRunner(server, shutdown_timeout=1.0)
        await runner.setup()
        site = aiohttp.web.TCPSite(runner, "127.0.0.1", self._port)
        await site.start()
        port = runner.addresses[0][1]
        self._handler, self._runner = handler, runner
        self._url = f"http://127.0.0.1:{port}"
        self._write_kubeconfig()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._handler is not None:
            self._handler.stop_watches()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._handler is not None:
            await self._handler.__aexit__(None, None, None)
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)
            self._own_dir = None
            self.kubeconfig_path = None
        self._runner = None
        self._url = None

    def _write_kubeconfig(self) -> None:
        if self.kubeconfig_path is None:
            self._own_dir = Path(tempfile.mkdtemp(prefix="cloudjob-kube-"))
            self.kubeconfig_path = self._own_dir / "kubeconfig"
        self.kubeconfig_path.parent.mkdir(parents=True, exist_ok=True)
        self.kubeconfig_path.write_text(
            yaml.safe_dump(kubeconfig(self.url, namespace=self._namespace), sort_keys=False)
        )

    # On its own loop in a thread --------------------------------------------------------

    def start(self, timeout: float = 30.0) -> Self:
        """Serve from a background thread; return once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("the API emulator is already running")
        started = threading.Event()
        failure: list[BaseException] = []

        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop_requested = asyncio.Event()
            try:
                await self.__aenter__()
            except BaseException as error:
                failure.append(error)
                started.set()
                return
            started.set()
            try:
                await self._stop_requested.wait()
            finally:
                await self.__aexit__(None, None, None)

        self._thread = threading.Thread(
            target=asyncio.run, args=(serve(),), name="kube-api-emulator", daemon=True
        )
        self._thread.start()
        if not started.wait(timeout):
            raise KubeApiServerError(f"the API emulator did not start within {timeout}s")
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop a server started with `start()` (open watches end, the kubeconfig goes)."""
        if self._thread is None:
            return
        if self._loop is not None and self._stop_requested is not None:
            self._loop.call_soon_threadsafe(self._stop_requested.set)
        self._thread.join(timeout)
        self._thread = None
        self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
