"""The state layer's exceptions (QueueFull comes from `controller.operations`).

    SchedulingError (controller.operations)
    ├── QueueFull                 a queue already holds its limit of job entries
    └── StateError                the ZooKeeper state could not be changed
        ├── NotLeader             this process does not lead (now or at commit time)
        ├── StateConflict         ZooKeeper refused a write the in-memory view allowed
        ├── StateUnavailable      ZooKeeper did not answer; the outcome may be unknown
        └── UnknownDefinition     the job or app named is not stored

kazoo's own exceptions never leave the state package: the store and the election
translate them at the boundary.
"""

from __future__ import annotations

from controller.operations import SchedulingError


class StateError(SchedulingError):
    """A change to the ZooKeeper state did not happen."""


class NotLeader(StateError):
    """Refused because this process is not the leader (a fenced write).

    Raised before any request when the election says so, and when ZooKeeper rejects a
    transaction because the writer's election node no longer exists.
    """


class StateConflict(StateError):
    """ZooKeeper refused a transaction that the in-memory view said would succeed.

    The store has re-read its view from ZooKeeper before raising; the caller may retry
    with fresh decisions.
    """


class StateUnavailable(StateError):
    """ZooKeeper did not answer in time. The store refuses writes until `load()` runs."""


class UnknownDefinition(StateError, KeyError):
    """The job or app key is not stored."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown definition"
