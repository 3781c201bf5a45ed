"""A helper library of the demo app; the executor puts the app's lib/ on sys.path."""

from __future__ import annotations

from typing import Any


def describe(ctx: Any) -> str:
    """One line naming the job, the shard and its parameters."""
    return (
        f"{ctx.job_name} shard {ctx.sharding_item}/{ctx.sharding_total_count} "
        f"parameter {ctx.sharding_parameter!r} job parameter {ctx.job_parameter!r}"
    )
