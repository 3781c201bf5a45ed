"""The context a Python or dataflow job receives: which shard of which job it runs.

User code gets a `JobContext` as its `ctx` argument (`run(ctx)`, `fetch(ctx)`,
`process(ctx, items)`) and may import this module for type hints. The job host
(`controller.executor.jobhost`) builds it from the JSON the executor hands over;
the module imports only the standard library so a job process starts fast.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class JobContext:
    job_name: str
    task_id: str
    sharding_total_count: int
    sharding_item: int
    sharding_parameter: str
    job_parameter: str
    fire_time: datetime | None
    sandbox: str
    """This task's own output directory (its stdout and stderr files live there)."""
    app_root: str
    """The extracted app package."""
    triggered: bool = False
    """True when an explicit trigger, not the cron, started this run."""

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["fire_time"] = self.fire_time.isoformat() if self.fire_time else None
        return document

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> JobContext:
        fields = dict(document)
        fire_time = fields.get("fire_time")
        fields["fire_time"] = datetime.fromisoformat(fire_time) if fire_time else None
        return cls(**fields)
