"""Which missed cron fires of a transient job a new leader still runs (pure).

While no replica leads — the leader was killed and its session has not expired yet, or
a rolling restart hands over — no timer fires. The last fire each job handled is
stored with the queues (written in the transaction that queued it), so the next leader
knows exactly which fires nobody handled. `missed_fires` decides which of those it
queues before its timers start: every fire after the last handled one and at most the
job's starting deadline late, coalesced as the job's misfire flag coalesces fires that
wait in the ready queue — misfire off: only the newest (they would merge into one
pending run anyway), misfire on: each of them, the newest `MAX_CATCH_UP` at most.

Fires at or before the last handled one are never returned, so no fire runs twice
whoever leads, and a wall clock stepped back behind it replays nothing.
docs/semantics.md#catching-up-after-a-leader-change states the rule.

`missed_of_jobs` applies it to every transient job, with the job's deadline raised to
the controller's misfire threshold (a fire that late is on time for a running leader
too). Called by `controller.mesos.engine.FrameworkEngine.start`; tested in
tests/framework/test_catchup.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.cron import CronError, CronSchedule, parse_cron
from controller.definitions import JobDefinition

MAX_CATCH_UP = 100
"""The most missed fires one job catches up at once (misfire on); older ones are skipped."""

# The first look-back window when searching for the newest missed fires; it doubles until
# it holds enough of them or reaches the deadline, so a frequent cron with a long
# deadline costs a few hundred `next_fire` calls, not one per fire in the deadline.
_FIRST_WINDOW = timedelta(seconds=60)
_WALK_LIMIT = 100_000


@dataclass(frozen=True)
class MissedFires:
    """The fires to queue now, oldest first, and the first missed fire that is skipped
    because it is older than the deadline (or beyond the catch-up limit), if any."""

    run: tuple[datetime, ...] = ()
    first_skipped: datetime | None = None


def missed_fires(
    schedule: CronSchedule,
    handled: datetime,
    now: datetime,
    *,
    deadline: float,
    misfire: bool,
    limit: int = MAX_CATCH_UP,
) -> MissedFires:
    """The fires of `schedule` after `handled` and at or before `now` that are at most
    `deadline` seconds late at `now`, coalesced per `misfire` (see the module docstring)."""
    first = schedule.next_fire(handled)
    if first is None or first > now:
        return MissedFires()
    wanted = limit if misfire else 1
    oldest = max(handled, now - timedelta(seconds=deadline))
    window = _FIRST_WINDOW
    while True:
        start = max(oldest, now - window)
        # A fire exactly `deadline` late still counts: look from just before the bound.
        begin = start - timedelta(microseconds=1) if start > handled else handled
        fires = [
            f
            for f in schedule.fires_between(begin, now, limit=_WALK_LIMIT)
            if (now - f).total_seconds() <= deadline
        ]
        if len(fires) >= wanted or start == oldest:
            break
        window *= 2
    run = tuple(fires[-wanted:]) if fires else ()
    if misfire:
        skipped = first if not run or first < run[0] else None
    else:
        # The older fires merge into the newest, as they would in the ready queue: none is
        # skipped unless the first is beyond the deadline.
        skipped = first if not run or (now - first).total_seconds() > deadline else None
    return MissedFires(run, skipped)


def missed_of_jobs(
    jobs: Iterable[tuple[JobDefinition, datetime]], now: datetime, *, threshold: float
) -> dict[str, MissedFires]:
    """Job key → its missed fires, for each (transient job, last fire handled) with a fire
    missed (run or skipped); jobs whose cron does not parse are left to whoever
    registers them, which reports it."""
    schedules: dict[tuple[str, str], CronSchedule] = {}
    found: dict[str, MissedFires] = {}
    for job, handled in jobs:
        cron = (job.spec.cron, job.spec.time_zone)
        schedule = schedules.get(cron)
        if schedule is None:
            try:
                schedule = schedules[cron] = parse_cron(*cron)
            except CronError:
                continue
        deadline = max(job.spec.starting_deadline_seconds, threshold)
        missed = missed_fires(schedule, handled, now, deadline=deadline, misfire=job.spec.misfire)
        if missed != MissedFires():
            found[job.key] = missed
    return found
