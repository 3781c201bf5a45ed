"""Fixtures of the framework's integration tests: `start_cluster` starts a local Mesos
with the timings of `tests.framework.harness` (options given win); every cluster is
stopped after the test, once the framework running on it has stopped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from devcluster.mesos import AgentSpec, LocalMesos
from tests.framework.harness import CLUSTER_OPTIONS, StartCluster


@pytest.fixture
def start_cluster(start_mesos: Callable[..., LocalMesos]) -> StartCluster:
    def start(agents: list[AgentSpec], **options: Any) -> LocalMesos:
        return start_mesos(agents, **{**CLUSTER_OPTIONS, **options})

    return start
