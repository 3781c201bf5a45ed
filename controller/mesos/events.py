"""What the Mesos master tells the framework, as typed events.

The pymesos edge (`driver.MesosDriver`) turns each scheduler callback into one of these
and hands it to the engine's inbox on the asyncio loop; a fake Mesos in the unit tests
hands the same events over directly. A status update arrives parsed (`StatusUpdate`);
offers stay Mesos v1 JSON until the launch cycle reads them (`offers.HeldOffer`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controller.mesos.states import StatusUpdate

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class Subscribed:
    framework_id: str
    master: str
    heartbeat_interval: float | None
    resubscribed: bool


@dataclass(frozen=True)
class SubscriptionWithheld:
    """The driver did not subscribe: leadership could not be confirmed first."""


@dataclass(frozen=True)
class Disconnected:
    pass


@dataclass(frozen=True)
class OffersReceived:
    offers: tuple[JsonObject, ...]


@dataclass(frozen=True)
class OfferRescinded:
    offer_id: str


@dataclass(frozen=True)
class StatusReceived:
    update: StatusUpdate


@dataclass(frozen=True)
class MessageReceived:
    agent_id: str
    executor_id: str
    data: str


@dataclass(frozen=True)
class AgentLost:
    agent_id: str


@dataclass(frozen=True)
class ExecutorLost:
    agent_id: str
    executor_id: str
    status: int | None


@dataclass(frozen=True)
class MasterError:
    message: str


@dataclass(frozen=True)
class Heartbeat:
    pass


DriverEvent = (
    Subscribed
    | Disconnected
    | SubscriptionWithheld
    | OffersReceived
    | OfferRescinded
    | StatusReceived
    | MessageReceived
    | AgentLost
    | ExecutorLost
    | MasterError
    | Heartbeat
)
EventSink = Callable[[DriverEvent], None]
