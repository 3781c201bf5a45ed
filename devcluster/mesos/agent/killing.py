"""KILL of a task at one emulated agent (`Slave::killTask` / `Slave::kill`).

A task not yet in the hands of a subscribed executor (queued, or launched on
an executor that has not re-subscribed after an agent restart) becomes
TASK_KILLED (REASON_TASK_KILLED_DURING_LAUNCH) at once; a kill for a task that
is over already or whose executor is terminating is ignored (its terminal
update is on its way); a task of a custom executor is killed by sending the
executor `KILL`; a command task gets TASK_KILLING (for frameworks with the
TASK_KILLING_STATE capability), SIGTERM, and SIGKILL after the kill policy's
grace period. A task the agent does not know becomes TASK_DROPPED (TASK_LOST
without PARTITION_AWARE), "Cannot find executor". Built by the Agent, which
routes the master's kills here.
"""

from __future__ import annotations

from devcluster.mesos.agent.records import (
    REGISTERING,
    TERMINATED,
    TERMINATING,
    AgentBooks,
    AgentFramework,
    AgentTask,
    Executor,
    capabilities,
)
from devcluster.mesos.agent.reporting import StatusReporter
from devcluster.mesos.agent.terminating import Terminator
from devcluster.mesos.config import EmulatorConfig
from devcluster.mesos.protocol import (
    JSON,
    REASON_EXECUTOR_TERMINATED,
    REASON_TASK_KILLED_DURING_LAUNCH,
    SOURCE_AGENT,
    TASK_KILLED,
    TASK_KILLING,
    ident,
    make_status,
)


class TaskKiller:
    def __init__(
        self,
        books: AgentBooks,
        reporter: StatusReporter,
        terminator: Terminator,
        config: EmulatorConfig,
    ) -> None:
        self._books = books
        self._reporter = reporter
        self._terminator = terminator
        self._config = config

    def kill_task(self, framework_id: str, task_id: str, kill_policy: JSON | None) -> None:
        framework = self._books.frameworks.get(framework_id)
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
                self._kill_undelivered(executor, task_id)
                return
            if task_id in executor.launched:
                if executor.is_command:
                    self._kill_command_task(
                        framework, executor, executor.launched[task_id], kill_policy
                    )
                elif executor.stream is not None:
                    executor.stream.send({"type": "KILL", "kill": {"task_id": ident(task_id)}})
                return
        self._reporter.lost(
            framework_id,
            framework.info,
            task_id,
            REASON_EXECUTOR_TERMINATED,
            "Cannot find executor",
        )

    def _kill_undelivered(self, executor: Executor, task_id: str) -> None:
        """The task is not (or no longer) in the hands of a subscribed executor."""
        queued = task_id in executor.queued
        task = executor.queued.get(task_id) or executor.launched[task_id]
        self._reporter.terminal(
            executor,
            task,
            make_status(
                task_id=task_id,
                state=TASK_KILLED,
                source=SOURCE_AGENT,
                agent_id=self._books.agent_id,
                executor_id=executor.executor_id,
                reason=REASON_TASK_KILLED_DURING_LAUNCH,
                message="Killed before delivery to the executor",
                with_uuid=True,
            ),
        )
        if queued and (executor.is_command or not executor.live_tasks()):
            self._terminator.shut_down(executor)

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
        if "TASK_KILLING_STATE" in capabilities(framework.info):
            self._reporter.command_update(executor, task, TASK_KILLING)
        grace = self._config.command_kill_grace_period
        policy = kill_policy or task.info.get("kill_policy") or {}
        nanos = (policy.get("grace_period") or {}).get("nanoseconds")
        if nanos is not None:
            grace = int(nanos) / 1e9
        if executor.child is not None:
            executor.child.terminate(grace)
        else:  # still starting: the launcher terminates it once it exists
            executor.kill_grace = grace
