"""Run history: every run of every shard and every task state change, in a relational
database (SQLite by default, PostgreSQL in production), written off the launch path.

- `records`: the pure record types the scheduling core hands over;
- `schema`, `database`, `migrations/`: the tables (SQLAlchemy Core), the async engine
  and the Alembic migrations the leader runs at start;
- `writer`: the bounded buffer and the task that writes it, counting what it drops;
- `summaries`: per-job counters and recent runs, exactly as the database holds them;
- `retention`: deletion by age and by count per job;
- `queries`: the reads behind the HTTP API (runs, transitions, statistics).

docs/history.md describes the whole.
"""
