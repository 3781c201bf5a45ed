"""When a daemon task runs its job: the executor-side cron timer, as pure decisions.

Each daemon task has its own clock (one timer per task, as the original's
per-task Quartz scheduler). The rules:

- A fire starts a run when no run of the task is in progress. Runs of one task
  never overlap.
- A fire that comes while a run is in progress: with misfire on it is held and
  starts one run as soon as the current run ends (several held fires coalesce
  into one); with misfire off it is dropped.
- A fire handled late (the process was suspended, the machine overloaded): with
  misfire on it still runs if at most `misfire_threshold` late (Quartz's default
  60 s); with misfire off anything later than `on_time_tolerance` (timer jitter)
  is dropped. Fires missed in between are never replayed: the clock moves on to
  the next fire after now (Quartz's "do nothing" misfire instruction).
- A trigger (framework message) starts a run now, or right after the run in
  progress — explicit requests are never dropped.
- The wall clock may be stepped (an NTP correction). Fire times only move forward:
  the next fire is always after the wall time of the wake that handled the last one,
  so a step back replays nothing. A step forward past a fire makes it late, and the
  misfire rule above decides. The timer sleeps on the monotonic clock, so
  `seconds_until_wake` is at most `recheck` (1 s): after a step either way the wall
  clock is read again within that bound instead of sleeping out a deadline computed
  before the step.

The task supervisor (`controller.executor.supervising`) feeds the clock the wall
time and these events and carries out the runs it asks for. `sample` decides
which runs report BEGIN/COMPLETE (the app's eventTraceSamplingCount).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

MISFIRE_THRESHOLD = timedelta(seconds=60)
ON_TIME_TOLERANCE = timedelta(seconds=1)
RECHECK = timedelta(seconds=1)


class Schedule(Protocol):
    def next_fire(self, after: datetime) -> datetime | None: ...


@dataclass(frozen=True)
class Run:
    """A run to start now."""

    fire_time: datetime | None
    triggered: bool = False


@dataclass(frozen=True)
class ClockState:
    next_fire: datetime | None
    running: bool = False
    held_fire: datetime | None = None
    held_trigger: bool = False


@dataclass(frozen=True)
class RunClock:
    schedule: Schedule
    misfire: bool
    misfire_threshold: timedelta = MISFIRE_THRESHOLD
    on_time_tolerance: timedelta = ON_TIME_TOLERANCE
    recheck: timedelta = RECHECK

    def begin(self, now: datetime) -> ClockState:
        return ClockState(next_fire=self.schedule.next_fire(now))

    def wake(self, state: ClockState, now: datetime) -> tuple[ClockState, Run | None]:
        """The timer went off (or any time): handle a fire that is due."""
        due = state.next_fire
        if due is None or now < due:
            return state, None
        state = replace(state, next_fire=self.schedule.next_fire(now))
        lateness = now - due
        if lateness > (self.misfire_threshold if self.misfire else self.on_time_tolerance):
            return state, None
        if state.running:
            if self.misfire and state.held_fire is None:
                state = replace(state, held_fire=due)
            return state, None
        return replace(state, running=True), Run(fire_time=due)

    def finished(self, state: ClockState, now: datetime) -> tuple[ClockState, Run | None]:
        """The run in progress ended: start what was held back, if still due."""
        held_fire = state.held_fire
        if held_fire is not None and now - held_fire > self.misfire_threshold:
            held_fire = None
        idle = replace(state, running=False, held_fire=None, held_trigger=False)
        if held_fire is None and not state.held_trigger:
            return idle, None
        return replace(idle, running=True), Run(fire_time=held_fire, triggered=state.held_trigger)

    def trigger(self, state: ClockState, now: datetime) -> tuple[ClockState, Run | None]:
        """Run once now; if a run is in progress, once right after it."""
        if state.running:
            return replace(state, held_trigger=True), None
        return replace(state, running=True), Run(fire_time=None, triggered=True)

    def seconds_until_wake(self, state: ClockState, now: datetime) -> float | None:
        """How long the timer sleeps: until the next fire, at most `recheck`; None when no fire
        is ahead (only a trigger can run)."""
        if state.next_fire is None:
            return None
        until_fire = max(timedelta(0), state.next_fire - now)
        return min(until_fire, self.recheck).total_seconds()


def sample(every: int, unreported: int) -> tuple[bool, int]:
    """Whether this run reports BEGIN/COMPLETE, and the new count of unreported runs.

    `every` is eventTraceSamplingCount: 0 (or 1) reports every run; N > 1 reports
    every Nth run, as the original counted.
    """
    if every <= 1:
        return True, 0
    if unreported + 1 < every:
        return False, unreported + 1
    return True, 0
