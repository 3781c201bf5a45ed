"""Sample Python job (`demo_jobs.simple:run`): prints which shard ran and when."""

from __future__ import annotations

from typing import TYPE_CHECKING

from demo_format import describe

if TYPE_CHECKING:
    from controller.executor.context import JobContext


def run(ctx: JobContext) -> None:
    when = ctx.fire_time.isoformat() if ctx.fire_time else "now"
    print(f"simple job ran: {describe(ctx)} fire {when} triggered {ctx.triggered}")
