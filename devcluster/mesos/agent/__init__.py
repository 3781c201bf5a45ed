"""One emulated Mesos agent, one module per part of its job (see `agent.py`).

LocalMesos builds an `Agent` per `AgentSpec`; the `Network` delivers the
master's messages to it.
"""

from devcluster.mesos.agent.agent import Agent

__all__ = ["Agent"]
