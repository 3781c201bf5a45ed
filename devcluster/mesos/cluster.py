"""LocalMesos: an emulated Mesos master and agents in one process, with fault injection.

A development and test tool, not a production Mesos. The master and every agent
run on one asyncio loop in a daemon thread; their HTTP servers listen on
127.0.0.1 only. The synchronous methods here are what tests and the `dev`
stack call; each runs its work on the loop and waits for it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import shutil
import tempfile
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from devcluster.mesos.agent import Agent
from devcluster.mesos.config import AgentSpec, EmulatorConfig
from devcluster.mesos.containers import ContainerReaper
from devcluster.mesos.faults import DROP_AT_AGENT, DROP_AT_MASTER, Faults, LaunchDrop
from devcluster.mesos.master import Master, Registry
from devcluster.mesos.network import Network
from devcluster.mesos.processes import Spawner
from devcluster.mesos.protocol import JSON
from devcluster.mesos.standby import StandbyMaster
from devcluster.mesos.state import master_state
from devcluster.mesos.zk import ZooKeeperRegistration

log = logging.getLogger(__name__)

BANNER = (
    "Local Mesos emulator (development/test tool, NOT a production Mesos): "
    "master and agents are emulated in one process on 127.0.0.1"
)

T = TypeVar("T")


@dataclass(frozen=True)
class AgentHandle:
    """What tests need to know about one agent."""

    agent_id: str
    spec: AgentSpec
    hostname: str
    endpoint: str


class LocalMesos:
    def __init__(
        self,
        agents: list[AgentSpec] | None = None,
        zk_hosts: str | None = None,
        zk_path: str = "/mesos",
        work_dir: Path | None = None,
        heartbeat_interval: float = 15.0,
        offer_refresh: float = 1.0,
        executor_registration_timeout: float = 60.0,
        *,
        port: int = 0,
        executor_shutdown_grace_period: float = 5.0,
        executor_reregistration_timeout: float = 2.0,
        recovery_timeout: float = 900.0,
        agent_ping_timeout: float = 15.0,
        max_agent_ping_timeouts: int = 5,
        agent_reregister_timeout: float = 600.0,
        status_update_retry: float = 10.0,
        status_update_retry_max: float = 600.0,
        default_refuse_seconds: float = 5.0,
        command_kill_grace_period: float = 3.0,
    ) -> None:
        self.config = EmulatorConfig(
            heartbeat_interval=heartbeat_interval,
            offer_refresh=offer_refresh,
            default_refuse_seconds=default_refuse_seconds,
            executor_registration_timeout=executor_registration_timeout,
            executor_shutdown_grace_period=executor_shutdown_grace_period,
            executor_reregistration_timeout=executor_reregistration_timeout,
            recovery_timeout=recovery_timeout,
            agent_ping_timeout=agent_ping_timeout,
            max_agent_ping_timeouts=max_agent_ping_timeouts,
            agent_reregister_timeout=agent_reregister_timeout,
            status_update_retry=status_update_retry,
            status_update_retry_max=status_update_retry_max,
            command_kill_grace_period=command_kill_grace_period,
        )
        self._initial_specs = list(agents) if agents is not None else [AgentSpec()]
        self._zk = ZooKeeperRegistration(zk_hosts, zk_path) if zk_hosts else None
        self._own_work_dir = work_dir is None
        self.work_dir = (
            Path(work_dir)
            if work_dir is not None
            else Path(tempfile.mkdtemp(prefix="local-mesos-"))
        )
        self._port = port
        self.cluster_id = str(uuid.uuid4())
        self._agent_numbers = itertools.count(1)
        self.faults = Faults()
        self._registry = Registry()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._network: Network | None = None
        self._reaper: ContainerReaper | None = None
        self._spawner: Spawner | None = None
        self._master: Master | None = None
        self._handles: dict[str, AgentHandle] = {}
        self._standbys: list[StandbyMaster] = []
        self._leader_up = True

    # ---------------------------------------------------------------- plumbing

    def _run(self, work: Callable[[], Awaitable[T]], timeout: float = 60.0) -> T:
        if self._loop is None:
            raise RuntimeError("LocalMesos is not started; call start() first")

        async def wrapper() -> T:
            return await work()

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(timeout)

    def _call(self, work: Callable[[], T], timeout: float = 60.0) -> T:
        async def wrapped() -> T:
            return work()

        return self._run(wrapped, timeout)

    @property
    def master(self) -> Master:
        if self._master is None:
            raise RuntimeError("LocalMesos is not started; call start() first")
        return self._master

    @property
    def network(self) -> Network:
        if self._network is None:
            raise RuntimeError("LocalMesos is not started; call start() first")
        return self._network

    # ---------------------------------------------------------------- lifecycle

    def start(self, timeout: float = 60.0) -> LocalMesos:
        if self._loop is not None:
            raise RuntimeError("LocalMesos is already started")
        log.warning(BANNER)
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="local-mesos", daemon=True)
        self._thread.start()

        async def boot() -> None:
            self._network = Network(asyncio.get_running_loop())
            self._reaper = ContainerReaper(asyncio.get_running_loop())
            self._spawner = Spawner(
                asyncio.get_running_loop(), self._reaper, self.faults.process_starts
            )
            master = Master(self._network, self.config, self.faults, self._registry, self._port)
            await master.start()
            self._master = master
            self._port = master.port

        self._run(boot, timeout)
        if self._zk is not None:
            self._zk.register(self.master.master_info())
        for spec in self._initial_specs:
            self.add_agent(spec, timeout=timeout)
        log.warning(
            "Local Mesos master listening on %s with %d agents",
            self.master_address,
            len(self._handles),
        )
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        if self._zk is not None:
            self._zk.withdraw()
        self.faults.process_starts.set()  # agents stopping wait for the starts under way

        async def shutdown() -> None:
            for standby in self._standbys:
                await standby.stop()
            for agent in list(self.network.agents.values()):
                await agent.stop()
            if self._master is not None:
                await self._master.stop()

        try:
            self._run(shutdown, 60.0)
        finally:
            loop = self._loop
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(10)
            loop.close()
            self._loop = None
            if self._spawner is not None:
                self._spawner.close()
                self._spawner = None
            if self._own_work_dir:
                shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> LocalMesos:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------- addresses

    @property
    def master_address(self) -> str:
        return self.master.address

    @property
    def master_url(self) -> str:
        return f"http://{self.master.address}"

    @property
    def zk_url(self) -> str | None:
        if self._zk is None:
            return None
        return f"zk://{self._zk.hosts}{self._zk.path}"

    @property
    def agents(self) -> list[AgentHandle]:
        return list(self._handles.values())

    def agent(self, agent_id: str) -> AgentHandle:
        try:
            return self._handles[agent_id]
        except KeyError:
            raise KeyError(
                f"no agent {agent_id!r}; known agents: {sorted(self._handles)}"
            ) from None

    def state(self) -> JSON:
        return self._call(lambda: master_state(self.master))

    # ----------------------------------------------------------------- agents

    def add_agent(self, spec: AgentSpec | None = None, timeout: float = 60.0) -> AgentHandle:
        spec = spec or AgentSpec()
        number = next(self._agent_numbers)
        agent_id = f"{self.cluster_id}-S{number}"
        hostname = spec.hostname or f"agent-{number}"

        async def create() -> Agent:
            assert self._spawner is not None
            agent = Agent(
                agent_id, spec, hostname, self.work_dir, self.network, self.config, self._spawner
            )
            await agent.start()
            agent.register()
            await asyncio.wait_for(agent.registration(), timeout)
            return agent

        agent = self._run(create, timeout + 5)
        handle = AgentHandle(agent_id, spec, hostname, agent.endpoint)
        self._handles[agent_id] = handle
        return handle

    def _live_agent(self, agent_id: str) -> Agent:
        self.agent(agent_id)
        agent = self.network.agents.get(agent_id)
        if agent is None:
            raise KeyError(f"agent {agent_id} is not running (killed or shut down)")
        return agent

    def kill_agent(self, agent_id: str) -> None:
        """The agent's host dies: its processes are killed and its socket closes."""

        async def kill() -> None:
            agent = self._live_agent(agent_id)
            self.network.agents.pop(agent_id, None)
            await agent.stop()
            self.master.agent_exited(agent_id)

        self._run(kill)

    def restart_agent(self, agent_id: str, downtime: float = 0.0, timeout: float = 60.0) -> None:
        """The agent process restarts: `bring_agent_down`, `downtime` seconds, then
        `bring_agent_up` (which returns once the agent re-registered)."""
        if downtime < 0:
            raise ValueError(f"downtime must be >= 0 seconds, got {downtime}")
        self.bring_agent_down(agent_id)
        threading.Event().wait(downtime)
        self.bring_agent_up(agent_id, timeout)

    def bring_agent_down(self, agent_id: str) -> None:
        """The agent process stops (not its host: tasks and executors run on).

        Executor connections drop and the master sees the agent disconnect:
        tasks of frameworks without checkpointing become TASK_LOST. After
        `agent_ping_timeout` x `max_agent_ping_timeouts` the master marks the
        agent unreachable, as for a partition.
        """

        async def down() -> None:
            agent = self._live_agent(agent_id)
            if agent.down:
                raise RuntimeError(f"agent {agent_id} is down already")
            self.network.partitioned.add(agent_id)
            self.master.agent_exited(agent_id)
            await agent.go_down()

        self._run(down)

    def bring_agent_up(self, agent_id: str, timeout: float = 60.0) -> None:
        """The agent process starts again on its port, recovers (see Agent.come_back)
        and re-registers; returns once the master has it back."""

        async def up() -> None:
            agent = self._live_agent(agent_id)
            if not agent.down:
                raise RuntimeError(f"agent {agent_id} is not down")
            await agent.come_back()
            self.network.partitioned.discard(agent_id)
            agent.registered = False
            agent.register()
            await asyncio.wait_for(agent.registration(), timeout)

        self._run(up, timeout + 5)

    def partition_agent(self, agent_id: str) -> None:
        """Cut the agent off from the master; its tasks keep running."""

        def cut() -> None:
            self._live_agent(agent_id)
            self.network.partitioned.add(agent_id)

        self._call(cut)

    def heal_agent(self, agent_id: str, timeout: float = 60.0) -> None:
        """Restore the link and wait until the agent re-registered (or was told to shut down)."""

        async def heal() -> None:
            agent = self._live_agent(agent_id)
            self.network.partitioned.discard(agent_id)
            agent.registered = False
            agent.register()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while not agent.shut_down and not (agent.registered and agent_id in self.master.agents):
                if loop.time() > deadline:
                    raise TimeoutError(f"agent {agent_id} did not re-register within {timeout}s")
                await asyncio.sleep(0.02)
                if not agent.registered:
                    agent.register()

        self._run(heal, timeout + 5)

    def mark_agent_gone(self, agent_id: str) -> None:
        self.agent(agent_id)
        self._call(lambda: self.master.mark_gone(agent_id))

    def crash_executor(self, agent_id: str, executor_id: str) -> None:
        def crash() -> None:
            if not self._live_agent(agent_id).crash_executor(executor_id):
                raise KeyError(f"no running executor {executor_id!r} on agent {agent_id}")

        self._call(crash)

    # ----------------------------------------------------------------- master

    def restart_master(self, timeout: float = 60.0) -> None:
        """Crash the master and start a new one on the same port.

        Scheduler streams drop; schedulers must resubscribe (failover timers
        apply). Returns once every reachable agent has re-registered.
        """
        if self._zk is not None:
            self._zk.withdraw()

        async def restart() -> None:
            old = self.master
            await old.stop()
            self._leader_up = False
            master = Master(self.network, self.config, self.faults, self._registry, old.port)
            await master.start()
            self._master = master
            self._leader_up = True
            for agent in self.network.agents.values():
                agent.master_changed()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while True:
                waiting = [
                    a
                    for a in self.network.agents.values()
                    if self.network.reachable(a.agent_id) and a.running and not a.registered
                ]
                if not waiting:
                    break
                if loop.time() > deadline:
                    raise TimeoutError(
                        f"agents {[a.agent_id for a in waiting]} did not re-register"
                    )
                await asyncio.sleep(0.02)

        self._run(restart, timeout + 5)
        if self._zk is not None:
            self._zk.register(self.master.master_info())

    def add_standby_master(self) -> str:
        """Start a non-leading master; returns its "127.0.0.1:PORT".

        It redirects scheduler calls to the leader (307, protocol-relative
        Location) and answers 503 "No leader elected" while the leader restarts.
        """

        async def start() -> StandbyMaster:
            standby = StandbyMaster(lambda: self._master if self._leader_up else None)
            await standby.start()
            return standby

        standby = self._run(start)
        self._standbys.append(standby)
        return standby.address

    # ----------------------------------------------------------------- faults

    def drop_next_launch(self, task_id_prefix: str = "", where: str = DROP_AT_MASTER) -> None:
        """Lose the next launch whose task id starts with the prefix (ACCEPT still gets 202).

        where="master": the master never learns of the task (reconciliation
        answers TASK_UNKNOWN/TASK_GONE/TASK_LOST); where="agent": the master
        records it STAGING but the agent never gets it.
        """
        if where not in (DROP_AT_MASTER, DROP_AT_AGENT):
            raise ValueError(
                f"where must be {DROP_AT_MASTER!r} or {DROP_AT_AGENT!r}, got {where!r}"
            )
        self._call(lambda: self.faults.launch_drops.append(LaunchDrop(task_id_prefix, where)))

    def delay_status_updates(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"delay must be >= 0 seconds, got {seconds}")
        self._call(lambda: setattr(self.faults, "update_delay", float(seconds)))

    def duplicate_status_updates(self, enabled: bool = True) -> None:
        self._call(lambda: setattr(self.faults, "duplicate_updates", bool(enabled)))

    def reorder_status_updates(self, enabled: bool = True) -> None:
        self._call(lambda: setattr(self.faults, "reorder_updates", bool(enabled)))

    def split_stream_records(self, chunk_size: int) -> None:
        """Cut new scheduler streams into `chunk_size`-byte chunks (0 turns it off),
        so records straddle chunk boundaries as proxies may make them."""
        if chunk_size < 0:
            raise ValueError(f"chunk_size must be >= 0, got {chunk_size}")
        self._call(lambda: setattr(self.faults, "stream_chunk_size", int(chunk_size)))

    def hold_process_starts(self, held: bool = True) -> None:
        """Hold the agents' new processes before they start (a slow container launch),
        or let the held ones start. Launches go on meanwhile: their tasks are
        TASK_STARTING and can be killed or shut down; an agent that stops waits for
        the held starts."""
        if held:
            self.faults.process_starts.clear()
        else:
            self.faults.process_starts.set()

    def rescind_offer(self, offer_id: str) -> bool:
        return self._call(lambda: self.master.rescind_offer(offer_id))

    def rescind_all_offers(self) -> int:
        def rescind() -> int:
            return sum(
                1 for offer_id in list(self.master.offers) if self.master.rescind_offer(offer_id)
            )

        return self._call(rescind)

    def pending_status_updates(self, agent_id: str) -> dict[str, list[str]]:
        """Per task id, the states of the agent's status updates that the framework
        has not acknowledged yet, oldest first (the first one is being sent)."""

        def pending() -> dict[str, list[str]]:
            updates = self._live_agent(agent_id).pending_updates()
            return {task_id: states for (_, task_id), states in sorted(updates.items())}

        return self._call(pending)

    def subscriptions(self) -> list[tuple[float, str, str]]:
        """Every SUBSCRIBE the masters accepted, restarts included: (time, framework id,
        the scheduler's FrameworkInfo.hostname), oldest first."""
        return self._call(lambda: list(self._registry.subscriptions))

    def calls(self) -> list[tuple[float, str, str, str]]:
        """Every call but SUBSCRIBE the masters accepted, restarts included: (time,
        framework id, the FrameworkInfo.hostname of the subscription it came on, call
        type), oldest first."""
        return self._call(lambda: list(self._registry.calls))

    def outstanding_offers(self) -> list[str]:
        return self._call(lambda: sorted(self.master.offers))

    def run_on_loop(self, work: Callable[[], Any]) -> Any:
        """Run a callable on the emulator's loop (for white-box checks in tests)."""
        return self._call(work)
