"""The emulated Mesos master, one module per part of its job (see `master.py`).

LocalMesos builds a `Master` with the agent `Registry` that outlives master
restarts; the standby masters, the `Network` and `GET /state` refer to it.
"""

from devcluster.mesos.master.master import Master
from devcluster.mesos.master.records import Registry

__all__ = ["Master", "Registry"]
