"""Task launches at one emulated agent: sandboxes, fetching, real processes.

A task with `TaskInfo.executor` goes to that executor: delivered (`LAUNCH`) if
it runs and has subscribed, queued if it is still registering, or queued for
a new executor started for it. A task without one is a command task, run
under an emulated built-in command executor whose executor id is the task id:
the agent reports TASK_STARTING, spawns `/bin/sh -c value` (or execs `value`
with `arguments` when `shell` is false) and reports TASK_RUNNING; the exit is
reported by the terminator. Each executor gets a sandbox
`<work_dir>/slaves/<agent>/frameworks/<fw>/executors/<executor>/runs/<container>`
(with a `latest` link) into which its URIs are fetched, and the environment
Mesos gives executors (the Mesos executor HTTP API documentation, "Executor
Environment Variables"). A failed fetch or spawn fails the launch
(TASK_FAILED, REASON_CONTAINER_LAUNCH_FAILED). Sandboxes are made, URIs
fetched and processes started off the event loop the agents share with the
master (worker threads, `Spawner`); an executor shut down or a task killed
while its process was starting has the process killed as soon as it exists.
Built by the Agent, which routes the master's RUN_TASK messages here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from devcluster.mesos.agent.records import (
    REGISTERING,
    RUNNING,
    TERMINATED,
    TERMINATING,
    AgentBooks,
    AgentFramework,
    AgentTask,
    Executor,
)
from devcluster.mesos.agent.reporting import StatusReporter
from devcluster.mesos.agent.terminating import Terminator
from devcluster.mesos.config import EmulatorConfig, format_duration
from devcluster.mesos.fetcher import FetchError, fetch_uris
from devcluster.mesos.processes import Child, Spawner
from devcluster.mesos.protocol import (
    JSON,
    REASON_COMMAND_EXECUTOR_FAILED,
    REASON_CONTAINER_LAUNCH_FAILED,
    SOURCE_EXECUTOR,
    TASK_FAILED,
    TASK_RUNNING,
    TASK_STARTING,
    ident,
    make_status,
    value,
)


class Launcher:
    def __init__(
        self,
        books: AgentBooks,
        reporter: StatusReporter,
        terminator: Terminator,
        config: EmulatorConfig,
        loop: asyncio.AbstractEventLoop,
        spawner: Spawner,
        running: Callable[[], bool],
    ) -> None:
        self._books = books
        self._reporter = reporter
        self._terminator = terminator
        self._config = config
        self._loop = loop
        self._spawner = spawner
        self._running = running
        self._starting: set[asyncio.Future[Child]] = set()

    def run_task(self, framework_info: JSON, task_info: JSON) -> None:
        books = self._books
        framework_id = value(framework_info.get("id")) or ""
        framework = books.frameworks.get(framework_id)
        if framework is None:
            framework = AgentFramework(framework_id, framework_info)
            books.frameworks[framework_id] = framework
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

    def _new_executor(
        self, framework: AgentFramework, executor_id: str, info: JSON, is_command: bool
    ) -> Executor:
        container_id = str(uuid.uuid4())
        directory = (
            self._books.work_dir
            / "slaves"
            / self._books.agent_id
            / "frameworks"
            / framework.framework_id
            / "executors"
            / executor_id
            / "runs"
            / container_id
        )
        executor = Executor(
            executor_id, framework.framework_id, info, is_command, directory, container_id
        )
        framework.executors[executor_id] = executor
        return executor

    # ------------------------------------------------------- custom executors

    async def _launch_custom_executor(self, framework: AgentFramework, executor: Executor) -> None:
        command = executor.info.get("command") or {}
        env = executor_environment(self._books, self._config, framework, executor)
        apply_environment(env, command)
        try:
            await self._prepare(executor, command)
            if executor.state != REGISTERING:
                return
            child = await self._spawn(executor, command, env)
        except (FetchError, OSError) as exc:
            if executor.state == REGISTERING:  # not ended while it was being launched
                self._launch_failed(executor, exc)
            return
        if child is not None:
            self._terminator.expect_subscription(executor)

    def _launch_failed(self, executor: Executor, error: Exception) -> None:
        executor.pending_termination = (
            TASK_FAILED,
            REASON_CONTAINER_LAUNCH_FAILED,
            f"Failed to launch container: {error}",
        )
        self._terminator.terminated(executor, None)

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
            await self._prepare(executor, command)
        except (FetchError, OSError) as exc:
            if executor.state == REGISTERING:  # not ended while it was being prepared
                self._launch_failed(executor, exc)
            return
        if executor.state != REGISTERING or task.task_id not in executor.queued:
            return
        executor.state = RUNNING
        executor.queued.pop(task.task_id)
        executor.launched[task.task_id] = task
        self._reporter.command_update(executor, task, TASK_STARTING)
        env = executor_environment(self._books, self._config, framework, executor)
        env["MESOS_TASK_ID"] = task.task_id
        apply_environment(env, command)
        try:
            child = await self._spawn(executor, command, env)
        except OSError as exc:
            if executor.state != RUNNING:  # ended while its process was starting
                return
            self._reporter.terminal(
                executor,
                task,
                make_status(
                    task_id=task.task_id,
                    state=TASK_FAILED,
                    source=SOURCE_EXECUTOR,
                    agent_id=self._books.agent_id,
                    executor_id=executor.executor_id,
                    reason=REASON_COMMAND_EXECUTOR_FAILED,
                    message=f"Failed to launch command: {exc}",
                    with_uuid=True,
                ),
            )
            self._terminator.terminated(executor, None)
            return
        if child is None:
            return
        if task.task_id in executor.killing:  # killed while its process started
            child.terminate(executor.kill_grace)
        else:
            self._reporter.command_update(executor, task, TASK_RUNNING)

    # -------------------------------------------------------------- processes

    async def _prepare(self, executor: Executor, command: JSON) -> None:
        """Create the executor's sandbox and fetch its URIs into it, off the loop."""
        uris = list(command.get("uris") or [])
        cache = self._books.work_dir / "cache" / self._books.agent_id
        await asyncio.to_thread(prepare_sandbox, executor.directory, uris, cache)

    async def _spawn(self, executor: Executor, command: JSON, env: dict[str, str]) -> Child | None:
        """Start the executor's process; its exit ends the executor. None when the
        executor ended (was shut down) or the agent stopped while the process started:
        the process is killed at once and its exit ignored, the executor having been
        reported ended without one."""
        if not self._running():
            raise OSError("the agent is stopping")
        argv, program = command_argv(command)
        executable = None
        if program is not None:
            executable = program if "/" in program else shutil.which(program, path=env.get("PATH"))
            if executable is None:
                raise FileNotFoundError(f"'{program}' was not found on PATH")
        state = executor.state
        ended = False

        def exited(code: int) -> None:
            if not ended:
                self._terminator.terminated(executor, code)

        starting = asyncio.ensure_future(
            self._spawner.spawn(
                argv, cwd=executor.directory, env=env, executable=executable, on_exit=exited
            )
        )
        self._starting.add(starting)
        try:
            child = await starting
        finally:
            self._starting.discard(starting)
        executor.child = child
        if executor.state != state or not self._running():
            ended = True
            child.kill()
            return None
        return child

    async def started(self) -> None:
        """Wait for every process being started (an agent stopping kills them after)."""
        if self._starting:
            await asyncio.wait(set(self._starting))


