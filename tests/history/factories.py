"""Records for the history tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from controller.history.records import Outcome, RunEnded, RunLaunched, RunPlace, Transition
from controller.state import FollowUp, LaunchSource, RunningTask, StateStore

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def place(job: str = "team.report", shard: int = 0, *, fire: datetime = T0) -> RunPlace:
    return RunPlace(
        job_key=job,
        shard=shard,
        task_id=f"{job}@-@{shard}@-@READY@-@agent-{shard}@-@{fire.timestamp():.0f}",
        source="READY",
        agent_id=f"agent-{shard}",
        hostname=f"host-{shard}",
        executor_id=None,
        fire_time=fire,
        launched_at=fire + timedelta(seconds=1),
    )


def launched(job: str = "team.report", shard: int = 0, *, fire: datetime = T0) -> RunLaunched:
    where = place(job, shard, fire=fire)
    return RunLaunched(run_key=where.task_id, place=where)


def ended(
    job: str = "team.report",
    shard: int = 0,
    outcome: Outcome = Outcome.SUCCEEDED,
    *,
    fire: datetime = T0,
    message: str | None = None,
) -> RunEnded:
    where = place(job, shard, fire=fire)
    return RunEnded(
        run_key=where.task_id,
        place=where,
        started_at=where.launched_at,
        ended_at=where.launched_at + timedelta(seconds=5),
        outcome=outcome,
        state="TASK_FINISHED" if outcome is Outcome.SUCCEEDED else "TASK_FAILED",
        message=message,
        exit_status=3 if outcome is Outcome.FAILED else None,
        stderr_tail="boom" if outcome is Outcome.FAILED else None,
    )


def transition(job: str = "team.report", shard: int = 0, state: str = "TASK_RUNNING") -> Transition:
    where = place(job, shard)
    return Transition(
        task_id=where.task_id,
        job_key=job,
        shard=shard,
        state=state,
        at=T0 + timedelta(seconds=2),
        source="SOURCE_EXECUTOR",
        agent_id=where.agent_id,
        hostname=where.hostname,
    )


def queue_every_way(store: StateStore, job_key: str, at: datetime, tag: str) -> None:
    """A job fired at `at` with shards 0 and 1 launched, shard 1 then failed over: one
    shard running, one in the failover queue (a later fire makes a pending run)."""
    store.fire([job_key], at)
    tasks = [
        RunningTask(
            task_id=f"{job_key}@-@{shard}@-@READY@-@agent-1@-@{tag}{shard}",
            job_key=job_key,
            shard=shard,
            source=LaunchSource.READY,
            agent_id="agent-1",
            hostname="host-1",
            launched_at=at,
            fire_time=at,
        )
        for shard in (0, 1)
    ]
    store.commit_launch(tasks)
    store.task_terminated(tasks[1].task_id, FollowUp.FAILOVER)
