"""Offers of the emulated master: allocation, refuse filters, DECLINE/REVIVE/SUPPRESS.

All free resources of an agent form one offer, given to the eligible
framework with the fewest allocated cpus ("least allocated cpus first", a
simple stand-in for Mesos's DRF allocator). A framework is eligible when it
is subscribed, not suppressed, and has no unexpired refuse filter for that
agent covering what is free (`Filters.refuse_seconds` in scheduler.proto,
default 5 s). Allocation runs every `offer_refresh` seconds and at once when
asked (`allocate_soon`: a subscription, a REVIVE, an agent registering). Built
and called by the Master; the other master modules call `allocate_soon`,
`refuse` and `rescind_offer`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

from devcluster.mesos.config import EmulatorConfig
from devcluster.mesos.master.forwarding import EventForwarder
from devcluster.mesos.master.records import AgentRecord, Framework, MasterBooks, Offer
from devcluster.mesos.protocol import JSON, ident, is_terminal, value
from devcluster.mesos.resources import Resources

# Less than this much free cpus *and* memory is not worth an offer.
MIN_CPUS = 0.01
MIN_MEM = 32.0


class Allocator:
    def __init__(
        self,
        books: MasterBooks,
        events: EventForwarder,
        config: EmulatorConfig,
        loop: asyncio.AbstractEventLoop,
        master_id: str,
        running: Callable[[], bool],
    ) -> None:
        self._books = books
        self._events = events
        self._config = config
        self._loop = loop
        self._master_id = master_id
        self._running = running
        self._offer_ids = itertools.count()
        self._pending = False

    async def run(self) -> None:
        """The periodic allocation (the master runs it as a task until it stops)."""
        while True:
            await asyncio.sleep(self._config.offer_refresh)
            self.allocate()

    def allocate_soon(self) -> None:
        if not self._pending:
            self._pending = True
            self._loop.call_soon(self.allocate)

    def allocate(self) -> None:
        self._pending = False
        if not self._running():
            return
        books = self._books
        candidates = [
            fw
            for fw in books.frameworks.values()
            if fw.connected and fw.active and not fw.suppressed
        ]
        if not candidates:
            return
        now = self._loop.time()
        batches: dict[str, list[JSON]] = {}
        shares = {fw.framework_id: self._allocated_cpus(fw) for fw in candidates}
        for agent in books.agents.values():
            if not agent.active or not agent.connected:
                continue
            available = agent.total - agent.used() - self._offered(agent)
            if (
                available.scalars.get("cpus", 0.0) < MIN_CPUS
                and available.scalars.get("mem", 0.0) < MIN_MEM
            ):
                continue
            eligible = [
                fw for fw in candidates if not _filtered(fw, agent.agent_id, available, now)
            ]
            if not eligible:
                continue
            chosen = min(eligible, key=lambda fw: (shares[fw.framework_id], fw.framework_id))
            shares[chosen.framework_id] += available.scalars.get("cpus", 0.0)
            offer = Offer(
                f"{self._master_id}-O{next(self._offer_ids)}",
                chosen.framework_id,
                agent.agent_id,
                available,
            )
            books.offers[offer.offer_id] = offer
            chosen.offers.add(offer.offer_id)
            agent.offers.add(offer.offer_id)
            batches.setdefault(chosen.framework_id, []).append(offer_json(offer, chosen, agent))
        for framework_id, offers in batches.items():
            self._events.send(
                books.frameworks[framework_id], {"type": "OFFERS", "offers": {"offers": offers}}
            )

    def _offered(self, agent: AgentRecord) -> Resources:
        total = Resources()
        for offer_id in agent.offers:
            total = total + self._books.offers[offer_id].resources
        return total

    def _allocated_cpus(self, framework: Framework) -> float:
        cpus = sum(
            t.resources.scalars.get("cpus", 0.0)
            for t in framework.tasks.values()
            if not is_terminal(t.state)
        )
        return cpus + sum(
            self._books.offers[o].resources.scalars.get("cpus", 0.0) for o in framework.offers
        )

    def rescind_offer(self, offer_id: str) -> bool:
        offer = self._books.remove_offer(offer_id)
        if offer is None:
            return False
        framework = self._books.frameworks.get(offer.framework_id)
        if framework is not None:
            self._events.rescind(framework, offer_id)
        return True

    def refuse(
        self, framework: Framework, agent_id: str, resources: Resources, filters: JSON | None
    ) -> None:
        seconds = self._config.default_refuse_seconds
        if filters and "refuse_seconds" in filters:
            seconds = float(filters["refuse_seconds"])
        if seconds > 0 and not resources.is_empty():
            framework.filters[agent_id] = (self._loop.time() + seconds, resources)

    # ------------------------------------------------------- scheduler calls

    def decline(self, framework: Framework, call: JSON) -> None:
        decline = call["decline"]
        for offer_ref in decline.get("offer_ids", []):
            offer_id = value(offer_ref) or ""
            offer = self._books.offers.get(offer_id)
            if offer is None or offer.framework_id != framework.framework_id:
                continue
            self._books.remove_offer(offer_id)
            self.refuse(framework, offer.agent_id, offer.resources, decline.get("filters"))

    def revive(self, framework: Framework, call: JSON) -> None:
        framework.filters.clear()
        framework.suppressed = False
        self.allocate_soon()

    def suppress(self, framework: Framework, call: JSON) -> None:
        framework.suppressed = True


def _filtered(framework: Framework, agent_id: str, available: Resources, now: float) -> bool:
    """Whether a refuse filter keeps `available` on the agent from the framework
    (an expired filter is dropped)."""
    entry = framework.filters.get(agent_id)
    if entry is None:
        return False
    expiry, refused = entry
    if expiry <= now:
        del framework.filters[agent_id]
        return False
    return refused.contains(available)


def offer_json(offer: Offer, framework: Framework, agent: AgentRecord) -> JSON:
    """An `Offer` of the OFFERS event (scheduler.proto / mesos.proto)."""
    endpoint = {"hostname": agent.hostname, "ip": "127.0.0.1", "port": agent.port}
    return {
        "id": ident(offer.offer_id),
        "framework_id": ident(framework.framework_id),
        "agent_id": ident(agent.agent_id),
        "hostname": agent.hostname,
        "url": {"scheme": "http", "address": endpoint, "path": "/slave(1)"},
        "resources": offer.resources.to_json(allocation_role=framework.role),
        "attributes": agent.spec.attributes_json(),
        "executor_ids": [ident(e) for e in framework.executors.get(agent.agent_id, {})],
        "allocation_info": {"role": framework.role},
    }
