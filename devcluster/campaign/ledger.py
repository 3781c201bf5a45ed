"""The run ledger: what the campaign's jobs say they ran, written by the jobs themselves.

Every run of a campaign job appends one JSON line to the trial's ledger file (opened
O_APPEND by `>>`, and a line this short is written whole, so concurrent runs never
interleave): its sharding context (job, fire time, shard, task id), the sandbox it ran
in, and its start and end. Nothing here asks the controller; the checker
(`devcluster.campaign.checker`) reads the ledger through `read_ledger`. The trial
(`devcluster.campaign.trial`) writes `JOB_SCRIPT` next to the ledger and points each
job's command line at it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

TASK_ID_DELIMITER = "@-@"
LEDGER = "ledger.jsonl"

# $1 is the ledger (named on the job's command line), $2 the sharding context the
# controller appends as the last argument. The run sleeps a little so that faults find
# runs in flight.
JOB_SCRIPT = """#!/bin/sh
start=$(date +%s.%N)
sleep 0.3
end=$(date +%s.%N)
printf '{"context":%s,"start":%s,"end":%s,"sandbox":"%s"}\\n' \\
    "$2" "$start" "$end" "$PWD" >> "$1"
"""


@dataclass(frozen=True)
class Run:
    """One shard run, as its job recorded it."""

    job: str
    fire_time: float | None
    shard: int
    task_id: str
    start: float
    end: float

    @property
    def agent(self) -> str:
        """The agent the task ran on: task ids are `<job>@-@<shard>@-@<type>@-@<agent>@-@<uuid>`."""
        parts = self.task_id.split(TASK_ID_DELIMITER)
        return TASK_ID_DELIMITER.join(parts[3:-1]) if len(parts) >= 5 else "?"


def parse_line(line: str) -> Run:
    """One ledger line as a Run (ValueError when it is not one)."""
    try:
        document = json.loads(line)
        context = document["context"]
        fire = context.get("fire_time")
        return Run(
            job=str(context["job_name"]),
            fire_time=datetime.fromisoformat(fire).timestamp() if fire else None,
            shard=int(context["sharding_item"]),
            task_id=str(context["task_id"]),
            start=float(document["start"]),
            end=float(document["end"]),
        )
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise ValueError(f"not a ledger record: {line!r} ({error})") from None


def read_ledger(path: Path) -> list[Run]:
    """Every run recorded in the ledger file (none yet: an empty list)."""
    if not path.exists():
        return []
    return [parse_line(line) for line in path.read_text().splitlines() if line.strip()]
