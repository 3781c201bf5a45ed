"""The controller's HTTP endpoints: `/healthz`, `/readyz` and Prometheus `/metrics`.

They serve from their own threads (stdlib and prometheus_client WSGI servers), not
from the controller's event loop: they stay up whatever the loop is doing — a leader
stopping its kopf operator, a standby waiting — and the operator's shutdown (which
cancels every task created on its loop while it ran) never touches them.

- `/healthz`: 200 while the process runs (liveness).
- `/readyz`: 200 with the role (`leader` or `standby`) once connected to ZooKeeper
  and contending; 503 while starting, stopping or cut off from ZooKeeper.
- `/api/v1/...` (health port): the read-only history API (`controller.api`), when
  the controller passes one.
- `/console/...` (health port): the web console's files (`controller.api.console`),
  when the controller passes them.
- `/metrics`: the controller's explicit `CollectorRegistry`.
Started and stopped by `controller.app.Controller`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from prometheus_client import CollectorRegistry, start_http_server

from controller.api.console import PREFIX, Asset


@dataclass(frozen=True)
class Health:
    """A snapshot of the controller, as `/readyz` reports it."""

    role: str
    zookeeper: str
    ready: bool
    identity: str
    terms: int
    history: str = "idle"
    """Why the run history is not being written (scheduling goes on); else "ok", or
    "idle" while there was nothing to write yet."""


ApiAnswer = Callable[[str, str, Mapping[str, str]], tuple[int, dict[str, Any]]]
"""Answers a request (method, `/api/...` path, query): status code and JSON body."""


ConsoleAnswer = Callable[[str], Asset]
"""Answers a GET of a `/console` path with a file of the console."""


def _handler(
    snapshot: Callable[[], Health], api: ApiAnswer | None, console: ConsoleAnswer | None
) -> type[BaseHTTPRequestHandler]:
    class HealthHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            if console is not None and (path == PREFIX or path.startswith(f"{PREFIX}/")):
                self._send(console(path))
            elif api is not None and path.startswith("/api/"):
                self._answer(*api("GET", path, dict(parse_qsl(query))))
            elif path == "/healthz":
                self._answer(200, {"status": "alive"})
            elif path == "/readyz":
                health = snapshot()
                self._answer(200 if health.ready else 503, asdict(health))
            else:
                self._answer(404, {"error": f"no such endpoint {self.path}"})

        def do_POST(self) -> None:
            path, _, query = self.path.partition("?")
            if api is not None and path.startswith("/api/"):
                self._answer(*api("POST", path, dict(parse_qsl(query))))
            else:
                self._answer(404, {"error": f"no such endpoint {self.path}"})

        def _answer(self, code: int, body: dict[str, Any]) -> None:
            self._send(Asset(code, "application/json", json.dumps(body).encode()))

        def _send(self, asset: Asset) -> None:
            self.send_response(asset.status)
            self.send_header("Content-Type", asset.content_type)
            self.send_header("Content-Length", str(len(asset.body)))
            if asset.location is not None:
                self.send_header("Location", asset.location)
            self.end_headers()
            self.wfile.write(asset.body)

        def log_message(self, format: str, *args: Any) -> None:
            """Probes every few seconds are not worth a log line each."""

    return HealthHandler


class Endpoints:
    """Both servers; ports of 0 pick free ports, reported by `health_port`/`metrics_port`."""

    def __init__(
        self,
        *,
        host: str,
        health_port: int,
        metrics_port: int,
        registry: CollectorRegistry,
        snapshot: Callable[[], Health],
        api: ApiAnswer | None = None,
        console: ConsoleAnswer | None = None,
    ) -> None:
        self._host = host
        self._health_port = health_port
        self._metrics_port = metrics_port
        self._registry = registry
        self._snapshot = snapshot
        self._api = api
        self._console = console
        self._servers: list[Any] = []

    def start(self) -> None:
        health = ThreadingHTTPServer(
            (self._host, self._health_port), _handler(self._snapshot, self._api, self._console)
        )
        health.daemon_threads = True
        threading.Thread(target=health.serve_forever, name="health-endpoint", daemon=True).start()
        self._servers.append(health)
        metrics, _ = start_http_server(self._metrics_port, self._host, registry=self._registry)
        self._servers.append(metrics)

    @property
    def health_port(self) -> int:
        return int(self._servers[0].server_address[1])

    @property
    def metrics_port(self) -> int:
        return int(self._servers[1].server_address[1])

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()
