"""The offer pool: which offers to hold, decline, and when to SUPPRESS or REVIVE.

Pure (time is passed in). Offers wait here between launch cycles, never longer than the
hold bound; what is not used by then is declined with a refuse filter so that other
frameworks get the resources (the original held offers practically forever, #396).
When no work is pending and no cron fire is due within the fire lead, the pool declines
everything and asks for SUPPRESS; a fire due soon counts as pending work, so that its
tasks launch with offers in hand instead of waiting for a REVIVE's offers. When work
arrives while suppressed, or while refuse filters from earlier declines may still hide
agents, it asks for REVIVE. After a (re-)subscription it does not know what the master
still applies of an earlier SUPPRESS, so its first answer is REVIVE or SUPPRESS. The
launch cycle (`launch_cycle.LaunchCycle`, which owns the pool) sends the answers to Mesos.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from controller.mesos.placement import AgentOffer
from controller.mesos.tasks import AppVersion, ExecutorId, TaskIdError


@dataclass(frozen=True)
class HeldOffer:
    offer_id: str
    agent_id: str
    hostname: str
    cpus: float
    mem: float
    resources: tuple[Mapping[str, Any], ...]
    # The executors of this framework running on the agent.
    executors: frozenset[ExecutorId]
    received: float

    @classmethod
    def from_mesos(cls, offer: Mapping[str, Any], now: float) -> HeldOffer:
        """Read an offer of the OFFERS event (Mesos v1 JSON)."""
        resources = tuple(offer.get("resources") or ())
        executors: set[ExecutorId] = set()
        for executor in offer.get("executor_ids") or ():
            try:
                executors.add(ExecutorId.parse(str(executor.get("value", ""))))
            except TaskIdError:
                continue
        return cls(
            offer_id=str(offer["id"]["value"]),
            agent_id=str(offer["agent_id"]["value"]),
            hostname=str(offer.get("hostname", "")),
            cpus=_scalar(resources, "cpus"),
            mem=_scalar(resources, "mem"),
            resources=resources,
            executors=frozenset(executors),
            received=now,
        )


def _scalar(resources: Iterable[Mapping[str, Any]], name: str) -> float:
    total = 0.0
    for resource in resources:
        if resource.get("name") == name and resource.get("type", "SCALAR") == "SCALAR":
            total += float(resource.get("scalar", {}).get("value", 0.0))
    return total


@dataclass
class PoolActions:
    """What the launch cycle must tell Mesos after `OfferPool.settle`."""

    decline: list[HeldOffer] = field(default_factory=list)
    refuse_seconds: float = 0.0
    revive: bool = False
    suppress: bool = False


@dataclass
class OfferPool:
    hold_seconds: float
    busy_refuse_seconds: float
    idle_refuse_seconds: float
    offers: dict[str, HeldOffer] = field(default_factory=dict)
    # None: unknown. After a (re-)subscription the master may still apply an earlier
    # term's SUPPRESS (or not), so the first settle states it again either way.
    suppressed: bool | None = None
    # A decline since the last REVIVE may have left refuse filters on some agents.
    filters_possible: bool = False

    def add(self, offer: HeldOffer) -> None:
        self.offers[offer.offer_id] = offer

    def rescind(self, offer_id: str) -> bool:
        return self.offers.pop(offer_id, None) is not None

    def drop_agent(self, agent_id: str) -> list[HeldOffer]:
        """Forget the offers of a lost agent (Mesos invalidates them itself)."""
        gone = [o for o in self.offers.values() if o.agent_id == agent_id]
        for offer in gone:
            del self.offers[offer.offer_id]
        return gone

    def executor_gone(self, executor: ExecutorId) -> None:
        """An executor ended: offers made before say it runs, and placement must count
        its resources again for a task of its version there."""
        for key, offer in list(self.offers.items()):
            if executor in offer.executors:
                self.offers[key] = replace(offer, executors=offer.executors - {executor})

    def clear(self) -> None:
        """Forget every offer (after a disconnect the master has rescinded them all) and
        what the master is told: the next settle sends REVIVE or SUPPRESS."""
        self.offers.clear()
        self.suppressed = None
        self.filters_possible = False

    def agents(
        self, *, running_executors: Mapping[str, Iterable[AppVersion]] | None = None
    ) -> list[AgentOffer]:
        """One `AgentOffer` per agent, summing its held offers.

        `running_executors` (agent id → app versions) adds executors this framework
        knows it has launched there, which the offers may not list yet.
        """
        known_versions = running_executors or {}
        merged: dict[str, AgentOffer] = {}
        for offer in self.offers.values():
            known = merged.get(offer.agent_id)
            versions = {e.version for e in offer.executors}
            versions.update(known_versions.get(offer.agent_id, ()))
            if known is None:
                merged[offer.agent_id] = AgentOffer(
                    offer.agent_id, offer.hostname, offer.cpus, offer.mem, frozenset(versions)
                )
            else:
                merged[offer.agent_id] = AgentOffer(
                    offer.agent_id,
                    known.hostname,
                    known.cpus + offer.cpus,
                    known.mem + offer.mem,
                    known.executors | versions,
                )
        return list(merged.values())

    def take(self, offer_ids: Iterable[str]) -> list[HeldOffer] | None:
        """Remove and return exactly these offers, for one ACCEPT; None (and nothing
        removed) when one of them is no longer held.

        A plan is placed on a snapshot of the pool: an offer declined or rescinded while
        it was placed must not leave its tasks to an ACCEPT of the agent's other offers,
        which would not hold them (TASK_ERROR at the master)."""
        wanted = sorted(offer_ids)
        if any(offer_id not in self.offers for offer_id in wanted):
            return None
        return [self.offers.pop(offer_id) for offer_id in wanted]

    def next_expiry(self) -> float | None:
        if not self.offers:
            return None
        return min(o.received for o in self.offers.values()) + self.hold_seconds

    def settle(
        self, now: float, *, has_work: bool, new_work: bool, fire_due: bool = False
    ) -> PoolActions:
        """Decide declines and SUPPRESS/REVIVE after a cycle.

        `has_work`: something eligible is still waiting for resources; `new_work`: work
        became eligible since the last settle; `fire_due`: a cron fire is due soon.
        """
        if not has_work and not fire_due:
            actions = PoolActions(
                decline=self._remove(list(self.offers.values())),
                refuse_seconds=self.idle_refuse_seconds,
                suppress=self.suppressed is not True,
            )
            if actions.decline:
                self.filters_possible = True
            self.suppressed = True
            return actions
        expired = [o for o in self.offers.values() if now - o.received >= self.hold_seconds]
        actions = PoolActions(
            decline=self._remove(expired), refuse_seconds=self.busy_refuse_seconds
        )
        if self.suppressed is not False or (new_work and self.filters_possible):
            actions.revive = True
            self.suppressed = False
            self.filters_possible = False
        if actions.decline:
            self.filters_possible = True
        return actions

    def _remove(self, offers: list[HeldOffer]) -> list[HeldOffer]:
        for offer in offers:
            del self.offers[offer.offer_id]
        return sorted(offers, key=lambda o: o.offer_id)
