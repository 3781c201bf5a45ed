"""Local Mesos: an emulated Mesos master and agents for development and tests.

Not a production Mesos. It speaks the Mesos v1 scheduler HTTP API (master) and
executor HTTP API (agents) in JSON closely enough for the unmodified pymesos
drivers, runs real processes for tasks and executors, and injects faults.
See docs/mesos-emulator.md.

    from devcluster.mesos import LocalMesos, AgentSpec
    with LocalMesos(agents=[AgentSpec(cpus=2)]) as cluster:
        driver = MesosSchedulerDriver(sched, framework, cluster.master_address, ...)
"""

from devcluster.mesos.cluster import BANNER, AgentHandle, LocalMesos
from devcluster.mesos.config import AgentSpec

__all__ = ["BANNER", "AgentHandle", "AgentSpec", "LocalMesos"]
