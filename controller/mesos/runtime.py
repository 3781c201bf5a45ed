"""Runtime facts of a job, built from what a term knows (or, between terms, from the
job statistics alone).

Pure reads, each O(the job): the store's queues are keyed by job, so no queue is
scanned or copied (a refresh of every job stays linear in the number of jobs). The
engine passes its state store, its task memory, its producer, the
statistics and the run history's summary of the job; `SchedulingService.job_runtime`
answers with `between_terms` while this process does not lead.
"""

from __future__ import annotations

from controller.mesos.statistics import JobStats
from controller.mesos.tracking import TrackedTasks
from controller.operations import JobHistory, JobRuntime, ShardRuntime
from controller.producer import TransientProducer
from controller.state import StateStore


def job_runtime(
    job_key: str,
    *,
    store: StateStore,
    tracked: TrackedTasks,
    producer: TransientProducer,
    stats: JobStats,
    history: JobHistory | None,
) -> JobRuntime:
    job = store.job(job_key)
    shards = []
    for task in sorted(store.running_of(job_key), key=lambda t: t.shard):
        known = tracked.of(task)
        shards.append(
            ShardRuntime(
                shard=task.shard,
                task_id=task.task_id,
                agent_id=task.agent_id,
                hostname=task.hostname,
                state=known.state if known else task.state,
                since=known.since if known else task.launched_at,
            )
        )
    ready = store.ready_of(job_key)
    scheduled = job is not None and not store.is_disabled(job_key)
    if scheduled and job is not None and not job.is_daemon:
        scheduled = producer.is_registered(job_key)
    return JobRuntime(
        job_key=job_key,
        scheduled=scheduled,
        active_shards=tuple(shards),
        last_fire_time=stats.last_fire_time,
        next_fire_time=producer.next_fire(job_key),
        last_success_time=stats.last_success_time,
        succeeded=stats.succeeded,
        failed=stats.failed,
        pending_runs=ready.count if ready else 0,
        unplaceable_reason=stats.unplaceable_reason,
        failover_shards=store.failover_of(job_key),
        history=history,
    )


def between_terms(job_key: str, stats: JobStats, history: JobHistory | None) -> JobRuntime:
    """What is known of a job while no term runs: its counters, nothing scheduled."""
    return JobRuntime(
        job_key=job_key,
        scheduled=False,
        last_fire_time=stats.last_fire_time,
        last_success_time=stats.last_success_time,
        succeeded=stats.succeeded,
        failed=stats.failed,
        history=history,
    )
