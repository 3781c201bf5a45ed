"""How executors of one emulated agent end: shutdown, timeouts, exits, orphans.

SHUTDOWN (of an executor or of a whole framework) sends the executor
`SHUTDOWN` and destroys its container after `executor_shutdown_grace_period`;
a command task's container gets SIGTERM, then SIGKILL after the kill grace
period. An executor that does not subscribe within
`executor_registration_timeout` is destroyed and its tasks become TASK_FAILED
(REASON_EXECUTOR_REGISTRATION_TIMEOUT); after an agent restart, one that does
not subscribe again within `executor_reregistration_timeout` is destroyed and
its tasks become TASK_GONE (REASON_EXECUTOR_REREGISTRATION_TIMEOUT). When an
executor's container is gone its live tasks end (a command task by its exit
status, others TASK_FAILED / REASON_EXECUTOR_TERMINATED unless the cause was
known earlier) and the master is told, which sends the framework
`FAILURE {agent_id, executor_id, status}`. Follows `Slave::shutdownExecutor`,
`registerExecutorTimeout`, `reregisterExecutorTimeout` and
`executorTerminated` in the Mesos agent. Built by the Agent; the launcher, the
kill handler and the recovery use it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from devcluster.mesos.agent.records import (
    REGISTERING,
    RUNNING,
    TERMINATED,
    TERMINATING,
    AgentBooks,
    AgentTask,
    Executor,
)
from devcluster.mesos.agent.reporting import StatusReporter
from devcluster.mesos.config import EmulatorConfig, format_duration
from devcluster.mesos.network import Network
from devcluster.mesos.processes import Child, describe_exit, wait_status
from devcluster.mesos.protocol import (
    REASON_EXECUTOR_REGISTRATION_TIMEOUT,
    REASON_EXECUTOR_REREGISTRATION_TIMEOUT,
    REASON_EXECUTOR_TERMINATED,
    SOURCE_AGENT,
    TASK_FAILED,
    TASK_FINISHED,
    TASK_GONE,
    TASK_KILLED,
    is_terminal,
    make_status,
)


class Terminator:
    def __init__(
        self,
        books: AgentBooks,
        reporter: StatusReporter,
        network: Network,
        config: EmulatorConfig,
        loop: asyncio.AbstractEventLoop,
        running: Callable[[], bool],
    ) -> None:
        self._books = books
        self._reporter = reporter
        self._network = network
        self._config = config
        self._loop = loop
        self._running = running

    # ------------------------------------------------------------ shutdown

    def shutdown_executor(self, framework_id: str, executor_id: str) -> None:
        framework = self._books.frameworks.get(framework_id)
        if framework is not None and executor_id in framework.executors:
            self.shut_down(framework.executors[executor_id])

    def shutdown_framework(self, framework_id: str) -> None:
        framework = self._books.frameworks.get(framework_id)
        if framework is None:
            return
        framework.terminating = True
        self._reporter.updates.forget_framework(framework_id)
        for executor in list(framework.executors.values()):
            self.shut_down(executor)
        if not framework.executors:
            self._books.frameworks.pop(framework_id, None)

    def shut_down(self, executor: Executor) -> None:
        if executor.state in (TERMINATING, TERMINATED):
            return
        previous = executor.state
        executor.state = TERMINATING
        if executor.is_command:
            for task in executor.launched.values():
                if executor.child is not None:
                    executor.child.terminate(self._config.command_kill_grace_period)
                    executor.killing.add(task.task_id)
            if executor.child is None or not executor.child.running:
                self.terminated(executor, None)
            return
        if previous == RUNNING and executor.stream is not None:
            executor.stream.send({"type": "SHUTDOWN"})
        if executor.child is not None and executor.child.running:
            child = executor.child
            self._loop.call_later(self._config.executor_shutdown_grace_period, child.kill)
            if previous == REGISTERING:
                child.kill()
        else:
            self.terminated(executor, None)

    def destroy_orphan(self, executor: Executor) -> None:
        """Destroy the container of an executor the agent no longer owns."""
        if executor.state == TERMINATED:
            return
        executor.state = TERMINATING
        if executor.child is not None and executor.child.running:
            executor.child.kill()
        else:
            self.terminated(executor, None)

    def crash(self, executor_id: str) -> bool:
        """Destroy a running executor's container (fault injection)."""
        for framework in self._books.frameworks.values():
            executor = framework.executors.get(executor_id)
            if executor is not None and executor.child is not None and executor.child.running:
                executor.child.kill()
                return True
        return False

    def destroy_all(self) -> list[Child]:
        """The agent stops: destroy every container; returns their leaders to reap."""
        children: list[Child] = []
        for framework in self._books.frameworks.values():
            for executor in framework.executors.values():
                if executor.registration_timer is not None:
                    executor.registration_timer.cancel()
                if executor.child is not None:
                    executor.child.kill()
                    children.append(executor.child)
                if executor.stream is not None:
                    executor.stream.abort()
        return children

    # ------------------------------------------------------- (re-)subscription

    def expect_subscription(self, executor: Executor) -> None:
        executor.registration_timer = self._loop.call_later(
            self._config.executor_registration_timeout, self._registration_timed_out, executor
        )

    def expect_resubscription(self, executor: Executor) -> None:
        executor.state = REGISTERING
        executor.registration_timer = self._loop.call_later(
            self._config.executor_reregistration_timeout,
            self._reregistration_timed_out,
            executor,
        )

    def _registration_timed_out(self, executor: Executor) -> None:
        self._subscription_timed_out(
            executor,
            TASK_FAILED,
            REASON_EXECUTOR_REGISTRATION_TIMEOUT,
            "Executor did not register within "
            + format_duration(self._config.executor_registration_timeout),
        )

    def _reregistration_timed_out(self, executor: Executor) -> None:
        self._subscription_timed_out(
            executor,
            TASK_GONE,
            REASON_EXECUTOR_REREGISTRATION_TIMEOUT,
            "Executor did not reregister within "
            + format_duration(self._config.executor_reregistration_timeout),
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
            self.terminated(executor, None)

    # ---------------------------------------------------------------- the end

    def terminated(self, executor: Executor, returncode: int | None) -> None:
        """The executor's container is gone (`returncode` of its leader, if it ran)."""
        if executor.state == TERMINATED:
            return
        executor.state = TERMINATED
        if executor.registration_timer is not None:
            executor.registration_timer.cancel()
        if executor.stream is not None:
            executor.stream.close()
            executor.stream = None
        framework = self._books.frameworks.get(executor.framework_id)
        if framework is None or not self._running():
            return
        if not framework.terminating:
            self._end_live_tasks(executor, returncode)
            if not executor.is_command:
                self._tell_master(executor, returncode)
        self._reporter.release_if_done(framework, executor)

    def _end_live_tasks(self, executor: Executor, returncode: int | None) -> None:
        state, reason, message = executor.pending_termination or (
            TASK_FAILED,
            REASON_EXECUTOR_TERMINATED,
            "Executor terminated",
        )
        for task in executor.live_tasks():
            if is_terminal(task.state):
                continue
            if executor.is_command and returncode is not None and task.task_id in executor.launched:
                self._command_task_exited(executor, task, returncode)
                continue
            status = make_status(
                task_id=task.task_id,
                state=state,
                source=SOURCE_AGENT,
                agent_id=self._books.agent_id,
                executor_id=executor.executor_id,
                reason=reason,
                message=message,
                with_uuid=True,
            )
            self._reporter.terminal(executor, task, status)

    def _command_task_exited(self, executor: Executor, task: AgentTask, returncode: int) -> None:
        if task.task_id in executor.killing:
            state = TASK_KILLED
        elif returncode == 0:
            state = TASK_FINISHED
        else:
            state = TASK_FAILED
        self._reporter.command_update(executor, task, state, message=describe_exit(returncode))

    def _tell_master(self, executor: Executor, returncode: int | None) -> None:
        agent_id = self._books.agent_id
        status_code = wait_status(returncode) if returncode is not None else None
        executor_id, framework_id = executor.executor_id, executor.framework_id
        self._network.to_master(
            agent_id,
            lambda m: m.exited_executor(agent_id, framework_id, executor_id, status_code),
        )
