"""Fixtures of the deployment tests: the loaded Helm chart, and the whole-system stack
(real ZooKeeper, local Mesos, the real Kubernetes API server) for running what the chart
renders."""

from __future__ import annotations

from collections.abc import Iterator

import helm_python
import pytest

from tests.deploy.chart import CHART
from tests.stack import stack

__all__ = ["chart", "stack"]


@pytest.fixture(scope="session")
def chart() -> Iterator[helm_python.Chart]:
    # Helm logs each symlink it follows (crds/, files/); the tests check those files.
    helm_python.disable_logging()
    with helm_python.Chart.load(CHART) as loaded:
        yield loaded
