"""The controller's one settings object, read from `CLOUDJOB_*` environment variables and
`run` command-line flags (flags win).

Nested groups use `__` in variable names and `.` in flags:
`CLOUDJOB_ZOOKEEPER__HOSTS=zk-0:2181` is `--zookeeper.hosts zk-0:2181`. The Mesos
framework's group is `controller.mesos.settings.FrameworkSettings` (`--mesos.master`,
`CLOUDJOB_MESOS__MASTER`), the run history's is
`controller.history.settings.HistorySettings` (`--history.database-url`). docs/operations.md
lists every setting. Built by `controller.__main__` (from flags and the environment)
or directly by whoever embeds the controller (the `dev` stack, tests); used by
`controller.app`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from controller import naming
from controller.history.settings import HistorySettings
from controller.mesos.settings import FrameworkSettings
from controller.state.connection import parse_auth
from controller.state.layout import DEFAULT_NAMESPACE, Layout


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ZooKeeperSettings(_Group):
    hosts: str = Field(
        default="127.0.0.1:2181",
        min_length=1,
        description="ZooKeeper connect string (host:port[,host:port...][/chroot])",
    )
    namespace: str = Field(
        default=DEFAULT_NAMESPACE,
        description="the node (path without leading '/') all the controller's state is under",
    )
    digest: SecretStr | None = Field(
        default=None,
        description="'user:password' for ZooKeeper digest auth; every node gets its ACL",
    )
    session_timeout: float = Field(default=10.0, gt=0, description="seconds")

    @field_validator("namespace")
    @classmethod
    def _namespace_form(cls, value: str) -> str:
        Layout(value)
        return value

    @field_validator("digest")
    @classmethod
    def _digest_form(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_auth(value.get_secret_value())
        return value


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _namespace_list(value: list[str]) -> list[str]:
    for namespace in value:
        if problem := naming.name_error("Namespace", namespace):
            raise ValueError(problem)
    return value


class KubernetesSettings(_Group):
    kubeconfig: Path | None = Field(
        default=None,
        description="kubeconfig file to use; unset: in-cluster service account, else "
        "$KUBECONFIG or ~/.kube/config",
    )
    context: str | None = Field(default=None, description="kubeconfig context to use")
    namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="namespaces to watch (comma-separated); empty: all (cluster-wide)",
    )

    orphan_sweep_interval: float = Field(
        default=60.0,
        gt=0,
        description="seconds between two sweeps for jobs and apps the scheduler holds whose "
        "object no longer exists (they are removed after two sweeps in a row find them)",
    )

    _comma_separated = field_validator("namespaces", mode="before")(_comma_list)
    _dns_labels = field_validator("namespaces")(_namespace_list)


class HttpSettings(_Group):
    host: str = Field(default="0.0.0.0", description="address the endpoints listen on")
    health_port: int = Field(
        default=8080, ge=0, le=65535, description="/healthz and /readyz (0: any free port)"
    )
    metrics_port: int = Field(
        default=9090, ge=0, le=65535, description="Prometheus /metrics (0: any free port)"
    )


class ConsoleSettings(_Group):
    enabled: bool = Field(
        default=True,
        description="serve the web console at /console/ on the health port",
    )
    namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="namespaces the console and the /api/v1 answers show (comma-separated); "
        "empty: those of kubernetes.namespaces (empty too: all)",
    )

    _comma_separated = field_validator("namespaces", mode="before")(_comma_list)
    _dns_labels = field_validator("namespaces")(_namespace_list)


class StatusSettings(_Group):
    refresh_interval: float = Field(
        default=300.0,
        gt=0,
        description="seconds: the drift sweep's period — every object's status is refreshed "
        "and its desired state re-applied at least once per period, spread evenly over it",
    )
    min_interval: float = Field(
        default=1.0,
        gt=0,
        description="seconds: the shortest gap between two status refreshes of one object",
    )
    writes_per_second: float = Field(
        default=50.0,
        gt=0,
        description="status writes per second, across all objects (on average)",
    )
    write_burst: int = Field(
        default=100, ge=1, description="status writes allowed at once above that rate"
    )
    events_per_second: float = Field(
        default=20.0,
        gt=0,
        description="Kubernetes Event writes per second, across all objects (on average)",
    )
    event_burst: int = Field(
        default=50, ge=1, description="Event writes allowed at once above that rate"
    )
    event_pace: float = Field(
        default=10.0,
        gt=0,
        description="seconds: the shortest gap between two writes of one (aggregated) Event",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min_interval > self.refresh_interval:
            raise ValueError(
                f"status.min_interval ({self.min_interval}) must not exceed "
                f"status.refresh_interval ({self.refresh_interval})"
            )
        return self


def _default_identity() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Settings(BaseSettings):
    """Everything `python -m controller run` can be told."""

    model_config = SettingsConfigDict(
        env_prefix="CLOUDJOB_",
        env_nested_delimiter="__",
        nested_model_default_partial_update=True,
        cli_kebab_case=True,
        cli_implicit_flags=True,
        extra="forbid",
        frozen=True,
    )

    identity: str = Field(
        default_factory=_default_identity,
        min_length=1,
        description="this replica's name in the leader election (default: host-pid)",
    )
    mesos: FrameworkSettings = Field(
        description="the Mesos framework (master is required: --mesos.master or "
        "CLOUDJOB_MESOS__MASTER)"
    )
    log_level: str = Field(
        default="INFO",
        pattern=r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$",
        description="DEBUG, INFO, WARNING, ERROR or CRITICAL",
    )
    zookeeper: ZooKeeperSettings = ZooKeeperSettings()
    kubernetes: KubernetesSettings = KubernetesSettings()
    http: HttpSettings = HttpSettings()
    status: StatusSettings = StatusSettings()
    history: HistorySettings = HistorySettings()
    console: ConsoleSettings = ConsoleSettings()

    def shown_namespaces(self) -> list[str]:
        """The namespaces the console and the API show: none listed means all."""
        return self.console.namespaces or self.kubernetes.namespaces

    @classmethod
    def from_cli(cls, args: Sequence[str], prog: str = "cloudjob-controller run") -> Settings:
        """Flags over environment over defaults; `--help` prints every setting and exits."""
        return cls(_cli_parse_args=list(args), _cli_prog_name=prog)
