"""Pure decisions over the ready and failover queues (docs/semantics.md#queues).

No I/O: the store applies these to its in-memory view and writes the outcome to
ZooKeeper in one transaction; tests/state/test_rules.py covers every rule.

Ready queue (one entry per job, a count of pending runs plus their fire times):
- transient fire, misfire on: the count accumulates (+1 per fire while not launched);
- transient fire, misfire off: the count is set to 1 (this fire's time replaces the others);
- daemon: set to 1, and only if none of the job's tasks is running;
- disabled job or app: nothing is added, ever (disabled jobs never accumulate runs, the
  original's issue #367: docs/semantics.md#differences-from-the-original);
- a launch consumes one run (the oldest fire); the entry is deleted when none is left;
- a config update with misfire off resets an existing count to 1; a config update of
  a daemon job removes its entry (the reschedule adds it back);
- queue limit: an add that would create a new job entry in a queue already holding
  `limit` entries is refused (adding to an existing entry is not); the store raises
  `controller.operations.QueueFull` with the refusal's message. The original refused
  only above the limit (`>`), letting the queue reach limit + 1; here it is a maximum.

Failover queue (one entry per shard): a failed task's shard is recorded when the job
config exists, neither job nor app is disabled, the job has failover on or is DAEMON,
the job still has that shard, no entry for that shard exists and the shard is not
running. A task Mesos never ran
(its launch was dropped or is unknown to the master) is a relaunch: its shard is
recorded whatever the job's failover flag, the other conditions still apply.

Triggers: each job remembers the last trigger token it handled; a token equal to it
has already run (nothing happens), any other runs once unless the job is disabled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from controller.definitions import JobDefinition
from controller.state.records import MAX_FIRES, ReadyEntry

DEFAULT_QUEUE_LIMIT = 10_000


class ReadyOutcome(StrEnum):
    ADDED = "added"
    ACCUMULATED = "accumulated"
    SET_TO_ONE = "set-to-one"
    ALREADY_READY = "already-ready"
    SKIPPED_DISABLED = "skipped-disabled"
    SKIPPED_RUNNING = "skipped-running"
    REFUSED_QUEUE_FULL = "refused-queue-full"

    @property
    def changed(self) -> bool:
        return self in (ReadyOutcome.ADDED, ReadyOutcome.ACCUMULATED, ReadyOutcome.SET_TO_ONE)


@dataclass(frozen=True)
class ReadyChange:
    """The entry after a fire (`entry` None = no entry) and what happened; `message`
    explains a refusal."""

    outcome: ReadyOutcome
    entry: ReadyEntry | None
    message: str = ""

    @property
    def creates_entry(self) -> bool:
        return self.outcome is ReadyOutcome.ADDED


def after_fire(
    job: JobDefinition,
    current: ReadyEntry | None,
    fire_time: datetime | None,
    *,
    disabled: bool,
    job_running: bool,
    triggered: bool = False,
) -> ReadyChange:
    """The ready entry of `job` after one fire (transient) or one schedule (daemon).

    `disabled` is true when the job or its app is disabled; `job_running` when any
    task of the job is recorded as running. A `triggered` fire of a transient job asks
    for one run more than is pending, so it accumulates whatever the misfire flag.
    """
    if disabled:
        return ReadyChange(ReadyOutcome.SKIPPED_DISABLED, current)
    fires = (fire_time,) if fire_time is not None else ()
    if job.is_daemon:
        if job_running:
            return ReadyChange(ReadyOutcome.SKIPPED_RUNNING, current)
        if current is not None:
            return ReadyChange(ReadyOutcome.ALREADY_READY, current)
        return ReadyChange(ReadyOutcome.ADDED, ReadyEntry(count=1, fires=fires))
    if current is None:
        return ReadyChange(ReadyOutcome.ADDED, ReadyEntry(count=1, fires=fires))
    if job.spec.misfire or triggered:
        # fires are positional (the oldest pending runs): append only while all are recorded
        all_recorded = len(current.fires) == current.count < MAX_FIRES
        kept = current.fires + fires if all_recorded else current.fires
        return ReadyChange(
            ReadyOutcome.ACCUMULATED, ReadyEntry(count=current.count + 1, fires=kept)
        )
    return ReadyChange(ReadyOutcome.SET_TO_ONE, ReadyEntry(count=1, fires=fires))


def after_fires(
    job: JobDefinition,
    current: ReadyEntry | None,
    fires: Sequence[datetime],
    *,
    disabled: bool,
    job_running: bool,
) -> ReadyChange:
    """The ready entry of a transient `job` after several fires in turn (a catch-up of
    fires no leader handled): each as `after_fire`, so misfire on accumulates one run
    per fire and misfire off leaves one run with the newest fire time. The outcome is
    ADDED when the fires create the entry, otherwise that of the last fire."""
    if not fires:
        raise ValueError("after_fires needs at least one fire time")
    entry = current
    change = ReadyChange(ReadyOutcome.SKIPPED_DISABLED, current)
    for fire in fires:
        change = after_fire(job, entry, fire, disabled=disabled, job_running=job_running)
        entry = change.entry
    if current is None and change.outcome.changed:
        return ReadyChange(ReadyOutcome.ADDED, change.entry)
    return change


def after_launch(current: ReadyEntry) -> tuple[ReadyEntry | None, datetime | None]:
    """Consume one run: the entry left (None = delete it) and the consumed run's fire time."""
    if current.count <= 1:
        return None, current.next_fire
    return ReadyEntry(count=current.count - 1, fires=current.fires[1:]), current.next_fire


