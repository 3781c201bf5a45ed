"""The read-only history API (`/api/v1/...` on the health port): runs, transitions,
statistics and the queues, described by an OpenAPI document (`openapi`). Served by
every replica: it reads the history database and ZooKeeper, never the leader's memory.
"""
