"""One emulated Mesos agent: its process lifecycle, its server, and the wiring of its parts.

`Agent` starts and stops the agent's HTTP server, goes down and comes back
(an agent process restart), and routes the master's messages (through the
`Network`) to the part that handles them. The parts, each in its own module
of this package, share one `AgentBooks`:

- `launching.Launcher`: task launches, sandboxes, fetching, real processes;
- `killing.TaskKiller`: KILL of a task;
- `terminating.Terminator`: executor shutdown, (re-)subscription timeouts, exits;
- `reporting.StatusReporter`: status updates until acknowledged;
- `serving.ExecutorApi`: the v1 executor API and `GET /state`;
- `registering.MasterLink`: (re-)registration with the master and pings;
- `recovering.Recovery`: what survives an agent process restart.

Built and driven by LocalMesos; talks to the master only through the Network.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from aiohttp import web

from devcluster.mesos.agent.killing import TaskKiller
from devcluster.mesos.agent.launching import Launcher
from devcluster.mesos.agent.records import AgentBooks
from devcluster.mesos.agent.recovering import Recovery
from devcluster.mesos.agent.registering import MasterLink
from devcluster.mesos.agent.reporting import StatusReporter
from devcluster.mesos.agent.serving import ExecutorApi
from devcluster.mesos.agent.terminating import Terminator
from devcluster.mesos.config import AgentSpec, EmulatorConfig
from devcluster.mesos.network import Network
from devcluster.mesos.processes import Spawner
from devcluster.mesos.protocol import JSON, value
from devcluster.mesos.streams import SHUTDOWN_TIMEOUT

log = logging.getLogger(__name__)


class Agent:
    def __init__(
        self,
        agent_id: str,
        spec: AgentSpec,
        hostname: str,
        work_dir: Path,
        network: Network,
        config: EmulatorConfig,
        spawner: Spawner,
    ) -> None:
        self.agent_id = agent_id
        self.network = network
        self.running = False
        self.shut_down = False
        self.down = False
        self.books = AgentBooks(agent_id, hostname, spec, work_dir)
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._runner: web.AppRunner | None = None
        self._watchdog: asyncio.Task[None] | None = None

        def running() -> bool:
            return self.running

        def serving() -> bool:
            return self.running and not self.down

        books = self.books
        self._reporter = StatusReporter(books, network, config, loop)
        self._terminator = Terminator(books, self._reporter, network, config, loop, running)
        self._launcher = Launcher(
            books, self._reporter, self._terminator, config, loop, spawner, running
        )
        self._killer = TaskKiller(books, self._reporter, self._terminator, config)
        self._api = ExecutorApi(books, self._reporter, network, serving)
        self._link = MasterLink(books, self._reporter, network, config, loop, running)
        self._recovery = Recovery(books, self._reporter, self._terminator)

    # ---------------------------------------------------------------- lifecycle

    @property
    def port(self) -> int:
        return self.books.port

    @property
    def endpoint(self) -> str:
        return self.books.endpoint

    async def start(self) -> None:
        await self._listen(0)
        self.running = True
        self.network.agents[self.agent_id] = self
        self._watchdog = self._loop.create_task(self._link.watch())
        (self.books.work_dir / "slaves" / self.agent_id).mkdir(parents=True, exist_ok=True)

    async def _listen(self, port: int) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/v1/executor", self._api.handle_executor)
        app.router.add_get("/state", self._api.handle_state)
        app.router.add_get("/slave(1)/state", self._api.handle_state)
        app.router.add_get("/version", self._api.handle_version)
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None and isinstance(server, asyncio.base_events.Server)
        self.books.port = int(server.sockets[0].getsockname()[1])

    async def go_down(self) -> None:
        """The agent process stops (its containers run on); see `come_back`.

        Every executor connection drops, and what the agent knew of frameworks
        without checkpointing is lost. The caller keeps the agent off the
        network until it is back.
        """
        self.down = True
        self._recovery.process_stopped()
        if self._runner is not None:
            await self._runner.cleanup()

    async def come_back(self) -> None:
        """The agent process starts again on the same port and recovers (`Slave::recover`).

        The containers of frameworks without checkpointing are orphans and are
        destroyed; executors of checkpointing frameworks get
        `executor_reregistration_timeout` to subscribe again, and those that do
        not are destroyed, their tasks TASK_GONE (`Slave::reregisterExecutorTimeout`).
        Command tasks (run by the agent itself here) carry on.
        """
        await self._listen(self.port)
        self.down = False
        self._recovery.process_started()

    async def stop(self) -> None:
        """Kill every process and close the server (host failure or cluster stop)."""
        self.running = False
        self.registered = False
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._reporter.updates.close()
        await self._launcher.started()
        children = self._terminator.destroy_all()
        if self._runner is not None:
            await self._runner.cleanup()
        # Reap the children so none outlives the agent as a zombie.
        if children:
            await asyncio.wait([child.exited for child in children], timeout=5.0)

    # ------------------------------------------------------- master connection

    @property
    def registered(self) -> bool:
        return self._link.registered

    @registered.setter
    def registered(self, registered: bool) -> None:
        self._link.registered = registered

    def registration(self) -> asyncio.Future[None]:
        """Resolves once the agent is registered with the current master."""
        return self._link.registration()

    def register(self) -> None:
        self._link.register()

    def master_changed(self) -> None:
        self._link.master_changed()

    # ------------------------------------------- messages from the master (Network)

    def on_registered(self) -> None:
        self._link.on_registered()

    def on_ping(self) -> None:
        self._link.on_ping()

    def on_shutdown(self, message: str) -> None:
        """The master refused us (marked gone): kill everything and stop."""
        log.warning("agent %s shutting down: %s", self.agent_id, message)
        self.shut_down = True
        self._link.refused(message)
        self._loop.create_task(self.stop())

    def run_task(self, framework_info: JSON, task_info: JSON) -> None:
        self._launcher.run_task(framework_info, task_info)

    def kill_task(self, framework_id: str, task_id: str, kill_policy: JSON | None) -> None:
        self._killer.kill_task(framework_id, task_id, kill_policy)

    def shutdown_executor(self, framework_id: str, executor_id: str) -> None:
        self._terminator.shutdown_executor(framework_id, executor_id)

    def shutdown_framework(self, framework_id: str) -> None:
        self._terminator.shutdown_framework(framework_id)

    def update_framework(self, framework_info: JSON) -> None:
        """The master's word that a framework (re-)subscribed (`Slave::updateFramework`):
        its info is taken, and every pending status update is resent at once instead
        of at its retry, so a failed-over scheduler hears what its predecessor left
        unacknowledged without waiting out the backoff."""
        framework = self.books.frameworks.get(value(framework_info.get("id")) or "")
        if framework is not None:
            framework.info = framework_info
            self._reporter.updates.flush()

    def acknowledge(self, framework_id: str, task_id: str, status_uuid: str) -> None:
        self._reporter.acknowledge(framework_id, task_id, status_uuid)

    def reconcile_unknown_tasks(self, framework_info: JSON, task_ids: list[str]) -> None:
        self._reporter.reconcile_unknown_tasks(framework_info, task_ids)

    def framework_message(self, framework_id: str, executor_id: str, data: str) -> None:
        self._api.deliver_message(framework_id, executor_id, data)

    # ------------------------------------------------------------ fault hooks

    def pending_updates(self) -> dict[tuple[str, str], list[str]]:
        return self._reporter.updates.pending()

    def crash_executor(self, executor_id: str) -> bool:
        return self._terminator.crash(executor_id)
