"""`HistorySettings`: where the run history lives, how long it is kept, how much waits.

A group of the controller's settings (`--history.*`, `CLOUDJOB_HISTORY__*`);
docs/history.md describes each. Read by `controller.app`, which builds the history from it.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

DEFAULT_DATA_DIR = Path("/var/lib/cloudjob-controller")


class HistorySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    database_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL of the history database, e.g. "
        "postgresql+asyncpg://user:password@db:5432/cloudjob; unset: SQLite in data_dir",
    )
    data_dir: Path = Field(
        default=DEFAULT_DATA_DIR,
        description="directory of the default SQLite database (history.db), created if missing",
    )
    buffer_size: int = Field(
        default=50_000,
        ge=1,
        description="records waiting to be written at most; beyond it the oldest are dropped "
        "(counted in cloudjob_history_records_dropped_total)",
    )
    batch_size: int = Field(default=500, ge=1, description="records written per transaction")
    retention_days: float = Field(
        default=30.0, gt=0, description="runs and transitions older than this are deleted"
    )
    retention_runs_per_job: int = Field(
        default=1000, ge=1, description="runs kept per job at most (the newest)"
    )
    retention_interval: float = Field(
        default=3600.0, gt=0, description="seconds between two retention sweeps"
    )
    recent_runs: int = Field(
        default=10,
        ge=0,
        le=100,
        description="runs listed in a CloudJob's status.recentRuns (newest first)",
    )
    timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="seconds a connection attempt, or a write waiting for SQLite's lock, "
        "may take before the database counts as unavailable",
    )
    retry_seconds: float = Field(
        default=5.0, gt=0, description="seconds between two tries while the database is down"
    )

    def url(self) -> str:
        """The database URL (the SQLite default resolved)."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite+aiosqlite:///{self.data_dir / 'history.db'}"
