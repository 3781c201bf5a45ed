"""Settings of the emulated Mesos cluster: agent specs and timing knobs.

`AgentSpec` describes one agent's resources and attributes; `EmulatorConfig`
holds the timeouts and intervals that real Mesos takes from master and agent
flags (defaults are Mesos's defaults; tests shrink them). Used by LocalMesos,
the master and the agents.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from devcluster.mesos.protocol import JSON
from devcluster.mesos.resources import Resources


@dataclass(frozen=True)
class AgentSpec:
    cpus: float = 4.0
    mem: float = 4096.0
    disk: float = 10240.0
    ports: list[tuple[int, int]] = field(default_factory=lambda: [(31000, 32000)])
    attributes: dict[str, str | float] = field(default_factory=dict)
    hostname: str | None = None

    def __post_init__(self) -> None:
        for name in ("cpus", "mem", "disk"):
            if getattr(self, name) < 0:
                raise ValueError(f"AgentSpec.{name} must be >= 0, got {getattr(self, name)}")
        for begin, end in self.ports:
            if not 0 < begin <= end < 65536:
                raise ValueError(
                    f"AgentSpec.ports: range ({begin}, {end}) must satisfy 0 < begin <= end < 65536"
                )

    def resources(self) -> Resources:
        return Resources(
            {"cpus": self.cpus, "mem": self.mem, "disk": self.disk},
            tuple(sorted(self.ports)),
        )

    def attributes_json(self) -> list[JSON]:
        result: list[JSON] = []
        for name, raw in sorted(self.attributes.items()):
            if isinstance(raw, int | float) and not isinstance(raw, bool):
                result.append({"name": name, "type": "SCALAR", "scalar": {"value": float(raw)}})
            else:
                result.append({"name": name, "type": "TEXT", "text": {"value": str(raw)}})
        return result


@dataclass(frozen=True)
class EmulatorConfig:
    heartbeat_interval: float = 15.0
    offer_refresh: float = 1.0
    default_refuse_seconds: float = 5.0
    executor_registration_timeout: float = 60.0
    executor_reregistration_timeout: float = 2.0
    executor_shutdown_grace_period: float = 5.0
    agent_ping_timeout: float = 15.0
    max_agent_ping_timeouts: int = 5
    agent_reregister_timeout: float = 600.0
    status_update_retry: float = 10.0
    status_update_retry_max: float = 600.0
    recovery_timeout: float = 900.0
    subscription_backoff_max: float = 2.0
    command_kill_grace_period: float = 3.0

    def __post_init__(self) -> None:
        for name, amount in vars(self).items():
            if amount <= 0:
                raise ValueError(f"{name} must be > 0, got {amount}")


def format_duration(seconds: float) -> str:
    """A duration the way stout prints it (and pymesos parses it): 5secs, 1mins, 500ms."""
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}mins"
    if seconds >= 1:
        return f"{seconds:g}secs"
    return f"{seconds * 1000:g}ms"
