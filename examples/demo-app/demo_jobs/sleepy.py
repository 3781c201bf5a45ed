"""Test job (`demo_jobs.sleepy:run`): runs until killed, or for the seconds given
as the job parameter."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from controller.executor.context import JobContext


def run(ctx: JobContext) -> None:
    print(f"sleeping in shard {ctx.sharding_item} (pid {os.getpid()})", flush=True)
    time.sleep(float(ctx.job_parameter or 300))
    print("woke up")
