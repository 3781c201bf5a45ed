"""The transient producer: cron timers that put transient jobs into the ready queue.

One asyncio timer per distinct (cron expression, time zone), holding the keys of every
job registered with it — thousands of jobs commonly share a handful of crons. A timer
hands all its jobs and the fire time to `on_fire` in one call; the fire time travels
with the run (it is part of the run's identity and of the fire-to-launch skew metric).

What a timer does each time it wakes is decided by `step`, a pure function of the
schedule, the last fire time it handled and the wall clock:

- Misfires follow Quartz's "do nothing" instruction: a fire noticed more than
  `misfire_threshold` seconds late (the loop was blocked, the process was suspended,
  the wall clock stepped forward past it) is skipped, and the timer continues with the
  next fire time after now. Whether pending runs accumulate is the ready queue's
  business (the job's misfire flag), not this one.
- Fire times only move forward: a timer never fires at or before a time it has already
  fired or skipped past, so a wall clock stepped back (an NTP correction) replays
  nothing; the timer fires again when the clock reaches its next fire time.
- With a `lead`, a timer wakes that long before each fire time and hands its jobs and
  the coming fire time to `on_upcoming` once, so that the fire's launch can be planned
  ahead; the fire itself comes through `on_fire`.
- With `early`, a timer hands a fire whose announcement `on_upcoming` answered True
  (its launch is planned) to `on_fire` up to that long before its time, and the handler
  waits for the time itself: a handler that waits on a thread is not made late by an
  event loop busy at the fire time. Any other fire is handed at its time.
- Sleeps are measured on the event loop's monotonic clock while fire times are wall
  times, so a timer sleeps until its next fire time but never longer than `recheck`
  seconds at a time: after a step either way it looks at the wall clock again within
  that bound instead of sleeping out a deadline computed before the step.

docs/semantics.md#cron-fires-and-misfires states the misfire rule.

Each leadership term's `controller.mesos.engine.FrameworkEngine` owns one: it registers
every scheduled transient job and deregisters it on unschedule.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from controller.cron import CronSchedule, parse_cron
from controller.operations import SchedulingError

log = logging.getLogger(__name__)

T = TypeVar("T")

FireHandler = Callable[[tuple[str, ...], datetime], Awaitable[None]]
# Answers whether the announced fire is to be handed early.
UpcomingHandler = Callable[[tuple[str, ...], datetime], Awaitable[bool]]
Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]

# How long a timer sleeps at most before it reads the wall clock again.
RECHECK_SECONDS = 1.0


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, order=True)
class TimerKey:
    cron: str
    time_zone: str


@dataclass(frozen=True)
class TimerStep:
    """What a timer does now: fire or skip at most one fire time, then sleep `sleep` seconds."""

    handled: datetime  # the timer never fires at or before this again
    next_fire: datetime | None  # the fire waited for next; None when the cron has none left
    fire: datetime | None = None  # hand the jobs this fire time now
    missed: datetime | None = None  # this fire time was too late and is skipped
    upcoming: datetime | None = None  # this fire time is within the lead: announce it now
    sleep: float = 0.0


def step(
    schedule: CronSchedule,
    handled: datetime,
    now: datetime,
    threshold: float,
    recheck: float,
    *,
    lead: float = 0.0,
    announced: datetime | None = None,
    early: float = 0.0,
) -> TimerStep:
    """The timer's decision at wall time `now`, given the last fire time it `handled`
    and the last one it `announced` (within `lead` seconds before it); a fire is handed
    from `early` seconds before its time."""
    due = schedule.next_fire(handled)
    if due is None:
        return TimerStep(handled, None)
    if due > now:
        until = (due - now).total_seconds()
        announce = lead > 0 and announced != due
        wake = max(lead, early) if announce else early
        if announce and until <= wake:
            return TimerStep(handled, due, upcoming=due)
        if until <= early:
            return TimerStep(due, schedule.next_fire(due), fire=due)
        return TimerStep(handled, due, sleep=min(until - wake, recheck))
    if (now - due).total_seconds() > threshold:
        return TimerStep(now, schedule.next_fire(now), missed=due)
    return TimerStep(due, schedule.next_fire(due), fire=due)


@dataclass
class _Timer:
    key: TimerKey
    schedule: CronSchedule
    handled: datetime
    jobs: dict[str, None] = field(default_factory=dict)
    next_fire: datetime | None = None
    announced: datetime | None = None
    # The announced fire time to hand over early.
    early_for: datetime | None = None
    task: asyncio.Task[None] | None = None


class TransientProducer:
    """Cron timers for transient jobs; `register`/`deregister` are idempotent;
    `register` raises `SchedulingError` once the producer is closed."""

    def __init__(
        self,
        on_fire: FireHandler,
        *,
        misfire_threshold: float = 5.0,
        clock: Clock = utc_now,
        sleep: Sleep = asyncio.sleep,
        on_misfire: Callable[[TimerKey, datetime], None] | None = None,
        recheck: float = RECHECK_SECONDS,
        on_upcoming: UpcomingHandler | None = None,
        lead: float = 0.0,
        early: float = 0.0,
    ) -> None:
        self._on_fire = on_fire
        self._threshold = misfire_threshold
        self._clock = clock
        self._sleep = sleep
        self._on_misfire = on_misfire
        self._recheck = recheck
        self._on_upcoming = on_upcoming
        self._lead = lead if on_upcoming is not None else 0.0
        self._early = early
        self._timers: dict[TimerKey, _Timer] = {}
        self._job_timer: dict[str, TimerKey] = {}
        self._closed = False

    # registration ---------------------------------------------------------------------
    def register(
        self, job_key: str, cron: str, time_zone: str = "UTC", *, since: datetime | None = None
    ) -> None:
        """Fire `job_key` on `cron` in `time_zone`; raises `CronError` for a bad cron.

        A timer this creates fires after `since` (default: now) — a new leader passes
        the time up to which it has caught up missed fires, so none falls in between."""
        if self._closed:
            # An operation that reached the term as it ended: the caller's "retry later".
            raise SchedulingError("this term's cron timers are closed: it no longer leads")
        key = TimerKey(cron, time_zone)
        if self._job_timer.get(job_key) == key:
            return
        timer = self._timers.get(key)
        if timer is None:
            schedule = parse_cron(cron, time_zone)
            start = self._clock() if since is None else since
            timer = _Timer(key, schedule, handled=start, next_fire=schedule.next_fire(start))
        self.deregister(job_key)
        timer.jobs[job_key] = None
        self._job_timer[job_key] = key
        if key not in self._timers:
            self._timers[key] = timer
            timer.task = asyncio.get_running_loop().create_task(
                self._run(timer), name=f"cron {cron} [{time_zone}]"
            )

    def deregister(self, job_key: str) -> None:
        key = self._job_timer.pop(job_key, None)
        if key is None:
            return
        timer = self._timers[key]
        timer.jobs.pop(job_key, None)
        if not timer.jobs:
            del self._timers[key]
            if timer.task is not None:
                timer.task.cancel()

    # queries --------------------------------------------------------------------------
    def is_registered(self, job_key: str) -> bool:
        return job_key in self._job_timer

    def timer_of(self, job_key: str) -> TimerKey | None:
        """The cron timer `job_key` fires on (None: not registered)."""
        return self._job_timer.get(job_key)

    def next_fire(self, job_key: str) -> datetime | None:
        key = self._job_timer.get(job_key)
        return None if key is None else self._timers[key].next_fire

    def upcoming(self) -> datetime | None:
        """The next fire time of any timer (None: no timer has one)."""
        return min((t.next_fire for t in self._timers.values() if t.next_fire), default=None)

    def timers(self) -> dict[TimerKey, tuple[str, ...]]:
        return {key: tuple(timer.jobs) for key, timer in self._timers.items()}

    # lifecycle ------------------------------------------------------------------------
    async def close(self) -> None:
        """Cancel every timer and wait for them to end."""
        self._closed = True
        tasks = [t.task for t in self._timers.values() if t.task is not None]
        self._timers.clear()
        self._job_timer.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, timer: _Timer) -> None:
        while True:
            decision = step(
                timer.schedule,
                timer.handled,
                self._clock(),
                self._threshold,
                self._recheck,
                lead=self._lead,
                announced=timer.announced,
                early=self._early if timer.early_for == timer.next_fire else 0.0,
            )
            timer.handled, timer.next_fire = decision.handled, decision.next_fire
            if decision.missed is not None:
                log.warning(
                    "cron %s [%s] misfired at %s (noticed %s); skipping to the next fire",
                    timer.key.cron,
                    timer.key.time_zone,
                    decision.missed.isoformat(),
                    decision.handled.isoformat(),
                )
                if self._on_misfire is not None:
                    self._on_misfire(timer.key, decision.missed)
            elif decision.fire is not None:
                await self._hand(self._on_fire, timer, decision.fire, "handling")
            elif decision.upcoming is not None and self._on_upcoming is not None:
                timer.announced = decision.upcoming
                early = await self._hand(self._on_upcoming, timer, decision.upcoming, "preparing")
                timer.early_for = decision.upcoming if early else None
            elif decision.next_fire is None:
                log.info(
                    "cron %s [%s] has no further fire time", timer.key.cron, timer.key.time_zone
                )
                return
            else:
                await self._sleep(decision.sleep)

    async def _hand(
        self,
        handler: Callable[[tuple[str, ...], datetime], Awaitable[T]],
        timer: _Timer,
        at: datetime,
        doing: str,
    ) -> T | None:
        """Hand the timer's jobs and a fire time to `handler`; a failure is logged (None)
        and never ends the timer."""
        try:
            return await handler(tuple(timer.jobs), at)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s the fire of cron %s at %s failed", doing, timer.key, at)
            return None
