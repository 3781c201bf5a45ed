"""Test jobs that fail: `demo_jobs.failing:run` raises, `demo_jobs.failing:exit_non_zero`
exits with status 4."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from controller.executor.context import JobContext


def run(ctx: JobContext) -> None:
    raise RuntimeError(f"failing on purpose in shard {ctx.sharding_item}")


def exit_non_zero(ctx: JobContext) -> None:
    print("exiting with status 4", file=sys.stderr)
    sys.exit(4)