def prepare_sandbox(directory: Path, uris: list[JSON], cache: Path) -> None:
    """Create a sandbox, point its `latest` link at it and fetch `uris` into it
    (blocking)."""
    directory.mkdir(parents=True, exist_ok=True)
    latest = directory.parent / "latest"
    with contextlib.suppress(OSError):
        if latest.is_symlink():
            latest.unlink()
        latest.symlink_to(directory.name)
    if uris:
        fetch_uris(uris, directory, cache)


def executor_environment(
    books: AgentBooks, config: EmulatorConfig, framework: AgentFramework, executor: Executor
) -> dict[str, str]:
    """The agent's own environment plus the variables Mesos gives an executor."""
    env = dict(os.environ)
    env.update(
        {
            "MESOS_FRAMEWORK_ID": framework.framework_id,
            "MESOS_EXECUTOR_ID": executor.executor_id,
            "MESOS_DIRECTORY": str(executor.directory),
            "MESOS_SANDBOX": str(executor.directory),
            "MESOS_SLAVE_ID": books.agent_id,
            "MESOS_AGENT_ENDPOINT": books.endpoint,
            "MESOS_SLAVE_PID": f"slave(1)@{books.endpoint}",
            "MESOS_CHECKPOINT": "1" if framework.info.get("checkpoint") else "0",
            "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": format_duration(
                config.executor_shutdown_grace_period
            ),
        }
    )
    if framework.info.get("checkpoint"):
        env["MESOS_RECOVERY_TIMEOUT"] = format_duration(config.recovery_timeout)
        env["MESOS_SUBSCRIPTION_BACKOFF_MAX"] = format_duration(config.subscription_backoff_max)
    return env


def command_argv(command: JSON) -> tuple[list[str], str | None]:
    """argv for a `CommandInfo`, and the program to exec when it is not run by a shell."""
    if command.get("shell", True):
        return ["/bin/sh", "-c", str(command.get("value", ""))], None
    program = str(command.get("value", ""))
    arguments = [str(a) for a in command.get("arguments", [])]
    return (arguments or [program]), program


def apply_environment(env: dict[str, str], command: JSON) -> None:
    """Add `CommandInfo.environment`'s plain VALUE variables to `env`."""
    for variable in (command.get("environment") or {}).get("variables", []):
        if variable.get("type", "VALUE") == "VALUE":
            env[str(variable["name"])] = str(variable.get("value", ""))
