"""One emulated Mesos agent: real processes in sandboxes and the v1 executor API.

Command tasks run under an emulated built-in command executor (the agent
itself spawns `/bin/sh -c value`, or execs `value` with `arguments`, and
reports STARTING, RUNNING and a terminal state from the exit status). Custom
executors (`TaskInfo.executor`) are real processes started with the
environment Mesos gives executors (docs/executor-http-api.md, "Executor
Environment Variables"); they talk to `POST /api/v1/executor` on this agent's
own port. Status updates go through the agent's status update manager to the
master. Used by LocalMesos; talks to the master only through the Network.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from devcluster.mesos import wire
from devcluster.mesos.config import AgentSpec, EmulatorConfig, format_duration
from devcluster.mesos.containers import ContainerReaper
from devcluster.mesos.fetcher import FetchError, fetch_uris
from devcluster.mesos.processes import Child, describe_exit, wait_status
from devcluster.mesos.protocol import (
    JSON,
    MESOS_VERSION,
    REASON_COMMAND_EXECUTOR_FAILED,
    REASON_CONTAINER_LAUNCH_FAILED,
    REASON_EXECUTOR_REGISTRATION_TIMEOUT,
    REASON_EXECUTOR_REREGISTRATION_TIMEOUT,
    REASON_EXECUTOR_TERMINATED,
    REASON_RECONCILIATION,
    REASON_TASK_KILLED_DURING_LAUNCH,
    SOURCE_AGENT,
    SOURCE_EXECUTOR,
    TASK_DROPPED,
    TASK_FAILED,
    TASK_FINISHED,
    TASK_GONE,
    TASK_KILLED,
    TASK_KILLING,
    TASK_LOST,
    TASK_RUNNING,
    TASK_STAGING,
    TASK_STARTING,
    ident,
    is_terminal,
    make_status,
    uuid_error,
    value,
)
from devcluster.mesos.status_updates import StatusUpdateManager
from devcluster.mesos.streams import SHUTDOWN_TIMEOUT, EventStream

if TYPE_CHECKING:
    from devcluster.mesos.network import Network

log = logging.getLogger(__name__)

REGISTERING, RUNNING, TERMINATING, TERMINATED = (
    "REGISTERING",
    "RUNNING",
    "TERMINATING",
    "TERMINATED",
)


def _capabilities(framework_info: JSON) -> set[str]:
    return {
        str(c.get("type")) for c in framework_info.get("capabilities", []) if isinstance(c, dict)
    }


@dataclass
class AgentTask:
    info: JSON
    framework_id: str
    executor_id: str
    is_command: bool
    state: str = TASK_STAGING
    statuses: list[JSON] = field(default_factory=list)

    @property
    def task_id(self) -> str:
        return value(self.info["task_id"]) or ""


@dataclass
class Executor:
    executor_id: str
    framework_id: str
    info: JSON
    is_command: bool
    directory: Path
    container_id: str
    state: str = REGISTERING
    child: Child | None = None
    stream: EventStream | None = None
    queued: dict[str, AgentTask] = field(default_factory=dict)
    launched: dict[str, AgentTask] = field(default_factory=dict)
    terminated: dict[str, AgentTask] = field(default_factory=dict)
    registration_timer: asyncio.TimerHandle | None = None
    pending_termination: tuple[str, str, str] | None = None
    killing: set[str] = field(default_factory=set)

    def live_tasks(self) -> list[AgentTask]:
        return [*self.queued.values(), *self.launched.values()]


@dataclass
class AgentFramework:
    framework_id: str
    info: JSON
    executors: dict[str, Executor] = field(default_factory=dict)
    terminating: bool = False


class Agent:
    def __init__(
        self,
        agent_id: str,
        spec: AgentSpec,
        hostname: str,
        work_dir: Path,
        network: Network,
        config: EmulatorConfig,
        reaper: ContainerReaper,
    ) -> None:
        self.agent_id = agent_id
        self.spec = spec
        self.hostname = hostname
        self.work_dir = work_dir
        self.network = network
        self.config = config
        self._reaper = reaper
        self.running = False
        self.registered = False
        self.shut_down = False
        self.down = False
        self.port = 0
        self.frameworks: dict[str, AgentFramework] = {}
        self._loop = asyncio.get_running_loop()
        self._runner: web.AppRunner | None = None
        self._updates = StatusUpdateManager(
            self._loop,
            self._send_update,
            config.status_update_retry,
            config.status_update_retry_max,
        )
        self._last_ping = self._loop.time()
        self._watchdog: asyncio.Task[None] | None = None
        self._registered_waiters: list[asyncio.Future[None]] = []

    # ---------------------------------------------------------------- lifecycle

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        await self._listen(0)
        self.running = True
        self.network.agents[self.agent_id] = self
        self._watchdog = self._loop.create_task(self._watch_master())
        (self.work_dir / "slaves" / self.agent_id).mkdir(parents=True, exist_ok=True)

    async def _listen(self, port: int) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/v1/executor", self._handle_executor)
        app.router.add_get("/state", self._handle_state)
        app.router.add_get("/slave(1)/state", self._handle_state)
        app.router.add_get("/version", self._handle_version)
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None and isinstance(server, asyncio.base_events.Server)
        self.port = int(server.sockets[0].getsockname()[1])

    async def go_down(self) -> None:
        """The agent process stops (its containers run on); see `come_back`.

        Every executor connection drops, and what the agent knew of frameworks
        without checkpointing is lost. The caller keeps the agent off the
        network until it is back.
        """
        self.down = True
        for framework in self.frameworks.values():
            if not framework.info.get("checkpoint"):
                framework.terminating = True
                self._updates.forget_framework(framework.framework_id)
            for executor in framework.executors.values():
                if executor.stream is not None:
                    executor.stream.abort()
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
        for framework in list(self.frameworks.values()):
            for executor in list(framework.executors.values()):
                if framework.terminating:
                    self._destroy_orphan(executor)
                elif not executor.is_command and executor.state == RUNNING:
                    executor.state = REGISTERING
                    executor.registration_timer = self._loop.call_later(
                        self.config.executor_reregistration_timeout,
                        self._reregistration_timed_out,
                        executor,
                    )

    def _destroy_orphan(self, executor: Executor) -> None:
        if executor.state == TERMINATED:
            return
        executor.state = TERMINATING
        if executor.child is not None and executor.child.running:
            executor.child.kill()
        else:
            self._executor_terminated(executor, None)

    def registration(self) -> asyncio.Future[None]:
        """Resolves once the agent is registered with the current master."""
        waiter: asyncio.Future[None] = self._loop.create_future()
        if self.registered:
            waiter.set_result(None)
        else:
            self._registered_waiters.append(waiter)
        return waiter

    async def stop(self) -> None:
        """Kill every process and close the server (host failure or cluster stop)."""
        self.running = False
        self.registered = False
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._updates.close()
        children: list[Child] = []
        for framework in self.frameworks.values():
            for executor in framework.executors.values():
                if executor.registration_timer is not None:
                    executor.registration_timer.cancel()
                if executor.child is not None:
                    executor.child.kill()
                    children.append(executor.child)
                if executor.stream is not None:
                    executor.stream.abort()
        if self._runner is not None:
            await self._runner.cleanup()
        # Reap the children so none outlives the agent as a zombie.
        if children:
            await asyncio.wait([child.exited for child in children], timeout=5.0)

    def report(self) -> JSON:
        """What an agent tells a master when it (re-)registers."""
        tasks: list[JSON] = []
        executors: list[JSON] = []
        frameworks: list[JSON] = []
        for framework in self.frameworks.values():
            if framework.terminating:
                continue
            frameworks.append(framework.info)
            for executor in framework.executors.values():
                if not executor.is_command and executor.state != TERMINATED:
                    executors.append(executor.info)
                for task in [*executor.live_tasks(), *executor.terminated.values()]:
                    outstanding = self._updates.outstanding_state(
                        framework.framework_id, task.task_id
                    )
                    tasks.append(
                        {
                            "info": task.info,
                            "framework_id": framework.framework_id,
                            "executor_id": None if task.is_command else task.executor_id,
                            "state": task.state,
                            "status_update_state": outstanding or task.state,
                            "statuses": task.statuses,
                        }
                    )
        return {
            "agent_id": self.agent_id,
            "hostname": self.hostname,
            "port": self.port,
            "spec": self.spec,
            "tasks": tasks,
            "executors": executors,
            "frameworks": frameworks,
        }

    # ------------------------------------------------------- master connection

    def register(self) -> None:
        report = self.report()
        self.network.to_master(self.agent_id, lambda m: m.register_agent(report))

    def master_changed(self) -> None:
        self.registered = False
        self.register()

    def on_registered(self) -> None:
        self.registered = True
        self._last_ping = self._loop.time()
        self._updates.flush()
        for waiter in self._registered_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._registered_waiters.clear()

    def on_ping(self) -> None:
        self._last_ping = self._loop.time()
        self.network.to_master(self.agent_id, lambda m: m.pong(self.agent_id))

    async def _watch_master(self) -> None:
        """Re-register when the master stops pinging (partition) or a new one appears."""
        silence = self.config.agent_ping_timeout * self.config.max_agent_ping_timeouts
        while self.running:
            await asyncio.sleep(self.config.agent_ping_timeout)
            if self._loop.time() - self._last_ping > silence:
                self.registered = False
            if not self.registered:
                self.register()

    def on_shutdown(self, message: str) -> None:
        """The master refused us (marked gone): kill everything and stop."""
        log.warning("agent %s shutting down: %s", self.agent_id, message)
        self.shut_down = True
        for waiter in self._registered_waiters:
            if not waiter.done():
                waiter.set_exception(RuntimeError(message))
        self._registered_waiters.clear()
        self._loop.create_task(self.stop())

    def _send_update(self, framework_id: str, status: JSON) -> None:
        task_id = value(status["task_id"]) or ""
        latest = self._task_state(framework_id, task_id) or str(status["state"])
        self.network.to_master(
            self.agent_id, lambda m: m.status_update(self.agent_id, framework_id, status, latest)
        )

    def _task_state(self, framework_id: str, task_id: str) -> str | None:
        framework = self.frameworks.get(framework_id)
        if framework is None:
            return None
        for executor in framework.executors.values():
            for group in (executor.queued, executor.launched, executor.terminated):
                if task_id in group:
                    return group[task_id].state
        return None

    # ---------------------------------------------------------- master calls

    def run_task(self, framework_info: JSON, task_info: JSON) -> None:
        framework_id = value(framework_info.get("id")) or ""
        framework = self.frameworks.get(framework_id)
        if framework is None:
            framework = AgentFramework(framework_id, framework_info)
            self.frameworks[framework_id] = framework
        framework.info = framework_info
        framework.terminating = False
        task_id = value(task_info["task_id"]) or ""
        executor_info = task_info.get("executor")
        if executor_info is None:
            self._launch_command_task(framework, task_info, task_id)
            return
        executor_id = value(executor_info["executor_id"]) or ""
        task = AgentTask(task_info, framework_id, executor_id, is_command=False)
        executor = framework.executors.get(executor_id)
        if executor is None or executor.state in (TERMINATING, TERMINATED):
            executor = self._new_executor(framework, executor_id, executor_info, is_command=False)
            executor.queued[task_id] = task
            self._loop.create_task(self._launch_custom_executor(framework, executor))
            return
        if executor.state == REGISTERING:
            executor.queued[task_id] = task
            return
        executor.launched[task_id] = task
        assert executor.stream is not None
        executor.stream.send({"type": "LAUNCH", "launch": {"task": task_info}})

    def kill_task(self, framework_id: str, task_id: str, kill_policy: JSON | None) -> None:
        """`Slave::killTask` / `Slave::kill`."""
        framework = self.frameworks.get(framework_id)
        if framework is None or framework.terminating:
            return
        for executor in framework.executors.values():
            if task_id in executor.terminated or (
                executor.state in (TERMINATING, TERMINATED) and task_id in executor.launched
            ):
                return  # over or ending already: its terminal update is on its way
            if task_id in executor.queued or (
                task_id in executor.launched
                and not executor.is_command
                and executor.state == REGISTERING
            ):
                # Not (or no longer) in the hands of a subscribed executor.
                queued = task_id in executor.queued
                task = executor.queued.get(task_id) or executor.launched[task_id]
                self._terminal(
                    executor,
                    task,
                    make_status(
                        task_id=task_id,
                        state=TASK_KILLED,
                        source=SOURCE_AGENT,
                        agent_id=self.agent_id,
                        executor_id=executor.executor_id,
                        reason=REASON_TASK_KILLED_DURING_LAUNCH,
                        message="Killed before delivery to the executor",
                        with_uuid=True,
                    ),
                )
                if queued and (executor.is_command or not executor.live_tasks()):
                    self._shutdown_executor(executor)
                return
            if task_id in executor.launched:
                if executor.is_command:
                    self._kill_command_task(
                        framework, executor, executor.launched[task_id], kill_policy
                    )
                elif executor.stream is not None:
                    executor.stream.send({"type": "KILL", "kill": {"task_id": ident(task_id)}})
                return
        partition_aware = "PARTITION_AWARE" in _capabilities(framework.info)
        status = make_status(
            task_id=task_id,
            state=TASK_DROPPED if partition_aware else TASK_LOST,
            source=SOURCE_AGENT,
            agent_id=self.agent_id,
            reason=REASON_EXECUTOR_TERMINATED,
            message="Cannot find executor",
            with_uuid=True,
        )
        self._updates.add(framework_id, status)

    def shutdown_executor(self, framework_id: str, executor_id: str) -> None:
        framework = self.frameworks.get(framework_id)
        if framework is not None and executor_id in framework.executors:
            self._shutdown_executor(framework.executors[executor_id])

    def shutdown_framework(self, framework_id: str) -> None:
        framework = self.frameworks.get(framework_id)
        if framework is None:
            return
        framework.terminating = True
        self._updates.forget_framework(framework_id)
        for executor in list(framework.executors.values()):
            self._shutdown_executor(executor)
        if not framework.executors:
            self.frameworks.pop(framework_id, None)

    def update_framework(self, framework_info: JSON) -> None:
        framework = self.frameworks.get(value(framework_info.get("id")) or "")
        if framework is not None:
            framework.info = framework_info

    def acknowledge(self, framework_id: str, task_id: str, status_uuid: str) -> None:
        acked = self._updates.acknowledge(framework_id, task_id, status_uuid)
        if acked is None or not is_terminal(str(acked["state"])):
            return
        framework = self.frameworks.get(framework_id)
        if framework is None:
            return
        for executor in list(framework.executors.values()):
            executor.terminated.pop(task_id, None)
            self._maybe_remove_executor(framework, executor)

    def reconcile_unknown_tasks(self, framework_info: JSON, task_ids: list[str]) -> None:
        """The master re-registered us and lists tasks we did not report (`Slave::reregistered`):
        each one still unknown here is over (its launch was lost)."""
        framework_id = value(framework_info.get("id")) or ""
        partition_aware = "PARTITION_AWARE" in _capabilities(framework_info)
        for task_id in task_ids:
            known = self._task_state(framework_id, task_id) is not None
            if known or self._updates.has_pending(framework_id, task_id):
                continue
            status = make_status(
                task_id=task_id,
                state=TASK_DROPPED if partition_aware else TASK_LOST,
                source=SOURCE_AGENT,
                agent_id=self.agent_id,
                reason=REASON_RECONCILIATION,
                message="Reconciliation: task unknown to the agent",
                with_uuid=True,
            )
            self._updates.add(framework_id, status)

    def framework_message(self, framework_id: str, executor_id: str, data: str) -> None:
        framework = self.frameworks.get(framework_id)
        executor = framework.executors.get(executor_id) if framework else None
        if executor is not None and executor.stream is not None and executor.state == RUNNING:
            executor.stream.send({"type": "MESSAGE", "message": {"data": data}})

    # -------------------------------------------------------------- executors

    def _new_executor(
        self, framework: AgentFramework, executor_id: str, info: JSON, is_command: bool
    ) -> Executor:
        container_id = str(uuid.uuid4())
        directory = (
            self.work_dir
            / "slaves"
            / self.agent_id
            / "frameworks"
            / framework.framework_id
            / "executors"
            / executor_id
            / "runs"
            / container_id
        )
        directory.mkdir(parents=True, exist_ok=True)
        latest = directory.parent / "latest"
        with contextlib.suppress(OSError):
            if latest.is_symlink():
                latest.unlink()
            latest.symlink_to(container_id)
        executor = Executor(
            executor_id, framework.framework_id, info, is_command, directory, container_id
        )
        framework.executors[executor_id] = executor
        return executor

    def _base_environment(self, framework: AgentFramework, executor: Executor) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "MESOS_FRAMEWORK_ID": framework.framework_id,
                "MESOS_EXECUTOR_ID": executor.executor_id,
                "MESOS_DIRECTORY": str(executor.directory),
                "MESOS_SANDBOX": str(executor.directory),
                "MESOS_SLAVE_ID": self.agent_id,
                "MESOS_AGENT_ENDPOINT": self.endpoint,
                "MESOS_SLAVE_PID": f"slave(1)@{self.endpoint}",
                "MESOS_CHECKPOINT": "1" if framework.info.get("checkpoint") else "0",
                "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": format_duration(
                    self.config.executor_shutdown_grace_period
                ),
            }
        )
        if framework.info.get("checkpoint"):
            env["MESOS_RECOVERY_TIMEOUT"] = format_duration(self.config.recovery_timeout)
            env["MESOS_SUBSCRIPTION_BACKOFF_MAX"] = format_duration(
                self.config.subscription_backoff_max
            )
        return env

    @staticmethod
    def _argv(command: JSON) -> tuple[list[str], str | None]:
        if command.get("shell", True):
            return ["/bin/sh", "-c", str(command.get("value", ""))], None
        program = str(command.get("value", ""))
        arguments = [str(a) for a in command.get("arguments", [])]
        return (arguments or [program]), program

    @staticmethod
    def _apply_environment(env: dict[str, str], command: JSON) -> None:
        for variable in (command.get("environment") or {}).get("variables", []):
            if variable.get("type", "VALUE") == "VALUE":
                env[str(variable["name"])] = str(variable.get("value", ""))

    async def _fetch(self, executor: Executor, command: JSON) -> None:
        uris = command.get("uris") or []
        if uris:
            cache = self.work_dir / "cache" / self.agent_id
            await asyncio.to_thread(fetch_uris, list(uris), executor.directory, cache)

    def _spawn(self, executor: Executor, command: JSON, env: dict[str, str]) -> Child:
        argv, program = self._argv(command)
        executable = None
        if program is not None:
            executable = program if "/" in program else shutil.which(program, path=env.get("PATH"))
            if executable is None:
                raise FileNotFoundError(f"'{program}' was not found on PATH")
        return Child(
            self._loop,
            argv,
            cwd=executor.directory,
            env=env,
            executable=executable,
            on_exit=lambda code: self._executor_terminated(executor, code),
            reaper=self._reaper,
        )

    async def _launch_custom_executor(self, framework: AgentFramework, executor: Executor) -> None:
        command = executor.info.get("command") or {}
        env = self._base_environment(framework, executor)
        self._apply_environment(env, command)
        try:
            await self._fetch(executor, command)
            if executor.state != REGISTERING:
                return
            executor.child = self._spawn(executor, command, env)
        except (FetchError, OSError) as exc:
            executor.pending_termination = (
                TASK_FAILED,
                REASON_CONTAINER_LAUNCH_FAILED,
                f"Failed to launch container: {exc}",
            )
            self._executor_terminated(executor, None)
            return
        executor.registration_timer = self._loop.call_later(
            self.config.executor_registration_timeout, self._registration_timed_out, executor
        )

    def _registration_timed_out(self, executor: Executor) -> None:
        self._subscription_timed_out(
            executor,
            TASK_FAILED,
            REASON_EXECUTOR_REGISTRATION_TIMEOUT,
            "Executor did not register within "
            + format_duration(self.config.executor_registration_timeout),
        )

    def _reregistration_timed_out(self, executor: Executor) -> None:
        self._subscription_timed_out(
            executor,
            TASK_GONE,
            REASON_EXECUTOR_REREGISTRATION_TIMEOUT,
            "Executor did not reregister within "
            + format_duration(self.config.executor_reregistration_timeout),
        )

    def _subscription_timed_out(
        self, executor: Executor, state: str, reason: str, message: str
    ) -> None:
        """An executor that never (re-)subscribed: its tasks end with `state`, then it goes."""
        if executor.state != REGISTERING:
            return
        executor.pending_termination = (state, reason, message)
        executor.state = TERMINATING
        if executor.child is not None and executor.child.running:
            executor.child.kill()
        else:
            self._executor_terminated(executor, None)

    def _shutdown_executor(self, executor: Executor) -> None:
        if executor.state in (TERMINATING, TERMINATED):
            return
        previous = executor.state
        executor.state = TERMINATING
        if executor.is_command:
            for task in executor.launched.values():
                if executor.child is not None:
                    executor.child.terminate(self.config.command_kill_grace_period)
                    executor.killing.add(task.task_id)
            if executor.child is None or not executor.child.running:
                self._executor_terminated(executor, None)
            return
        if previous == RUNNING and executor.stream is not None:
            executor.stream.send({"type": "SHUTDOWN"})
        if executor.child is not None and executor.child.running:
            child = executor.child
            self._loop.call_later(self.config.executor_shutdown_grace_period, child.kill)
            if previous == REGISTERING:
                child.kill()
        else:
            self._executor_terminated(executor, None)

    def _executor_terminated(self, executor: Executor, returncode: int | None) -> None:
        if executor.state == TERMINATED:
            return
        executor.state = TERMINATED
        if executor.registration_timer is not None:
            executor.registration_timer.cancel()
        if executor.stream is not None:
            executor.stream.close()
            executor.stream = None
        framework = self.frameworks.get(executor.framework_id)
        if framework is None or not self.running:
            return
        if not framework.terminating:
            state, reason, message = executor.pending_termination or (
                TASK_FAILED,
                REASON_EXECUTOR_TERMINATED,
                "Executor terminated",
            )
            for task in executor.live_tasks():
                if is_terminal(task.state):
                    continue
                if (
                    executor.is_command
                    and returncode is not None
                    and task.task_id in executor.launched
                ):
                    self._command_task_exited(executor, task, returncode)
                    continue
                status = make_status(
                    task_id=task.task_id,
                    state=state,
                    source=SOURCE_AGENT,
                    agent_id=self.agent_id,
                    executor_id=executor.executor_id,
                    reason=reason,
                    message=message,
                    with_uuid=True,
                )
                self._terminal(executor, task, status)
            if not executor.is_command:
                status_code = wait_status(returncode) if returncode is not None else None
                executor_id, framework_id = executor.executor_id, executor.framework_id
                self.network.to_master(
                    self.agent_id,
                    lambda m: m.exited_executor(
                        self.agent_id, framework_id, executor_id, status_code
                    ),
                )
        self._maybe_remove_executor(framework, executor)

    def _maybe_remove_executor(self, framework: AgentFramework, executor: Executor) -> None:
        if executor.state != TERMINATED:
            return
        if not framework.terminating and any(
            self._updates.has_pending(framework.framework_id, t) for t in executor.terminated
        ):
            return
        framework.executors.pop(executor.executor_id, None)
        if not framework.executors:
            self.frameworks.pop(framework.framework_id, None)

    def _terminal(self, executor: Executor, task: AgentTask, status: JSON) -> None:
        executor.queued.pop(task.task_id, None)
        executor.launched.pop(task.task_id, None)
        executor.terminated[task.task_id] = task
        self._record(task, status)
        self._updates.add(task.framework_id, status)

    def _record(self, task: AgentTask, status: JSON) -> None:
        task.state = str(status["state"])
        task.statuses.append({"state": status["state"], "timestamp": status.get("timestamp")})

    # ---------------------------------------------------------- command tasks

    def _launch_command_task(
        self, framework: AgentFramework, task_info: JSON, task_id: str
    ) -> None:
        command_line = str((task_info.get("command") or {}).get("value", ""))
        info = {
            "executor_id": ident(task_id),
            "framework_id": ident(framework.framework_id),
            "name": f"Command Executor (Task: {task_id}) (Command: sh -c '{command_line[:30]}')",
            "command": task_info.get("command") or {},
            "source": task_id,
        }
        executor = self._new_executor(framework, task_id, info, is_command=True)
        task = AgentTask(task_info, framework.framework_id, task_id, is_command=True)
        executor.queued[task_id] = task
        self._loop.create_task(self._run_command_task(framework, executor, task))

    async def _run_command_task(
        self, framework: AgentFramework, executor: Executor, task: AgentTask
    ) -> None:
        command = task.info.get("command") or {}
        try:
            await self._fetch(executor, command)
        except FetchError as exc:
            executor.pending_termination = (
                TASK_FAILED,
                REASON_CONTAINER_LAUNCH_FAILED,
                f"Failed to launch container: {exc}",
            )
            self._executor_terminated(executor, None)
            return
        if executor.state != REGISTERING or task.task_id not in executor.queued:
            return
        executor.state = RUNNING
        executor.queued.pop(task.task_id)
        executor.launched[task.task_id] = task
        self._command_update(executor, task, TASK_STARTING)
        env = self._base_environment(framework, executor)
        env["MESOS_TASK_ID"] = task.task_id
        self._apply_environment(env, command)
        try:
            executor.child = self._spawn(executor, command, env)
        except OSError as exc:
            self._terminal(
                executor,
                task,
                make_status(
                    task_id=task.task_id,
                    state=TASK_FAILED,
                    source=SOURCE_EXECUTOR,
                    agent_id=self.agent_id,
                    executor_id=executor.executor_id,
                    reason=REASON_COMMAND_EXECUTOR_FAILED,
                    message=f"Failed to launch command: {exc}",
                    with_uuid=True,
                ),
            )
            self._executor_terminated(executor, None)
            return
        self._command_update(executor, task, TASK_RUNNING)

    def _command_update(
        self, executor: Executor, task: AgentTask, state: str, message: str | None = None
    ) -> None:
        status = make_status(
            task_id=task.task_id,
            state=state,
            source=SOURCE_EXECUTOR,
            agent_id=self.agent_id,
            executor_id=executor.executor_id,
            message=message,
            with_uuid=True,
        )
        if is_terminal(state):
            self._terminal(executor, task, status)
        else:
            self._record(task, status)
            self._updates.add(task.framework_id, status)

    def _command_task_exited(self, executor: Executor, task: AgentTask, returncode: int) -> None:
        if task.task_id in executor.killing:
            state = TASK_KILLED
        elif returncode == 0:
            state = TASK_FINISHED
        else:
            state = TASK_FAILED
        self._command_update(executor, task, state, message=describe_exit(returncode))

    def _kill_command_task(
        self,
        framework: AgentFramework,
        executor: Executor,
        task: AgentTask,
        kill_policy: JSON | None,
    ) -> None:
        if task.task_id in executor.killing:
            return
        executor.killing.add(task.task_id)
        if "TASK_KILLING_STATE" in _capabilities(framework.info):
            self._command_update(executor, task, TASK_KILLING)
        grace = self.config.command_kill_grace_period
        policy = kill_policy or task.info.get("kill_policy") or {}
        nanos = (policy.get("grace_period") or {}).get("nanoseconds")
        if nanos is not None:
            grace = int(nanos) / 1e9
        if executor.child is not None:
            executor.child.terminate(grace)

    # ----------------------------------------------------------- executor API

    async def _handle_version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": MESOS_VERSION})

    async def _handle_state(self, request: web.Request) -> web.Response:
        frameworks = []
        for framework in self.frameworks.values():
            executors = []
            for executor in framework.executors.values():
                executors.append(
                    {
                        "id": executor.executor_id,
                        "name": executor.info.get("name", ""),
                        "directory": str(executor.directory),
                        "container": executor.container_id,
                        "tasks": [self._task_json(t) for t in executor.launched.values()],
                        "queued_tasks": [self._task_json(t) for t in executor.queued.values()],
                        "completed_tasks": [
                            self._task_json(t) for t in executor.terminated.values()
                        ],
                    }
                )
            frameworks.append(
                {
                    "id": framework.framework_id,
                    "name": framework.info.get("name"),
                    "executors": executors,
                }
            )
        return web.json_response(
            {
                "id": self.agent_id,
                "hostname": self.hostname,
                "version": MESOS_VERSION,
                "resources": self.spec.resources().to_state(),
                "attributes": dict(self.spec.attributes),
                "frameworks": frameworks,
            }
        )

    def _task_json(self, task: AgentTask) -> JSON:
        return {
            "id": task.task_id,
            "name": task.info.get("name"),
            "framework_id": task.framework_id,
            "executor_id": "" if task.is_command else task.executor_id,
            "slave_id": self.agent_id,
            "state": task.state,
            "statuses": task.statuses,
        }

    async def _handle_executor(self, request: web.Request) -> web.StreamResponse:
        try:
            wire.check_method_and_type(request.method, request.headers.get("Content-Type"))
            body = await request.read()
            call = wire.parse_body(body, wire.EXECUTOR_CALL, "Call")
            self._validate_executor_call(call)
            kind = call["type"]
            if kind == "SUBSCRIBE":
                wire.check_accept(request.headers.get("Accept"))
            elif kind == "HEARTBEAT":
                return web.Response(status=202)
            if not self.running or self.down:
                raise wire.HttpError(503, "Agent has not finished recovery")
            framework = self.frameworks.get(value(call["framework_id"]) or "")
            if framework is None:
                raise wire.HttpError(400, "Framework cannot be found")
            executor = framework.executors.get(value(call["executor_id"]) or "")
            if executor is None or executor.is_command:
                raise wire.HttpError(400, "Executor cannot be found")
            if executor.state == REGISTERING and kind != "SUBSCRIBE":
                raise wire.HttpError(403, "Executor is not subscribed")
            if kind == "SUBSCRIBE":
                return await self._subscribe_executor(request, framework, executor, call)
            if kind == "UPDATE":
                self._executor_update(framework, executor, call["update"]["status"])
                return web.Response(status=202)
            if kind == "MESSAGE":
                data = call["message"]["data"]
                fid, eid = framework.framework_id, executor.executor_id
                self.network.to_master(
                    self.agent_id, lambda m: m.executor_message(self.agent_id, fid, eid, data)
                )
                return web.Response(status=202)
            return web.Response(status=501)
        except wire.HttpError as error:
            return web.Response(status=error.status, text=error.message)

    def _validate_executor_call(self, call: JSON) -> None:
        def fail(message: str) -> wire.HttpError:
            return wire.HttpError(400, f"Failed to validate Executor::Call: {message}")

        kind = call.get("type")
        if kind is None:
            raise fail("Expecting 'type' to be present")
        if kind == "SUBSCRIBE" and "subscribe" not in call:
            raise fail("Expecting 'subscribe' to be present")
        if kind == "MESSAGE" and "message" not in call:
            raise fail("Expecting 'message' to be present")
        if kind != "UPDATE":
            return
        if "update" not in call:
            raise fail("Expecting 'update' to be present")
        status = call["update"]["status"]
        executor_id = value(call["executor_id"])
        framework_id = value(call["framework_id"])
        if "uuid" not in status:
            raise fail("Expecting 'uuid' to be present")
        problem = uuid_error(status["uuid"])
        if problem is not None:
            raise fail(problem)
        if "executor_id" in status and value(status["executor_id"]) != executor_id:
            raise fail(
                f"ExecutorID in Call: {executor_id} does not match ExecutorID in TaskStatus: "
                f"{value(status['executor_id'])}"
            )
        if status.get("source") != SOURCE_EXECUTOR:
            raise fail(
                f"Received Call from executor {executor_id} of framework {framework_id} "
                "with invalid source, expecting 'SOURCE_EXECUTOR'"
            )
        if status.get("state") == TASK_STAGING:
            raise fail(
                f"Received TASK_STAGING from executor {executor_id} of framework {framework_id} "
                "which is not allowed"
            )

    async def _subscribe_executor(
        self, request: web.Request, framework: AgentFramework, executor: Executor, call: JSON
    ) -> web.StreamResponse:
        stream = EventStream(with_stream_id=False)
        if executor.stream is not None:
            executor.stream.close()
        executor.stream = stream
        if executor.registration_timer is not None:
            executor.registration_timer.cancel()
            executor.registration_timer = None
        subscribed = {
            "type": "SUBSCRIBED",
            "subscribed": {
                "executor_info": executor.info,
                "framework_info": framework.info,
                "agent_info": self._agent_info(),
                "container_id": {"value": executor.container_id},
            },
        }
        stream.send(subscribed)
        for update in call.get("subscribe", {}).get("unacknowledged_updates", []):
            status = update.get("status") or {}
            if "uuid" in status and not self._updates.seen(framework.framework_id, status):
                self._executor_update(framework, executor, status)
        if executor.state == REGISTERING:
            executor.state = RUNNING
            for task_id, task in list(executor.queued.items()):
                executor.launched[task_id] = executor.queued.pop(task_id)
                stream.send({"type": "LAUNCH", "launch": {"task": task.info}})
        elif executor.state == TERMINATING:
            stream.send({"type": "SHUTDOWN"})
        try:
            return await stream.serve(request)
        finally:
            if executor.stream is stream:
                executor.stream = None

    def _agent_info(self) -> JSON:
        return {
            "id": ident(self.agent_id),
            "hostname": self.hostname,
            "port": self.port,
            "resources": self.spec.resources().to_json(),
            "attributes": self.spec.attributes_json(),
        }

    def _executor_update(self, framework: AgentFramework, executor: Executor, status: JSON) -> None:
        status = dict(status)
        status["agent_id"] = ident(self.agent_id)
        status.setdefault("executor_id", ident(executor.executor_id))
        task_id = value(status["task_id"]) or ""
        if not self._updates.seen(framework.framework_id, status):
            task = executor.launched.get(task_id) or executor.queued.get(task_id)
            if task is not None and is_terminal(str(status["state"])):
                self._terminal(executor, task, status)
            else:
                if task is not None:
                    self._record(task, status)
                self._updates.add(framework.framework_id, status)
        if executor.stream is not None:
            executor.stream.send(
                {
                    "type": "ACKNOWLEDGED",
                    "acknowledged": {"task_id": ident(task_id), "uuid": status["uuid"]},
                }
            )

    # ------------------------------------------------------------ fault hooks

    def pending_updates(self) -> dict[tuple[str, str], list[str]]:
        return self._updates.pending()

    def crash_executor(self, executor_id: str) -> bool:
        for framework in self.frameworks.values():
            executor = framework.executors.get(executor_id)
            if executor is not None and executor.child is not None and executor.child.running:
                executor.child.kill()
                return True
        return False
