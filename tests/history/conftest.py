"""The history tests run against both databases: SQLite (a file per test) and a real
PostgreSQL (one server per session, from the Debian package; a database per test)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from devcluster.postgres import PostgresServer


@dataclass(frozen=True)
class Database:
    kind: str
    url: str


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if request.param == "sqlite":
        return Database("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'history.db'}")
    server: PostgresServer = request.getfixturevalue("postgres")
    return Database("postgresql", server.create_database(f"h{uuid.uuid4().hex[:12]}"))
