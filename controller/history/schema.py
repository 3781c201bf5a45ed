"""The history tables, as SQLAlchemy Core metadata.

`runs` and `transitions` are pruned by the retention; `job_totals` holds each job's
counters, kept in the same transaction as the run ends they count, so they survive the
pruning; `run_counts` the runs that ended per hour and per day, by namespace and
outcome, kept the same way (what the statistics' hourly and daily series read instead
of a million runs); `job_removals` the removals applied (a removal ends a job's
counters). The
migrations (`controller/history/migrations/versions`) create exactly these; a test
compares the migrated database with this metadata. Used by the writer, the retention,
the summaries and the queries. Times are stored timezone-aware (UTC).
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

KEY = 300
ID = 600

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_key", String(ID + 80), nullable=False, unique=True),
    Column("job_key", String(KEY), nullable=False),
    Column("namespace", String(63), nullable=False),
    Column("job_name", String(253), nullable=False),
    Column("shard", Integer, nullable=False),
    Column("task_id", String(ID), nullable=False),
    Column("source", String(16), nullable=False),
    Column("agent_id", String(255), nullable=False),
    Column("hostname", String(255), nullable=False),
    Column("executor_id", String(ID)),
    Column("fire_time", DateTime(timezone=True)),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Column("outcome", String(16)),
    Column("state", String(32)),
    Column("message", Text),
    Column("exit_status", Integer),
    Column("stderr_tail", Text),
    Column("sandbox", String(1024)),
    # Set when the job was removed: the run no longer counts as one of a live job's.
    Column("removal_id", String(64)),
    Index("ix_runs_job_started", "job_key", "started_at"),
    Index("ix_runs_namespace_started", "namespace", "started_at"),
    # the statistics' counts read only these columns: the index answers them alone
    Index("ix_runs_ended_outcome", "ended_at", "outcome"),
    Index("ix_runs_namespace_ended", "namespace", "ended_at", "outcome"),
    Index("ix_runs_task", "task_id"),
)

job_totals = Table(
    "job_totals",
    metadata,
    Column("job_key", String(KEY), primary_key=True),
    Column("succeeded", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("killed", Integer, nullable=False),
    Column("last_success_time", DateTime(timezone=True)),
    Column("last_run_seconds", Float),
)

run_counts = Table(
    "run_counts",
    metadata,
    Column("span", String(8), primary_key=True),  # 'hour' or 'day'
    Column("start", DateTime(timezone=True), primary_key=True),
    Column("namespace", String(63), primary_key=True),
    Column("outcome", String(16), primary_key=True),
    Column("runs", Integer, nullable=False),
)

transitions = Table(
    "transitions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", String(ID), nullable=False),
    Column("job_key", String(KEY), nullable=False),
    Column("namespace", String(63), nullable=False),
    Column("shard", Integer, nullable=False),
    Column("state", String(32), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("source", String(32)),
    Column("reason", String(128)),
    Column("message", Text),
    Column("agent_id", String(255)),
    Column("hostname", String(255)),
    # `records.transition_key`; NULL on rows written before revision 0002.
    Column("record_key", String(64)),
    Index("ix_transitions_job_at", "job_key", "at"),
    Index("ix_transitions_namespace_at", "namespace", "at"),
    Index("ix_transitions_task", "task_id"),
    Index("ix_transitions_at", "at"),
    Index("ux_transitions_record_key", "record_key", unique=True),
)

job_removals = Table(
    "job_removals",
    metadata,
    Column("removal_id", String(64), primary_key=True),
    Column("job_key", String(KEY), nullable=False),
    Column("removed_at", DateTime(timezone=True), nullable=False),
)
