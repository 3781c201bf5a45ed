"""Task reconciliation with the master, as decisions (docs/framework.md, "Reconciliation").

Pure. A `ReconciliationRun` starts from every task recorded as running; each explicit
round asks the master about the tasks not heard of since the run started, then backs
off; when none remain the run ends with one implicit round (which makes the master
report every task it knows, so orphans surface and `statuses.decide` kills them).
While a run that follows a leader change is open, the jobs of its remaining tasks are
"unsettled" and `work.eligible_work` holds their launches back. `reconciler.Reconciler`
owns the timing and sends the RECONCILE calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from controller.mesos.tasks import TaskId, TaskIdError


def backoff(attempt: int, *, base: float, cap: float) -> float:
    """Seconds to wait for answers after explicit round `attempt` (0-based)."""
    return float(min(cap, base * (2 ** min(attempt, 30))))


@dataclass
class ReconciliationRun:
    # Task id → agent id (None when unknown), of tasks not heard of since the start.
    remaining: dict[str, str | None]
    rounds: int = 0
    implicit_sent: bool = False
    gate_launches: bool = False

    @classmethod
    def start(
        cls, running: Mapping[str, str | None] | Iterable[TaskId], *, gate_launches: bool
    ) -> ReconciliationRun:
        if isinstance(running, Mapping):
            remaining = dict(running)
        else:
            remaining = {task.value: task.agent_id for task in running}
        return cls(remaining=remaining, gate_launches=gate_launches)

    def observe(self, task_id: str) -> None:
        """Any update about a task (agent or master) answers for it."""
        self.remaining.pop(task_id, None)

    def forget(self, task_id: str) -> None:
        """The task is no longer recorded (terminal, unscheduled): stop asking."""
        self.remaining.pop(task_id, None)

    def next_round(self) -> list[tuple[str, str | None]]:
        """The explicit request of the next round; empty when the explicit phase is over."""
        if not self.remaining:
            return []
        self.rounds += 1
        return sorted(self.remaining.items())

    @property
    def settled(self) -> bool:
        return not self.remaining

    def unsettled_jobs(self) -> set[str]:
        if not self.gate_launches:
            return set()
        jobs: set[str] = set()
        for task_id in self.remaining:
            try:
                jobs.add(TaskId.parse(task_id).job_key)
            except TaskIdError:
                continue
        return jobs
