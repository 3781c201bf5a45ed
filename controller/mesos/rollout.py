"""The roll-out of a new app version: which old executors to shut down, which daemons to move.

Pure. An edited app (package URL, bootstrap script, resources, the framework's executor
settings) has a new executor version (`tasks.app_version`): new tasks get executors of
that version, beside the old ones on the same agents. `plan_rollout` decides, from the
executors known, the tasks recorded as running and the apps' current versions:

- **retire**: every known executor of an outdated version of a defined app that no
  recorded task uses any more gets SHUTDOWN. Transient tasks finish where they run,
  so their old executors end with their last task;
- **replace**: daemon tasks never end by themselves, so they are moved: a daemon task
  on an outdated executor is killed to be launched again (on the new version), per
  job never more at once than leaves `batch` shards down — a shard counts as up only
  while a task of it is `TASK_RUNNING` and not being replaced. A job with a shard down
  for any other reason (unplaceable, failed over) waits, so no upgrade takes a daemon
  job further down than `batch` shards.

Jobs whose tasks the reconciliation after a leader change has not settled are left
alone until it has. `roller.Roller` runs the plan; docs/framework.md ("App upgrades")
describes the whole roll-out.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from controller.definitions import JobDefinition
from controller.mesos.states import TaskState
from controller.mesos.tasks import AppVersion, ExecutorId, TaskIdError
from controller.state import RunningTask


@dataclass
class RolloutPlan:
    retire: list[ExecutorId] = field(default_factory=list)
    replace: list[RunningTask] = field(default_factory=list)


def _version(task: RunningTask) -> AppVersion | None:
    if not task.executor_id:
        return None
    try:
        return ExecutorId.parse(task.executor_id).version
    except TaskIdError:
        return None


def outdated(version: AppVersion | None, current: Mapping[str, AppVersion]) -> bool:
    """A version of a defined app other than its current one."""
    return (
        version is not None and version.app_key in current and version != current[version.app_key]
    )


def plan_rollout(
    *,
    executors: Iterable[ExecutorId],
    running: Iterable[RunningTask],
    jobs: Mapping[str, JobDefinition],
    current: Mapping[str, AppVersion],
    replacing: Collection[str],
    unsettled_jobs: Collection[str],
    batch: int,
) -> RolloutPlan:
    """What to do now; `current` maps each defined app to its current version."""
    plan = RolloutPlan()
    tasks = list(running)
    used = {t.executor_id for t in tasks if t.executor_id}
    plan.retire = sorted(
        (e for e in set(executors) if outdated(e.version, current) and e.value not in used), key=str
    )

    daemons: dict[str, list[RunningTask]] = {}
    for task in tasks:
        job = jobs.get(task.job_key)
        if job is not None and job.is_daemon and task.job_key not in unsettled_jobs:
            daemons.setdefault(task.job_key, []).append(task)
    for job_key in sorted(daemons):
        serving = [
            t
            for t in daemons[job_key]
            if t.state == TaskState.RUNNING.value and t.task_id not in replacing
        ]
        up = len({t.shard for t in serving})
        down = max(0, jobs[job_key].spec.sharding_total_count - up)
        movable = sorted(
            (t for t in serving if outdated(_version(t), current)), key=lambda t: t.shard
        )
        plan.replace.extend(movable[: max(0, batch - down)])
    return plan