def after_config_update(job: JobDefinition, current: ReadyEntry | None) -> ReadyEntry | None:
    """The ready entry once `job` (the new definition) replaces its previous definition."""
    if current is None or job.is_daemon:
        return None
    if not job.spec.misfire and current.count > 1:
        return ReadyEntry(count=1, fires=current.fires[:1])
    return current


def room_refusal(queue: str, entries: int, limit: int, job_key: str) -> str | None:
    """Why a new entry for `job_key` cannot join a queue of `entries` entries (None = it can)."""
    if entries < limit:
        return None
    return (
        f"cannot add job '{job_key}' to the {queue} queue: it already holds {entries} job "
        f"entries, the limit is {limit} (raise the job state queue size setting or find "
        "out why jobs are not being launched)"
    )


def within_limit(change: ReadyChange, entries: int, limit: int, job_key: str) -> ReadyChange:
    """`change`, or its refusal when it would create an entry in a full ready queue."""
    if not change.creates_entry:
        return change
    refusal = room_refusal("ready", entries, limit, job_key)
    if refusal is None:
        return change
    return ReadyChange(ReadyOutcome.REFUSED_QUEUE_FULL, None, refusal)


class TriggerOutcome(StrEnum):
    RUN = "run"
    ALREADY_HANDLED = "already-handled"
    REFUSED_DISABLED = "refused-disabled"


def trigger_verdict(handled: str | None, token: str, *, disabled: bool) -> TriggerOutcome:
    """Whether trigger `token` runs, given the last token the job handled (None: none).

    Raises ValueError for an empty token."""
    if not token:
        raise ValueError(
            "trigger token must be a non-empty string (the cloudjob.io/trigger annotation value)"
        )
    if token == handled:
        return TriggerOutcome.ALREADY_HANDLED
    if disabled:
        return TriggerOutcome.REFUSED_DISABLED
    return TriggerOutcome.RUN


class FailoverOutcome(StrEnum):
    RECORDED = "recorded"
    NO_CONFIG = "no-config"
    JOB_DISABLED = "job-disabled"
    APP_DISABLED = "app-disabled"
    FAILOVER_OFF = "failover-off"
    ALREADY_RECORDED = "already-recorded"
    SHARD_RUNNING = "shard-running"
    QUEUE_FULL = "queue-full"
    SHARD_GONE = "shard-gone"


def failover_decision(
    job: JobDefinition | None,
    *,
    job_disabled: bool,
    app_disabled: bool,
    entry_exists: bool,
    shard_running: bool,
    relaunch: bool = False,
    shard: int | None = None,
) -> FailoverOutcome:
    """Whether a failed shard of `job` goes to the failover queue (queue room aside).

    `relaunch`: the task never ran (Mesos dropped the launch or does not know it), so
    its shard is queued again whatever the job's failover flag. `shard` beyond the
    job's sharding count (it went down since the run started) never fails over."""
    if job is None:
        return FailoverOutcome.NO_CONFIG
    if shard is not None and shard >= job.spec.sharding_total_count:
        return FailoverOutcome.SHARD_GONE
    if job_disabled:
        return FailoverOutcome.JOB_DISABLED
    if app_disabled:
        return FailoverOutcome.APP_DISABLED
    if not (job.spec.failover or job.is_daemon or relaunch):
        return FailoverOutcome.FAILOVER_OFF
    if entry_exists:
        return FailoverOutcome.ALREADY_RECORDED
    if shard_running:
        return FailoverOutcome.SHARD_RUNNING
    return FailoverOutcome.RECORDED
