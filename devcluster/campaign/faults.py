"""The fault schedule of a trial, drawn from its seed: which faults, when, for how long.

`plan` is pure: one `random.Random(seed)` decides everything, so a seed names its
schedule and rerunning the seed replays it (the moments are offsets from the start of
the fault phase). Faults on one resource (the leader, the ZooKeeper ensemble, the Mesos
master, one agent, the API server) never overlap; faults on different resources do, at
random. `timeline` turns a schedule into the begin and end actions the rig
(`devcluster.campaign.rig`) performs. Called by the trial and tested in
tests/campaign/test_faults.py.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    KILL_LEADER = "kill-leader"
    """kill -9 of the leader; a new replica starts after the hold."""
    FREEZE_LEADER = "freeze-leader"
    """SIGSTOP of the leader for longer than its ZooKeeper session, then SIGCONT."""
    QUORUM_LOSS = "quorum-loss"
    """Two of the three ZooKeeper servers stopped, then started again."""
    ZK_SERVER_RESTART = "zk-server-restart"
    """One ZooKeeper server stopped and started again (the quorum holds)."""
    MASTER_RESTART = "master-restart"
    """The Mesos master crashes and a new one starts on its port."""
    PARTITION_AGENT = "partition-agent"
    """An agent cut off from the master (its tasks run on), then healed."""
    AGENT_RESTART = "agent-restart"
    """An agent process down (its tasks run on) and up again, recovering them."""
    CRASH_EXECUTOR = "crash-executor"
    """The executor of a running task killed on its agent."""
    DROP_LAUNCH = "drop-launch"
    """The next task launch accepted with 202 but lost by the master."""
    DROP_LAUNCH_AT_AGENT = "drop-launch-at-agent"
    """The next task launch recorded STAGING by the master but never reaching its agent."""
    DUPLICATE_UPDATES = "duplicate-updates"
    """Every status update sent to the framework twice, for the hold."""
    REORDER_UPDATES = "reorder-updates"
    """Status updates held back so later ones overtake them, for the hold."""
    APISERVER_RESTART = "apiserver-restart"
    """The Kubernetes API server killed and started again."""
    ZK_SESSION_EXPIRY = "zk-session-expiry"
    """The leader's connections to ZooKeeper aborted and refused until the ensemble has
    expired its session; then it may connect again."""
    PARTITION_ZK = "partition-zk"
    """The leader cut off from every ZooKeeper server (nothing flows), then healed."""
    PARTITION_MASTER = "partition-master"
    """The leader cut off from the Mesos master (nothing flows), then healed."""
    DELAY_UPDATES = "delay-updates"
    """Every status update reaches the framework late, for the hold."""


# Faults during which no replica may lead, so no timer fires (the next leader catches
# the fires up). A ZooKeeper server restart is one: a leader connected to that server is
# suspended (it stops acting) until it reconnects to another (docs/state.md, leader
# election); so is a leader cut off from ZooKeeper, until it reconnects or its session
# expires and the standby is elected.
LEADERLESS = frozenset(
    {
        Kind.KILL_LEADER,
        Kind.FREEZE_LEADER,
        Kind.QUORUM_LOSS,
        Kind.ZK_SERVER_RESTART,
        Kind.ZK_SESSION_EXPIRY,
        Kind.PARTITION_ZK,
    }
)
# Faults that act on the leader's process or its links.
ON_LEADER = frozenset(
    {
        Kind.KILL_LEADER,
        Kind.FREEZE_LEADER,
        Kind.ZK_SESSION_EXPIRY,
        Kind.PARTITION_ZK,
        Kind.PARTITION_MASTER,
    }
)
AGENT_FAULTS = frozenset({Kind.PARTITION_AGENT, Kind.AGENT_RESTART, Kind.CRASH_EXECUTOR})
ALL_KINDS = tuple(Kind)


def resource(kind: Kind, target: int, agents: int) -> str:
    """What a fault acts on; two faults on one resource never overlap."""
    if kind in ON_LEADER:
        return "leader"
    if kind in (Kind.QUORUM_LOSS, Kind.ZK_SERVER_RESTART):
        return "zookeeper"
    if kind in AGENT_FAULTS:
        return f"agent-{target % agents}"
    if kind is Kind.APISERVER_RESTART:
        return "apiserver"
    return "mesos"


@dataclass(frozen=True)
class Fault:
    at: float
    """Seconds after the fault phase began."""
    kind: Kind
    hold: float
    """Seconds until it is undone (0: it is one act)."""
    target: int
    """Which agent, ZooKeeper servers or task it picks (taken modulo what exists)."""

    def describe(self) -> str:
        held = f" for {self.hold:.1f}s" if self.hold else ""
        return f"{self.kind}#{self.target}@{self.at:.1f}s{held}"


def _hold(kind: Kind, rng: random.Random, session_timeout: float) -> float:
    if kind in (Kind.FREEZE_LEADER, Kind.ZK_SESSION_EXPIRY):
        return round(session_timeout * rng.uniform(1.5, 3.0), 1)
    if kind in (
        Kind.KILL_LEADER,
        Kind.QUORUM_LOSS,
        Kind.PARTITION_AGENT,
        Kind.AGENT_RESTART,
        Kind.PARTITION_ZK,
        Kind.PARTITION_MASTER,
    ):
        return round(rng.uniform(1.0, 6.0), 1)
    if kind in (
        Kind.ZK_SERVER_RESTART,
        Kind.DUPLICATE_UPDATES,
        Kind.REORDER_UPDATES,
        Kind.DELAY_UPDATES,
        Kind.APISERVER_RESTART,
    ):
        return round(rng.uniform(2.0, 8.0), 1)
    return 0.0


def plan(
    rng: random.Random,
    *,
    duration: float,
    kinds: Sequence[Kind] = ALL_KINDS,
    mean_gap: float = 6.0,
    agents: int = 3,
    session_timeout: float = 2.0,
) -> tuple[Fault, ...]:
    """Faults at random moments of a `duration`-second phase, about `mean_gap` apart,
    sometimes two at once; each ends (its hold) before the phase does."""
    if not kinds:
        return ()
    faults: list[Fault] = []
    busy: dict[str, float] = {}
    moment = rng.uniform(1.0, mean_gap)
    while moment < duration:
        for _ in range(2 if rng.random() < 0.3 else 1):
            kind = rng.choice(list(kinds))
            target = rng.randrange(1000)
            hold = _hold(kind, rng, session_timeout)
            name, at = resource(kind, target, agents), round(moment, 1)
            if busy.get(name, -1.0) >= at or at + hold >= duration:
                continue
            busy[name] = at + hold + 1.0
            faults.append(Fault(at, kind, hold, target))
        moment += rng.expovariate(1.0 / mean_gap) + 0.5
    return tuple(faults)


def update_delay(fault: Fault) -> float:
    """How late a `delay-updates` fault makes each status update: 0.5 to 3 s, named by
    its target."""
    return 0.5 + (fault.target % 6) * 0.5


def lingering(fault: Fault, *, launch_timeout: float) -> float:
    """Seconds a fault still acts after it is undone: delayed updates are still on
    their way, and a launch lost at the agent stays STAGING until the controller's
    launch timeout ends it (checked every quarter of the timeout at least)."""
    if fault.kind is Kind.DELAY_UPDATES:
        return update_delay(fault)
    if fault.kind is Kind.DROP_LAUNCH_AT_AGENT:
        return launch_timeout * 1.25 + 1.0
    return 0.0


@dataclass(frozen=True)
class Action:
    at: float
    fault: int
    """Index of the fault in the schedule."""
    begin: bool
    """True: the fault starts; False: it is undone."""


def timeline(faults: Sequence[Fault]) -> list[Action]:
    """The begin and end actions of a schedule, in the order they happen (instant
    faults have a begin only)."""
    actions = [Action(fault.at, index, True) for index, fault in enumerate(faults)]
    actions += [
        Action(round(fault.at + fault.hold, 1), index, False)
        for index, fault in enumerate(faults)
        if fault.hold
    ]
    return sorted(actions, key=lambda action: (action.at, action.begin, action.fault))
