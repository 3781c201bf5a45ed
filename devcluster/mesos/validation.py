"""The master's checks of scheduler calls, offers and tasks (pure).

Messages follow the Mesos master's validation so that frameworks see what a real
master would tell them: `validate_scheduler_call` (the 400 "Failed to validate
scheduler::Call: ..." cases), `validate_offers` (ACCEPT with bad offers ->
TASK_DROPPED / TASK_LOST) and `validate_task` (TASK_ERROR with
REASON_TASK_INVALID). Used by the master.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass

from devcluster.mesos.protocol import JSON, uuid_error, validate_id, value
from devcluster.mesos.resources import ResourceError, Resources


def validate_scheduler_call(call: JSON) -> str | None:
    kind = call.get("type")
    if kind is None:
        return "Expecting 'type' to be present"
    if kind == "SUBSCRIBE":
        if "subscribe" not in call:
            return "Expecting 'subscribe' to be present"
        info_id = value(call["subscribe"]["framework_info"].get("id"))
        call_id = value(call.get("framework_id"))
        if info_id != call_id:
            return "'framework_id' differs from 'subscribe.framework_info.id'"
        return None
    if "framework_id" not in call:
        return "Expecting 'framework_id' to be present"
    required = {
        "ACCEPT": "accept",
        "DECLINE": "decline",
        "KILL": "kill",
        "SHUTDOWN": "shutdown",
        "ACKNOWLEDGE": "acknowledge",
        "RECONCILE": "reconcile",
        "MESSAGE": "message",
        "REQUEST": "request",
        "ACCEPT_INVERSE_OFFERS": "accept_inverse_offers",
        "DECLINE_INVERSE_OFFERS": "decline_inverse_offers",
        "UPDATE_FRAMEWORK": "update_framework",
    }
    field_name = required.get(str(kind))
    if field_name is not None and field_name not in call:
        return f"Expecting '{field_name}' to be present"
    if kind == "ACKNOWLEDGE":
        return uuid_error(call["acknowledge"]["uuid"])
    return None


def validate_framework_info(info: JSON) -> str | None:
    if "id" in info:
        problem = validate_id(value(info["id"]) or "")
        if problem is not None:
            return problem
    timeout = info.get("failover_timeout", 0)
    try:
        if float(timeout) < 0:
            return "'failover_timeout' must be non-negative"
    except (TypeError, ValueError):
        return f"'failover_timeout' is not a number: {timeout!r}"
    return None


@dataclass(frozen=True)
class OfferRef:
    offer_id: str
    framework_id: str
    agent_id: str


def validate_offers(
    offer_ids: list[str], offers: Mapping[str, OfferRef], framework_id: str
) -> str | None:
    if not offer_ids:
        return "No offers specified"
    seen: set[str] = set()
    for offer_id in offer_ids:
        if offer_id in seen:
            return f"Duplicate offer {offer_id} in offer list"
        seen.add(offer_id)
    for offer_id in offer_ids:
        if offer_id not in offers:
            return f"Offer {offer_id} is no longer valid"
    for offer_id in offer_ids:
        owner = offers[offer_id].framework_id
        if owner != framework_id:
            return (
                f"Offer {offer_id} has invalid framework {owner} "
                f"while framework {framework_id} is expected"
            )
    first_agent = offers[offer_ids[0]].agent_id
    for offer_id in offer_ids:
        agent = offers[offer_id].agent_id
        if agent != first_agent:
            return (
                f"Aggregated offers must belong to one single agent. Offer {offer_id} "
                f"uses agent {agent} and agent {first_agent}"
            )
    return None


@dataclass(frozen=True)
class TaskContext:
    framework_id: str
    agent_id: str
    known_task_ids: Set[str]
    unreachable_task_ids: Set[str]
    executors_on_agent: Mapping[str, JSON]


def executor_with_framework(executor: JSON, framework_id: str) -> JSON:
    """The master fills in `ExecutorInfo.framework_id` when it is missing."""
    if "framework_id" in executor:
        return executor
    return {**executor, "framework_id": {"value": framework_id}}


def validate_task(
    task: JSON, context: TaskContext, available: Resources
) -> tuple[str | None, Resources]:
    """(error or None, resources the task and a new executor consume)."""
    task_id = value(task.get("task_id")) or ""
    problem = validate_id(task_id)
    if problem is not None:
        return problem, Resources()
    if task_id in context.known_task_ids:
        return f"Task has duplicate ID: {task_id}", Resources()
    if task_id in context.unreachable_task_ids:
        return f"Task reuses the ID of an unreachable task: {task_id}", Resources()
    agent_id = value(task.get("agent_id")) or ""
    if agent_id != context.agent_id:
        return (
            f"Task uses invalid agent {agent_id} while agent {context.agent_id} is expected",
            Resources(),
        )
    if not task.get("resources"):
        return "Task uses no resources", Resources()
    try:
        total = Resources.parse(task["resources"])
    except ResourceError as exc:
        return f"Task uses invalid resources: {exc}", Resources()
    if ("executor" in task) == ("command" in task):
        return (
            "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present",
            Resources(),
        )
    executor = task.get("executor")
    if executor is not None:
        executor = executor_with_framework(executor, context.framework_id)
        executor_id = value(executor.get("executor_id")) or ""
        problem = validate_id(executor_id)
        if problem is not None:
            return problem, Resources()
        actual = value(executor["framework_id"])
        if actual != context.framework_id:
            return (
                f"ExecutorInfo has an invalid FrameworkID (Actual: {actual} "
                f"vs Expected: {context.framework_id})",
                Resources(),
            )
        if executor.get("type", "CUSTOM") != "CUSTOM":
            return "'ExecutorInfo.type' must be 'CUSTOM'", Resources()
        if "command" not in executor:
            return "'ExecutorInfo.command' must be set", Resources()
        existing = context.executors_on_agent.get(executor_id)
        if existing is not None and existing != executor:
            return (
                "ExecutorInfo is not compatible with existing ExecutorInfo with same ExecutorID",
                Resources(),
            )
        if existing is None:
            try:
                total = total + Resources.parse(executor.get("resources"))
            except ResourceError as exc:
                return f"Executor uses invalid resources: {exc}", Resources()
    if not available.contains(total):
        return (
            f"Total resources {total.describe()} required by task and its executor is more than "
            f"available {available.describe()}",
            Resources(),
        )
    return None, total
