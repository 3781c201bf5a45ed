"""The runs, job_totals and transitions tables.

Revision ID: 0001
Revises: none
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_key", sa.String(680), nullable=False, unique=True),
        sa.Column("job_key", sa.String(300), nullable=False),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("job_name", sa.String(253), nullable=False),
        sa.Column("shard", sa.Integer, nullable=False),
        sa.Column("task_id", sa.String(600), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("agent_id", sa.String(255), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("executor_id", sa.String(600)),
        sa.Column("fire_time", sa.DateTime(timezone=True)),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("outcome", sa.String(16)),
        sa.Column("state", sa.String(32)),
        sa.Column("message", sa.Text),
        sa.Column("exit_status", sa.Integer),
        sa.Column("stderr_tail", sa.Text),
        sa.Column("sandbox", sa.String(1024)),
    )
    op.create_index("ix_runs_job_started", "runs", ["job_key", "started_at"])
    op.create_index("ix_runs_namespace_started", "runs", ["namespace", "started_at"])
    op.create_index("ix_runs_ended", "runs", ["ended_at"])
    op.create_index("ix_runs_task", "runs", ["task_id"])
    op.create_table(
        "job_totals",
        sa.Column("job_key", sa.String(300), primary_key=True),
        sa.Column("succeeded", sa.Integer, nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("killed", sa.Integer, nullable=False),
        sa.Column("last_success_time", sa.DateTime(timezone=True)),
        sa.Column("last_run_seconds", sa.Float),
    )
    op.create_table(
        "transitions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.String(600), nullable=False),
        sa.Column("job_key", sa.String(300), nullable=False),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("shard", sa.Integer, nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(32)),
        sa.Column("reason", sa.String(128)),
        sa.Column("message", sa.Text),
        sa.Column("agent_id", sa.String(255)),
        sa.Column("hostname", sa.String(255)),
    )
    op.create_index("ix_transitions_job_at", "transitions", ["job_key", "at"])
    op.create_index("ix_transitions_namespace_at", "transitions", ["namespace", "at"])
    op.create_index("ix_transitions_task", "transitions", ["task_id"])
    op.create_index("ix_transitions_at", "transitions", ["at"])


def downgrade() -> None:
    op.drop_table("transitions")
    op.drop_table("job_totals")
    op.drop_table("runs")
