"""What an emulated agent process keeps and loses across a restart (`Slave::recover`).

The agent's containers outlive its process. When the process stops, every
executor connection drops and what it knew of frameworks without
checkpointing is lost. When it starts again, the containers of those
frameworks are orphans and are destroyed; executors of checkpointing
frameworks must subscribe again within `executor_reregistration_timeout`.
Command tasks (run by the agent itself here, not by a command executor)
carry on. Built by the Agent for `go_down` and `come_back`.
"""

from __future__ import annotations

from devcluster.mesos.agent.records import RUNNING, AgentBooks
from devcluster.mesos.agent.reporting import StatusReporter
from devcluster.mesos.agent.terminating import Terminator


class Recovery:
    def __init__(self, books: AgentBooks, reporter: StatusReporter, terminator: Terminator) -> None:
        self._books = books
        self._reporter = reporter
        self._terminator = terminator

    def process_stopped(self) -> None:
        for framework in self._books.frameworks.values():
            if not framework.info.get("checkpoint"):
                framework.terminating = True
                self._reporter.updates.forget_framework(framework.framework_id)
            for executor in framework.executors.values():
                if executor.stream is not None:
                    executor.stream.abort()

    def process_started(self) -> None:
        for framework in list(self._books.frameworks.values()):
            for executor in list(framework.executors.values()):
                if framework.terminating:
                    self._terminator.destroy_orphan(executor)
                elif not executor.is_command and executor.state == RUNNING:
                    self._terminator.expect_resubscription(executor)
