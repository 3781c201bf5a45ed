"""The ACCEPT call of the emulated master: offer validation and task launches.

The offers named must exist, belong to the framework, be unique and come from
one agent (`validation.validate_offers`); otherwise every task of a LAUNCH is
answered TASK_DROPPED (TASK_LOST without PARTITION_AWARE),
REASON_INVALID_OFFERS, and the framework's offers among them are used up.
Valid offers are pooled; each task is validated against what is left
(`validation.validate_task`, TASK_ERROR / REASON_TASK_INVALID on failure),
recorded TASK_STAGING and sent to its agent. What the operations leave unused
is filtered for `filters.refuse_seconds`. LAUNCH_GROUP tasks get TASK_ERROR;
other operations are dropped with a log line. The `Faults` launch drops lose
a launch before the master or before the agent. Follows `Master::accept` in
the Mesos master. Built by the Master, which routes ACCEPT calls here.
"""

from __future__ import annotations

import logging
import time

from devcluster.mesos.faults import DROP_AT_AGENT, DROP_AT_MASTER, Faults
from devcluster.mesos.master.allocating import Allocator
from devcluster.mesos.master.forwarding import EventForwarder
from devcluster.mesos.master.records import AgentRecord, Framework, MasterBooks, MasterTask
from devcluster.mesos.network import Network
from devcluster.mesos.protocol import (
    JSON,
    REASON_INVALID_OFFERS,
    REASON_TASK_INVALID,
    SOURCE_MASTER,
    TASK_DROPPED,
    TASK_ERROR,
    TASK_LOST,
    TASK_STAGING,
    make_status,
    value,
)
from devcluster.mesos.resources import Resources
from devcluster.mesos.validation import (
    OfferRef,
    TaskContext,
    executor_with_framework,
    validate_offers,
    validate_task,
)

log = logging.getLogger(__name__)


class OfferAcceptance:
    def __init__(
        self,
        books: MasterBooks,
        events: EventForwarder,
        allocator: Allocator,
        network: Network,
        faults: Faults,
    ) -> None:
        self._books = books
        self._events = events
        self._allocator = allocator
        self._network = network
        self._faults = faults

    def accept(self, framework: Framework, call: JSON) -> None:
        books = self._books
        accept = call["accept"]
        offer_ids = [value(o) or "" for o in accept.get("offer_ids", [])]
        operations = accept.get("operations", [])
        refs = {
            oid: OfferRef(oid, o.framework_id, o.agent_id)
            for oid, o in books.offers.items()
            if oid in offer_ids
        }
        problem = validate_offers(offer_ids, refs, framework.framework_id)
        if problem is not None:
            self._refuse_invalid_offers(framework, offer_ids, operations, problem)
            return
        offered = Resources()
        agent_id = ""
        for offer_id in offer_ids:
            offer = books.remove_offer(offer_id)
            assert offer is not None
            offered = offered + offer.resources
            agent_id = offer.agent_id
        agent = books.agents[agent_id]
        remaining = offered
        for operation in operations:
            kind = operation.get("type")
            if kind == "LAUNCH":
                for task in (operation.get("launch") or {}).get("task_infos", []):
                    remaining = self._launch(framework, agent, task, remaining)
            elif kind == "LAUNCH_GROUP":
                for task in ((operation.get("launch_group") or {}).get("task_group") or {}).get(
                    "tasks", []
                ):
                    self._task_error(
                        framework, task, "LAUNCH_GROUP is not supported by this emulator"
                    )
            else:
                log.warning(
                    "dropping unsupported %s operation from framework %s",
                    kind,
                    framework.framework_id,
                )
        self._allocator.refuse(framework, agent_id, remaining, accept.get("filters"))

    def _refuse_invalid_offers(
        self, framework: Framework, offer_ids: list[str], operations: list[JSON], problem: str
    ) -> None:
        for offer_id in offer_ids:
            offer = self._books.offers.get(offer_id)
            if offer is not None and offer.framework_id == framework.framework_id:
                self._books.remove_offer(offer_id)
        lost_state = TASK_DROPPED if framework.partition_aware else TASK_LOST
        for operation in operations:
            for task in (operation.get("launch") or {}).get("task_infos", []):
                self._events.forward(
                    framework,
                    make_status(
                        task_id=value(task.get("task_id")) or "",
                        state=lost_state,
                        source=SOURCE_MASTER,
                        agent_id=value(task.get("agent_id")),
                        reason=REASON_INVALID_OFFERS,
                        message=f"Task launched with invalid offers: {problem}",
                    ),
                )

    def _task_error(self, framework: Framework, task: JSON, message: str) -> None:
        self._events.forward(
            framework,
            make_status(
                task_id=value(task.get("task_id")) or "",
                state=TASK_ERROR,
                source=SOURCE_MASTER,
                agent_id=value(task.get("agent_id")),
                reason=REASON_TASK_INVALID,
                message=message,
            ),
        )

    def _launch(
        self, framework: Framework, agent: AgentRecord, task: JSON, available: Resources
    ) -> Resources:
        """Launch one task out of `available`; returns what is left."""
        context = TaskContext(
            framework_id=framework.framework_id,
            agent_id=agent.agent_id,
            known_task_ids=framework.tasks.keys(),
            unreachable_task_ids=framework.unreachable_tasks.keys(),
            executors_on_agent=framework.executors.get(agent.agent_id, {}),
        )
        problem, consumed = validate_task(task, context, available)
        if problem is not None:
            self._task_error(framework, task, problem)
            return available
        where = self._faults.take_launch_drop(value(task["task_id"]) or "")
        if where == DROP_AT_MASTER:
            log.warning(
                "fault injection: launch of task %s lost before the master", value(task["task_id"])
            )
            return available - consumed
        executor_id: str | None = None
        if "executor" in task:
            executor = executor_with_framework(task["executor"], framework.framework_id)
            task = {**task, "executor": executor}
            executor_id = value(executor["executor_id"])
            assert executor_id is not None
            framework.executors.setdefault(agent.agent_id, {})[executor_id] = executor
            agent.executors.setdefault(framework.framework_id, {})[executor_id] = executor
        own = Resources.parse(task.get("resources"))
        record = MasterTask(task, framework.framework_id, agent.agent_id, executor_id, own)
        record.statuses.append({"state": TASK_STAGING, "timestamp": time.time()})
        framework.tasks[record.task_id] = record
        agent.tasks.setdefault(framework.framework_id, {})[record.task_id] = record
        if where == DROP_AT_AGENT:
            log.warning("fault injection: launch of task %s lost before the agent", record.task_id)
        else:
            framework_info = framework.info
            self._network.to_agent(agent.agent_id, lambda a: a.run_task(framework_info, task))
        return available - consumed
