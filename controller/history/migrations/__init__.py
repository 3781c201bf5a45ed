"""Alembic migrations of the history database; `controller.history.database.migrate`
runs them (to head, idempotently) when a replica becomes leader."""
