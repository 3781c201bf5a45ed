"""Alembic's environment: migrate over the connection `database.migrate` passes in.

Never run from the `alembic` command line: the controller migrates its own database
at start, on a connection of its async engine (`Config.attributes["connection"]`).
"""

from __future__ import annotations

from alembic import context

from controller.history.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
