"""`FrameworkSettings`: every knob of the Mesos framework, validated in one place.

The controller's entry point builds it (from flags or environment, prefix
`CLOUDJOB_MESOS_`) and hands it to `SchedulingService`; tests build it directly
with short intervals. Defaults follow the original (failover timeout one week,
checkpointing on, PARTITION_AWARE) where it had them.
"""

from __future__ import annotations

import getpass
import socket

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from controller.mesos.tasks import DEFAULT_EXECUTOR_IDLE_SECONDS, ExecutorOptions

ONE_WEEK = 7 * 24 * 3600.0


class FrameworkSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLOUDJOB_MESOS_", frozen=True, extra="forbid")

    master: str = Field(
        description="the Mesos master: 'zk://host:port[,host:port]/path' or 'host:port'"
    )
    framework_name: str = Field(default="cloudjob-controller", min_length=1)
    user: str = Field(default_factory=getpass.getuser, min_length=1)
    role: str = Field(default="*", min_length=1)
    principal: str | None = None
    secret: SecretStr | None = None
    hostname: str = Field(default_factory=socket.gethostname, min_length=1)
    webui_url: str | None = None
    failover_timeout_seconds: float = Field(default=ONE_WEEK, gt=0)
    checkpoint: bool = True

    launch_batch_seconds: float = Field(
        default=0.2, ge=0, description="how long a launch cycle waits to batch more changes"
    )
    status_batch_seconds: float = Field(
        default=0.0,
        ge=0,
        le=5,
        description="how long status updates are collected to be persisted together "
        "(0: only those already waiting)",
    )
    offer_hold_seconds: float = Field(
        default=10.0, gt=0, description="the longest an unused offer is held before declining"
    )
    fire_lead_seconds: float = Field(
        default=3.0,
        ge=0,
        description="how long before a cron fire offers are asked for and held, so that "
        "the fire's tasks launch with offers in hand (0: only once the fire has come)",
    )
    fire_plan_ahead_seconds: float = Field(
        default=0.5,
        ge=0,
        description="how long before a cron fire its launch is planned on held offers, "
        "so that it is recorded and accepted the moment it comes (0: planned at the fire)",
    )
    decline_refuse_seconds: float = Field(
        default=5.0, ge=0, description="refuse filter on offers declined while work is pending"
    )
    idle_refuse_seconds: float = Field(
        default=120.0, ge=0, description="refuse filter on offers declined when no work is pending"
    )
    unplaceable_report_seconds: float = Field(
        default=5.0,
        ge=0,
        description="work unplaceable this long is reported (status reason, event, metric)",
    )
    reconcile_interval_seconds: float = Field(
        default=600.0, ge=0, description="periodic reconciliation (0: only after registration)"
    )
    reconcile_backoff_seconds: float = Field(default=1.0, gt=0)
    reconcile_backoff_max_seconds: float = Field(default=30.0, gt=0)
    heartbeat_missed_limit: int = Field(
        default=5, ge=1, description="missed master heartbeats before resubscribing"
    )
    unreachable_grace_seconds: float = Field(
        default=600.0,
        ge=0,
        description="a task unreachable this long is treated as lost (0: keep it forever)",
    )
    launch_timeout_seconds: float = Field(
        default=300.0,
        ge=0,
        description="a task staging or starting this long is killed and its shard "
        "launched again (0: wait forever)",
    )
    misfire_threshold_seconds: float = Field(
        default=5.0, ge=0, description="a cron fire noticed later than this is skipped"
    )
    executor_idle_seconds: float = Field(
        default=DEFAULT_EXECUTOR_IDLE_SECONDS,
        ge=0,
        description="an app executor with no task for this long exits (0: never); "
        "part of every ExecutorInfo, so changing it rolls every app's executors over",
    )
    daemon_rollout_batch: int = Field(
        default=1,
        ge=1,
        description="how many shards of a daemon job may be down at once while its "
        "tasks move to executors of a new app version",
    )
    event_queue_size: int = Field(default=10_000, ge=1)
    mesos_call_timeout_seconds: float = Field(default=10.0, gt=0)

    @field_validator("master")
    @classmethod
    def _master_form(cls, value: str) -> str:
        if value.startswith(("zk://", "zoo://")):
            rest = value.split("://", 1)[1]
            hosts, slash, path = rest.partition("/")
            if not hosts or not slash or not path:
                raise ValueError(
                    f"master '{value}' must look like 'zk://host:port[,host:port]/mesos' "
                    "(ZooKeeper hosts, then the path the masters register under)"
                )
            return value
        host, colon, port = value.rpartition(":")
        if not colon or not host or not port.isdigit():
            raise ValueError(
                f"master '{value}' must be 'host:port' (e.g. '127.0.0.1:5050') or a "
                "'zk://host:port/mesos' URL"
            )
        return value

    @property
    def executor_options(self) -> ExecutorOptions:
        return ExecutorOptions(idle_seconds=self.executor_idle_seconds)

    def framework_info(self, framework_id: str | None) -> dict[str, object]:
        """FrameworkInfo (Mesos v1 JSON) for SUBSCRIBE; with the stored id once known."""
        info: dict[str, object] = {
            "user": self.user,
            "name": self.framework_name,
            "role": self.role,
            "hostname": self.hostname,
            "failover_timeout": self.failover_timeout_seconds,
            "checkpoint": self.checkpoint,
            "capabilities": [{"type": "PARTITION_AWARE"}],
        }
        if self.principal:
            info["principal"] = self.principal
        if self.webui_url:
            info["webui_url"] = self.webui_url
        if framework_id:
            info["id"] = {"value": framework_id}
        return info
