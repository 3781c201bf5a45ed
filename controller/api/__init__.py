"""The read-only history API (`/api/v1/...` on the health port): runs, transitions,
statistics and the queues, described by an OpenAPI document (`openapi`). Served by
every replica: it reads the history database, and the scheduler's state from memory —
the leader's store, or on a standby a follower of ZooKeeper (`following`).
"""
