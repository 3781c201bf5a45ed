"""The history database: the async engine for a URL, and migrating it to the newest schema.

`open_engine` makes an SQLAlchemy async engine (aiosqlite or asyncpg, chosen by the
URL) and, for SQLite, creates the directory and turns on WAL so that readers (the HTTP
API, a standby on the same file) never block the writer. `migrate` runs the Alembic
migrations to head on one connection; at head it changes nothing, so every new leader
calls it. Called by the writer (leader) and by the API's reader (any replica).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import URL, Connection, event, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).parent / "migrations"


_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}


def async_url(url: str) -> URL:
    """`url` with the async driver this project ships when it names none
    (`postgresql://...` → asyncpg, `sqlite:///...` → aiosqlite)."""
    parsed = make_url(url)
    driver = _ASYNC_DRIVERS.get(parsed.drivername)
    return parsed.set(drivername=driver) if driver else parsed


def open_engine(url: str, timeout: float = 10.0) -> AsyncEngine:
    """An engine for `url`; `timeout` bounds connecting and waiting for SQLite's lock."""
    parsed = async_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(parsed, connect_args={"timeout": timeout})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_async_engine(
        parsed,
        pool_pre_ping=True,
        pool_size=4,
        max_overflow=2,
        connect_args={"timeout": timeout, "command_timeout": 3 * timeout},
    )


def _upgrade(connection: Connection, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to `revision`, by default the newest (a no-op when it is there)."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade, revision)


def utc(moment: datetime) -> datetime:
    """In UTC, tz-aware (naive times are taken as UTC): how every time is stored."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def stored(moment: datetime | None) -> datetime | None:
    """A time for a column, in UTC (SQLite keeps no offset, so every time is UTC)."""
    return None if moment is None else utc(moment)


def loaded(moment: datetime | None) -> datetime | None:
    """A time read from a column, tz-aware UTC whatever the backend returned."""
    return None if moment is None else utc(moment)
