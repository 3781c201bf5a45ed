"""Transitions keyed by their identity; job removals, which end a job's counters.

A transition's `record_key` makes writing it twice (a spooled unit written again by a
new leader) a no-op; rows from before this revision keep a NULL key. `job_removals`
remembers each removal applied, so a removal written twice resets nothing the second
time; `runs.removal_id` marks the runs of the job that removal ended.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("transitions", sa.Column("record_key", sa.String(64)))
    op.create_index("ux_transitions_record_key", "transitions", ["record_key"], unique=True)
    op.add_column("runs", sa.Column("removal_id", sa.String(64)))
    op.create_table(
        "job_removals",
        sa.Column("removal_id", sa.String(64), primary_key=True),
        sa.Column("job_key", sa.String(300), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("job_removals")
    with op.batch_alter_table("runs") as runs:
        runs.drop_column("removal_id")
    op.drop_index("ux_transitions_record_key", "transitions")
    with op.batch_alter_table("transitions") as transitions:
        transitions.drop_column("record_key")
