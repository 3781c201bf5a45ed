"""Benchmark: what `write_batch` costs per record and per batch on SQLite.

Writes the records of short runs across J jobs — each run's launch, and its end a
little later in the stream (most ends land in the batch of their launch, some in the
next one, as the writer sees them) — in batches of the writer's default size, one
transaction each, to a fresh SQLite file in a temporary directory (migrated first,
not timed), B batches per repeat. Prints the records written per second and the
milliseconds per batch, medians of the repeats.

    .venv/bin/python bench/history_write.py [--jobs 10000] [--batches 40] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from controller.history.database import migrate, open_engine
from controller.history.records import (
    HistoryRecord,
    Outcome,
    RunEnded,
    RunLaunched,
    RunPlace,
)
from controller.history.settings import HistorySettings
from controller.history.storing import write_batch

START = datetime(2026, 3, 1, tzinfo=UTC)
# records between a run's launch and its end in the stream
END_LAG = 60


def run_records(jobs: int, runs: int) -> list[HistoryRecord]:
    """The launches and ends of `runs` runs, round-robin over `jobs` jobs."""
    launches: list[HistoryRecord] = []
    ends: list[HistoryRecord] = []
    for n in range(runs):
        job = n % jobs
        job_key = f"team-{job % 50}.job-{job}"
        fire = START + timedelta(seconds=n // jobs * 60)
        task_id = f"{job_key}@-@0@-@READY@-@agent-{n % 20}@-@{n}"
        place = RunPlace(
            job_key=job_key,
            shard=0,
            task_id=task_id,
            source="READY",
            agent_id=f"agent-{n % 20}",
            hostname=f"host-{n % 20}",
            executor_id=None,
            fire_time=fire,
            launched_at=fire + timedelta(milliseconds=200),
        )
        launches.append(RunLaunched(task_id, place))
        failed = n % 10 == 0
        ends.append(
            RunEnded(
                run_key=task_id,
                place=place,
                started_at=place.launched_at,
                ended_at=place.launched_at + timedelta(seconds=2 + n % 7),
                outcome=Outcome.FAILED if failed else Outcome.SUCCEEDED,
                state="TASK_FAILED" if failed else "TASK_FINISHED",
                message="exit status 1" if failed else None,
                exit_status=1 if failed else None,
            )
        )
    stream: list[HistoryRecord] = []
    for n, launch in enumerate(launches):
        stream.append(launch)
        if n >= END_LAG // 2:
            stream.append(ends[n - END_LAG // 2])
    stream += ends[len(ends) - END_LAG // 2 :]
    return stream


async def write_all(batches: list[list[HistoryRecord]]) -> float:
    """Seconds to write `batches` to a fresh database, one transaction each."""
    with tempfile.TemporaryDirectory(prefix="history-write-") as directory:
        engine = open_engine(f"sqlite+aiosqlite:///{Path(directory) / 'history.db'}")
        try:
            await migrate(engine)
            started = time.perf_counter()
            for batch in batches:
                async with engine.begin() as connection:
                    await write_batch(connection, batch)
            return time.perf_counter() - started
        finally:
            await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=HistorySettings().batch_size)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    records = run_records(args.jobs, args.batches * args.batch_size // 2)
    batches = [records[n : n + args.batch_size] for n in range(0, len(records), args.batch_size)]
    seconds = statistics.median(asyncio.run(write_all(batches)) for _ in range(args.repeats))
    print(
        f"{len(records)} records ({len(records) // 2} runs of {args.jobs} jobs) "
        f"in {len(batches)} batches of {args.batch_size}, median of {args.repeats}:"
    )
    print(f"  {len(records) / seconds:,.0f} records/s")
    print(f"  {seconds / len(batches) * 1000:.1f} ms per batch")


if __name__ == "__main__":
    main()
