"""The project's tests, one package per subsystem (README.md#tests).

pytest rewrites the assertions of test modules and conftest files to report the values
compared; the shared helper modules below get the same, so a failed check in one (a
fixture's teardown, a harness step) says what it saw.
"""

import pytest

pytest.register_assert_rewrite(
    "tests.stack",
    "tests.kubeworld",
    "tests.waiting",
    "tests.framework.harness",
    "tests.framework.fakes",
    "tests.framework.world",
    "tests.kubernetes.core",
    "tests.deploy.chart",
    "tests.deploy.rbac",
)
