"""The in-process "network" between the emulated master and its agents.

Real Mesos masters and agents exchange libprocess messages over TCP. Here they
live in one event loop, so a message is a callback scheduled on the loop; the
network can cut an agent off (partition), forget a dead agent, and has no
master while the master restarts. Messages across a cut link are dropped, as
libprocess drops them on a broken socket. Used by the master, the agents and
LocalMesos' fault injection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devcluster.mesos.agent import Agent
    from devcluster.mesos.master import Master


class Network:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.master: Master | None = None
        self.agents: dict[str, Agent] = {}
        self.partitioned: set[str] = set()

    def reachable(self, agent_id: str) -> bool:
        return agent_id in self.agents and agent_id not in self.partitioned

    def to_master(self, agent_id: str, deliver: Callable[[Master], None]) -> None:
        master = self.master
        if master is None or not self.reachable(agent_id):
            return
        self._loop.call_soon(self._deliver_to_master, master, deliver)

    def _deliver_to_master(self, master: Master, deliver: Callable[[Master], None]) -> None:
        if self.master is master and master.running:
            deliver(master)

    def to_agent(self, agent_id: str, deliver: Callable[[Agent], None]) -> None:
        if not self.reachable(agent_id):
            return
        agent = self.agents[agent_id]
        self._loop.call_soon(self._deliver_to_agent, agent_id, agent, deliver)

    def _deliver_to_agent(
        self, agent_id: str, agent: Agent, deliver: Callable[[Agent], None]
    ) -> None:
        if self.agents.get(agent_id) is agent and agent.running and self.reachable(agent_id):
            deliver(agent)
