"""The master's answers to RECONCILE calls (pure).

Follows `Master::reconcile` in the Mesos master and Mesos's reconciliation
documentation:
implicit reconciliation (no tasks) answers every task the master knows with
its latest state; explicit reconciliation answers per task: known -> latest
state; unknown while its agent (or, without an agent id, any agent) is still
re-registering after a master failover -> no answer; agent registered ->
TASK_GONE; agent unreachable -> TASK_UNREACHABLE; agent gone ->
TASK_GONE_BY_OPERATOR; otherwise TASK_UNKNOWN. Frameworks without
PARTITION_AWARE get TASK_LOST for the last four. Answers come from the
master (SOURCE_MASTER, REASON_RECONCILIATION) and carry no uuid.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass

from devcluster.mesos.protocol import (
    JSON,
    REASON_RECONCILIATION,
    SOURCE_MASTER,
    TASK_GONE,
    TASK_GONE_BY_OPERATOR,
    TASK_UNKNOWN,
    TASK_UNREACHABLE,
    make_status,
    state_for,
)


@dataclass(frozen=True)
class KnownTask:
    agent_id: str
    state: str
    executor_id: str | None


@dataclass(frozen=True)
class ClusterView:
    tasks: Mapping[str, KnownTask]
    registered_agents: Set[str]
    recovering_agents: Set[str]
    unreachable_agents: Mapping[str, float]
    gone_agents: Set[str]


def _latest(task_id: str, task: KnownTask) -> JSON:
    return make_status(
        task_id=task_id,
        state=task.state,
        source=SOURCE_MASTER,
        agent_id=task.agent_id,
        executor_id=task.executor_id,
        reason=REASON_RECONCILIATION,
        message="Reconciliation: Latest task state",
    )


def reconcile(
    requested: list[tuple[str, str | None]], view: ClusterView, partition_aware: bool
) -> list[JSON]:
    """Status updates answering `requested` [(task_id, agent_id or None)]."""
    if not requested:
        return [_latest(task_id, task) for task_id, task in view.tasks.items()]
    answers: list[JSON] = []
    for task_id, agent_id in requested:
        known = view.tasks.get(task_id)
        if known is not None:
            answers.append(_latest(task_id, known))
            continue
        if (agent_id is not None and agent_id in view.recovering_agents) or (
            agent_id is None and view.recovering_agents
        ):
            continue
        extra: JSON = {}
        if agent_id is not None and agent_id in view.registered_agents:
            state, message = TASK_GONE, "Reconciliation: Task is unknown to the agent"
        elif agent_id is not None and agent_id in view.unreachable_agents:
            state, message = TASK_UNREACHABLE, "Reconciliation: Task is unreachable"
            nanos = int(view.unreachable_agents[agent_id] * 1e9)
            extra["unreachable_time"] = {"nanoseconds": nanos}
        elif agent_id is not None and agent_id in view.gone_agents:
            state, message = TASK_GONE_BY_OPERATOR, "Reconciliation: Task is gone"
        else:
            state, message = TASK_UNKNOWN, "Reconciliation: Task is unknown"
        answers.append(
            make_status(
                task_id=task_id,
                state=state_for(state, partition_aware),
                source=SOURCE_MASTER,
                agent_id=agent_id,
                reason=REASON_RECONCILIATION,
                message=message,
                extra=extra,
            )
        )
    return answers
