"""When the campaign's stack is whole: the rule the monitor samples a few times a
second (`devcluster.campaign.rig.Rig.observe` gathers the facts, `whole` decides).
A fault's window lasts from its start until the first whole sample after it was
undone (docs/campaign.md#the-fault-model). Pure; tested in
tests/campaign/test_checker.py with the checker's allowances.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Observation:
    leader: str | None
    """The replica ZooKeeper names leader (None: none, or ZooKeeper did not answer)."""
    leader_alive: bool = False
    leader_frozen: bool = False
    leader_cut_off: bool = False
    """A fault has cut one of its links to ZooKeeper or to the master."""
    subscribed_frameworks: int = 0
    registered_agents: int = 0


def whole(observation: Observation, *, agents: int) -> bool:
    """A leader that is alive, not frozen and not cut off; exactly one framework
    subscribed to the master; every one of the `agents` registered."""
    return (
        observation.leader is not None
        and observation.leader_alive
        and not observation.leader_frozen
        and not observation.leader_cut_off
        and observation.subscribed_frameworks == 1
        and observation.registered_agents == agents
    )
