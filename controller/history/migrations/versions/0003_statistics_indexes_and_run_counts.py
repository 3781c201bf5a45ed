"""Indexes the statistics read alone, and the runs that ended per hour and per day.

The counts of the last minute, hour and day read only `ended_at` and `outcome` (and
`namespace`): `ix_runs_ended_outcome` and `ix_runs_namespace_ended` hold those, so the
table itself is not read (the first replaces `ix_runs_ended`). `run_counts` holds the
runs that ended per hour and per day, by namespace and outcome, which the writer keeps
from now on; it is filled here from the runs already stored.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The start of the hour or day a run ended in, as each database stores a time: SQLite
# as SQLAlchemy writes it (UTC text with microseconds), PostgreSQL as a UTC timestamptz.
_STARTS = {
    "sqlite": {
        "hour": "strftime('%Y-%m-%d %H:00:00.000000', ended_at)",
        "day": "strftime('%Y-%m-%d 00:00:00.000000', ended_at)",
    },
    "postgresql": {
        "hour": "timezone('UTC', date_trunc('hour', timezone('UTC', ended_at)))",
        "day": "timezone('UTC', date_trunc('day', timezone('UTC', ended_at)))",
    },
}


def upgrade() -> None:
    op.drop_index("ix_runs_ended", "runs")
    op.create_index("ix_runs_ended_outcome", "runs", ["ended_at", "outcome"])
    op.create_index("ix_runs_namespace_ended", "runs", ["namespace", "ended_at", "outcome"])
    op.create_table(
        "run_counts",
        sa.Column("span", sa.String(8), primary_key=True),
        sa.Column("start", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("namespace", sa.String(63), primary_key=True),
        sa.Column("outcome", sa.String(16), primary_key=True),
        sa.Column("runs", sa.Integer, nullable=False),
    )
    starts = _STARTS[op.get_bind().dialect.name]
    for span, start in starts.items():
        op.execute(
            "INSERT INTO run_counts (span, start, namespace, outcome, runs) "
            f"SELECT '{span}', {start}, namespace, outcome, count(*) FROM runs "
            "WHERE ended_at IS NOT NULL AND outcome IS NOT NULL "
            f"GROUP BY {start}, namespace, outcome"
        )


def downgrade() -> None:
    op.drop_table("run_counts")
    op.drop_index("ix_runs_namespace_ended", "runs")
    op.drop_index("ix_runs_ended_outcome", "runs")
    op.create_index("ix_runs_ended", "runs", ["ended_at"])
