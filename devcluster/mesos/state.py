"""The master's `GET /state` document, in the JSON shape a real master returns.

Top-level keys, `frameworks[]` (with `tasks`, `unreachable_tasks`,
`completed_tasks`, `executors`, `offers`), `slaves[]` and
`completed_frameworks[]` follow the Mesos master's `/state` handler;
resources use the flat `{"cpus": .., "ports": "[a-b]"}` form. Used by the
master's HTTP handler and by LocalMesos.state().
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from devcluster.mesos.protocol import JSON, MESOS_VERSION, is_terminal
from devcluster.mesos.resources import Resources

if TYPE_CHECKING:
    from devcluster.mesos.master import Master
    from devcluster.mesos.master.records import AgentRecord, Framework, MasterTask


def _task(task: MasterTask) -> JSON:
    info = task.info
    result: JSON = {
        "id": task.task_id,
        "name": info.get("name", ""),
        "framework_id": task.framework_id,
        "executor_id": task.executor_id or "",
        "slave_id": task.agent_id,
        "agent_id": task.agent_id,
        "state": task.state,
        "resources": task.resources.to_state(),
        "statuses": list(task.statuses),
    }
    for key in ("labels", "discovery", "container"):
        if key in info:
            result[key] = info[key]
    return result


def _framework(master: Master, framework: Framework) -> JSON:
    used = Resources()
    for task in framework.tasks.values():
        if not is_terminal(task.state):
            used = used + task.resources
    for on_agent in framework.executors.values():
        for executor in on_agent.values():
            used = used + Resources.parse(executor.get("resources"))
    offered = Resources()
    offers: list[JSON] = []
    for offer_id in framework.offers:
        offer = master.offers[offer_id]
        offered = offered + offer.resources
        offers.append(
            {
                "id": offer_id,
                "framework_id": offer.framework_id,
                "slave_id": offer.agent_id,
                "resources": offer.resources.to_state(),
            }
        )
    info = framework.info
    executors: list[JSON] = []
    for agent_id, by_id in framework.executors.items():
        for executor_id, executor in by_id.items():
            executors.append(
                {
                    "executor_id": executor_id,
                    "name": executor.get("name", ""),
                    "framework_id": framework.framework_id,
                    "command": executor.get("command", {}),
                    "resources": Resources.parse(executor.get("resources")).to_state(),
                    "slave_id": agent_id,
                }
            )
    return {
        "id": framework.framework_id,
        "name": info.get("name", ""),
        "user": info.get("user", ""),
        "hostname": info.get("hostname", ""),
        "webui_url": info.get("webui_url", ""),
        "principal": info.get("principal", ""),
        "role": framework.role,
        "roles": info.get("roles", [framework.role]),
        "checkpoint": bool(info.get("checkpoint", False)),
        "failover_timeout": framework.failover_timeout,
        "capabilities": sorted(framework.capabilities),
        "active": framework.active,
        "connected": framework.connected,
        "recovered": framework.recovered,
        "registered_time": framework.registered_time,
        "unregistered_time": framework.unregistered_time or 0,
        "used_resources": used.to_state(),
        "offered_resources": offered.to_state(),
        "resources": (used + offered).to_state(),
        "tasks": [_task(t) for t in framework.tasks.values()],
        "unreachable_tasks": [_task(t) for t in framework.unreachable_tasks.values()],
        "completed_tasks": [_task(t) for t in framework.completed_tasks],
        "offers": offers,
        "executors": executors,
    }


def _agent(master: Master, agent: AgentRecord) -> JSON:
    used = agent.used()
    offered = Resources()
    for offer_id in agent.offers:
        offered = offered + master.offers[offer_id].resources
    return {
        "id": agent.agent_id,
        "pid": f"slave(1)@127.0.0.1:{agent.port}",
        "hostname": agent.hostname,
        "port": agent.port,
        "registered_time": agent.registered_time,
        "reregistered_time": agent.reregistered_time,
        "resources": agent.total.to_state(),
        "used_resources": used.to_state(),
        "offered_resources": offered.to_state(),
        "unreserved_resources": agent.total.to_state(),
        "reserved_resources": {},
        "attributes": dict(agent.spec.attributes),
        "active": agent.active,
        "connected": agent.connected,
        "version": MESOS_VERSION,
    }


def master_state(master: Master) -> JSON:
    info = master.master_info()
    frameworks = list(master.frameworks.values())
    return {
        "version": MESOS_VERSION,
        "id": master.master_id,
        "pid": info["pid"],
        "hostname": info["hostname"],
        "start_time": master.start_time,
        "elected_time": master.start_time,
        "leader": info["pid"],
        "leader_info": info,
        "activated_slaves": sum(1 for a in master.agents.values() if a.active),
        "deactivated_slaves": sum(1 for a in master.agents.values() if not a.active),
        "unreachable_slaves": len(master.registry.unreachable),
        "recovered_slaves": len(master.recovered),
        "gone_slaves": sorted(master.registry.gone),
        "slaves": [_agent(master, a) for a in master.agents.values()],
        "frameworks": [_framework(master, f) for f in frameworks],
        "completed_frameworks": [
            _framework(master, f) for f in master.completed_frameworks.values()
        ],
        "orphan_tasks": [],
        "unregistered_frameworks": [],
        "now": time.time(),
        "flags": {
            "agent_ping_timeout": f"{master.config.agent_ping_timeout}secs",
            "max_agent_ping_timeouts": str(master.config.max_agent_ping_timeouts),
            "allocation_interval": f"{master.config.offer_refresh}secs",
        },
    }
