"""The transient producer: cron timers that put transient jobs into the ready queue.

One asyncio timer per distinct (cron expression, time zone), holding the keys of every
job registered with it — thousands of jobs commonly share a handful of crons. A timer
sleeps until its next fire time (no polling loop), then hands all its jobs and the
fire time to `on_fire` in one call; the fire time travels with the run (it is part of
the run's identity and of the fire-to-launch skew metric).

Misfires follow Quartz's "do nothing" instruction: a fire noticed more than
`misfire_threshold` seconds late (the loop was blocked, the process was suspended) is
skipped, and the timer continues with the next fire time after now. Whether pending
runs accumulate is the ready queue's business (the job's misfire flag), not this one.
docs/semantics.md#cron-fires-and-misfires states both rules.

Each leadership term's `controller.mesos.engine.FrameworkEngine` owns one: it registers
every scheduled transient job and deregisters it on unschedule.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from controller.cron import CronSchedule, parse_cron

log = logging.getLogger(__name__)

FireHandler = Callable[[tuple[str, ...], datetime], Awaitable[None]]
Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, order=True)
class TimerKey:
    cron: str
    time_zone: str


@dataclass
class _Timer:
    key: TimerKey
    schedule: CronSchedule
    jobs: dict[str, None] = field(default_factory=dict)
    next_fire: datetime | None = None
    task: asyncio.Task[None] | None = None


class TransientProducer:
    """Cron timers for transient jobs; `register`/`deregister` are idempotent."""

    def __init__(
        self,
        on_fire: FireHandler,
        *,
        misfire_threshold: float = 5.0,
        clock: Clock = utc_now,
        sleep: Sleep = asyncio.sleep,
        on_misfire: Callable[[TimerKey, datetime], None] | None = None,
    ) -> None:
        self._on_fire = on_fire
        self._threshold = misfire_threshold
        self._clock = clock
        self._sleep = sleep
        self._on_misfire = on_misfire
        self._timers: dict[TimerKey, _Timer] = {}
        self._job_timer: dict[str, TimerKey] = {}
        self._closed = False

    # registration ---------------------------------------------------------------------
    def register(self, job_key: str, cron: str, time_zone: str = "UTC") -> None:
        """Fire `job_key` on `cron` in `time_zone`; raises `CronError` for a bad cron."""
        if self._closed:
            raise RuntimeError("the transient producer is closed")
        key = TimerKey(cron, time_zone)
        if self._job_timer.get(job_key) == key:
            return
        timer = self._timers.get(key)
        if timer is None:
            schedule = parse_cron(cron, time_zone)
            timer = _Timer(key, schedule, next_fire=schedule.next_fire(self._clock()))
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

    def next_fire(self, job_key: str) -> datetime | None:
        key = self._job_timer.get(job_key)
        return None if key is None else self._timers[key].next_fire

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
        after = self._clock()
        while True:
            fire = timer.schedule.next_fire(after)
            timer.next_fire = fire
            if fire is None:
                log.info(
                    "cron %s [%s] has no further fire time", timer.key.cron, timer.key.time_zone
                )
                return
            while (delay := (fire - self._clock()).total_seconds()) > 0:
                await self._sleep(delay)
            now = self._clock()
            if (now - fire).total_seconds() > self._threshold:
                log.warning(
                    "cron %s [%s] misfired at %s (noticed %s); skipping to the next fire",
                    timer.key.cron,
                    timer.key.time_zone,
                    fire.isoformat(),
                    now.isoformat(),
                )
                if self._on_misfire is not None:
                    self._on_misfire(timer.key, fire)
                after = now
                continue
            jobs = tuple(timer.jobs)
            try:
                await self._on_fire(jobs, fire)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("handling the fire of cron %s at %s failed", timer.key, fire)
            after = fire
