"""The seam to Mesos: the calls this framework makes to the master, as Protocols.

`MesosCalls` is what the engine's parts need (the launch cycle accepts, declines,
revives, suppresses; the status pipeline acknowledges; the kill book kills; the
reconciler reconciles; the operations message executors and list the master's
executors; the roll-out shuts executors of outdated app versions down).
`MesosConnection` adds the subscription's lifecycle, which only the engine drives.
`driver.MesosDriver` implements it over pymesos; the unit tests use an in-memory fake.
A `MesosFactory` builds the connection of one leadership term from the sink its events
go to and the test of whether this process still leads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Protocol

from controller.mesos.events import EventSink, JsonObject
from controller.mesos.states import Acknowledgement
from controller.state.errors import NotLeader

# ACCEPTs in flight at once (each waits for the master's answer on a connection of its
# own: a fire's runs binpacked over about ten agents go out in one round), and batches
# of acknowledgements in flight at once (each pipelined on one).
ACCEPTS_IN_FLIGHT = 12
ACKNOWLEDGEMENT_PIPELINES = 2


class MesosCallError(RuntimeError):
    """A call to the master was not accepted (not subscribed, or an HTTP error)."""


class NotLeading(MesosCallError):
    """Not sent: this process no longer leads. Its term is ending, and the next leader
    redoes whatever the call was for (acknowledgements are resent, reconciliation and
    offers start afresh), so this is expected while stepping down, not a failure."""


def refusal_level(error: Exception) -> int:
    """The level to log a refused Mesos call or state write at: DEBUG when refused
    because this process no longer leads (it is stepping down), else WARNING."""
    return logging.DEBUG if isinstance(error, NotLeading | NotLeader) else logging.WARNING


AgentAccept = tuple[Sequence[str], Sequence[JsonObject]]
"""One agent's ACCEPT: its offer ids and the TaskInfos to launch on them."""


class MesosCalls(Protocol):
    """Calls to the master; each raises MesosCallError when it was not accepted."""

    async def accept(
        self, offer_ids: Sequence[str], tasks: Sequence[JsonObject], refuse_seconds: float
    ) -> None:
        """LAUNCH `tasks` (TaskInfos) on the offers of one agent."""

    def accept_now(
        self, launches: Sequence[AgentAccept], refuse_seconds: float
    ) -> list[Future[None]]:
        """The ACCEPTs of several agents, sent side by side from any thread without the
        event loop; each future is done when the master answered, raising
        MesosCallError when the call was not accepted."""

    async def decline(self, offer_ids: Sequence[str], refuse_seconds: float) -> None: ...

    async def revive(self) -> None: ...

    async def suppress(self) -> None: ...

    async def kill(self, task_id: str, agent_id: str | None) -> None: ...

    async def acknowledge(self, acks: Sequence[Acknowledgement]) -> None:
        """ACKNOWLEDGE each of `acks` (raises when any was not accepted)."""

    async def reconcile(self, tasks: Sequence[tuple[str, str | None]]) -> None:
        """Explicit reconciliation of (task id, agent id) pairs; implicit when empty."""

    async def message(self, agent_id: str, executor_id: str, data_base64: str) -> None: ...

    async def shutdown(self, agent_id: str, executor_id: str) -> None:
        """SHUTDOWN of one executor: the agent asks it to end, then destroys it."""

    async def executors(self, master: str, framework_id: str) -> list[tuple[str, str]]:
        """(executor id, agent id) of the framework's executors that `master`
        ("host:port", the one subscribed to) runs."""


class MesosConnection(MesosCalls, Protocol):
    """The subscription of one leadership term."""

    async def start(self, framework_id: str | None) -> None:
        """Subscribe (with `framework_id`, or as a new framework)."""

    async def restart(self, framework_id: str | None) -> None:
        """Drop the connection and subscribe again."""

    async def close(self) -> None:
        """Disconnect for good, failing over (the tasks keep running)."""

    @property
    def connected(self) -> bool: ...


MesosFactory = Callable[[EventSink, Callable[[], bool], Callable[[], bool]], MesosConnection]
"""Builds a term's connection from its event sink, `may_call` (still leading, from the
election's flag: cheap, checked before every call) and `may_subscribe` (leadership
confirmed by a ZooKeeper round trip, asked before every SUBSCRIBE)."""
