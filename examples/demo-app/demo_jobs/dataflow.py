"""Sample dataflow job (`demo_jobs.dataflow:Numbers`).

`fetch` hands out batches of three numbers, three batches per run and then an
empty one, so a streaming run processes three batches and a one-shot run one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from controller.executor.context import JobContext

BATCHES = 3
BATCH_SIZE = 3


class Numbers:
    def __init__(self) -> None:
        self.fetched = 0

    def fetch(self, ctx: JobContext) -> list[int]:
        if self.fetched >= BATCHES:
            return []
        start = (ctx.sharding_item * BATCHES + self.fetched) * BATCH_SIZE
        self.fetched += 1
        return list(range(start, start + BATCH_SIZE))

    def process(self, ctx: JobContext, items: list[int]) -> None:
        print(f"batch {self.fetched} of shard {ctx.sharding_item}: {items} sum {sum(items)}")
