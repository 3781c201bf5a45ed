"""RECONCILE calls of the emulated master, and answers about unknown tasks.

Builds the `ClusterView` of what the master knows (its tasks' latest states,
registered, recovering, unreachable and gone agents) and sends the answers the
pure rules in `devcluster.mesos.reconcile` give. A KILL for a task the master
does not know is answered the same way (`Master::kill` in the Mesos master).
Built by the Master; used for RECONCILE calls and by the relay for KILL.
"""

from __future__ import annotations

from devcluster.mesos.master.forwarding import EventForwarder
from devcluster.mesos.master.records import Framework, MasterBooks
from devcluster.mesos.protocol import JSON, value
from devcluster.mesos.reconcile import ClusterView, KnownTask, reconcile


class Reconciler:
    def __init__(self, books: MasterBooks, events: EventForwarder) -> None:
        self._books = books
        self._events = events

    def reconcile(self, framework: Framework, call: JSON) -> None:
        requested = [
            (value(t["task_id"]) or "", value(t.get("agent_id")))
            for t in call["reconcile"].get("tasks", [])
        ]
        self.answer(framework, requested)

    def answer(self, framework: Framework, requested: list[tuple[str, str | None]]) -> None:
        """Send the framework the answers for `requested` [(task_id, agent_id or None)]."""
        for status in reconcile(requested, self._view(framework), framework.partition_aware):
            self._events.forward(framework, status)

    def _view(self, framework: Framework) -> ClusterView:
        books = self._books
        return ClusterView(
            tasks={
                tid: KnownTask(t.agent_id, t.reported_state(), t.executor_id)
                for tid, t in framework.tasks.items()
            },
            registered_agents=books.agents.keys(),
            recovering_agents=books.recovered.keys(),
            unreachable_agents=books.registry.unreachable,
            gone_agents=books.registry.gone.keys(),
        )
