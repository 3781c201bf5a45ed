"""The transient producer: one timer per (cron, time zone), fires with their fire times."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from controller.cron import CronError
from controller.producer import TimerKey, TransientProducer


class FakeTime:
    """A clock that only moves when a timer sleeps (optionally oversleeping)."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.oversleep = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds + self.oversleep)
        await asyncio.sleep(0)


START = datetime(2024, 3, 1, 12, 0, 0, 500000, tzinfo=UTC)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_one_timer_per_cron_and_zone_fires_all_its_jobs() -> None:
    time = FakeTime(START)
    fires: list[tuple[tuple[str, ...], datetime]] = []
    enough = asyncio.Event()

    async def on_fire(jobs: tuple[str, ...], at: datetime) -> None:
        fires.append((jobs, at))
        if len(fires) >= 6:
            enough.set()

    producer = TransientProducer(on_fire, clock=time.clock, sleep=time.sleep)
    producer.register("ns.a", "*/2 * * * * ?")
    producer.register("ns.b", "*/2 * * * * ?")
    producer.register("ns.c", "*/2 * * * * ?", "Asia/Tokyo")
    producer.register("ns.a", "*/2 * * * * ?")
    assert producer.timers() == {
        TimerKey("*/2 * * * * ?", "UTC"): ("ns.a", "ns.b"),
        TimerKey("*/2 * * * * ?", "Asia/Tokyo"): ("ns.c",),
    }
    await asyncio.wait_for(enough.wait(), 5)
    await producer.close()
    assert {jobs for jobs, _ in fires} == {("ns.a", "ns.b"), ("ns.c",)}
    utc = [at for jobs, at in fires if jobs == ("ns.a", "ns.b")]
    assert utc[0] == datetime(2024, 3, 1, 12, 0, 2, tzinfo=UTC)
    assert all(later - earlier == timedelta(seconds=2) for earlier, later in pairwise(utc))


async def test_next_fire_and_deregister_drops_an_empty_timer() -> None:
    time = FakeTime(START)
    blocked = asyncio.Event()

    async def on_fire(jobs: tuple[str, ...], at: datetime) -> None:
        await blocked.wait()

    producer = TransientProducer(on_fire, clock=time.clock, sleep=time.sleep)
    producer.register("ns.a", "0 0 * * * ?")
    assert producer.next_fire("ns.a") == datetime(2024, 3, 1, 13, 0, tzinfo=UTC)
    producer.register("ns.b", "0 0 * * * ?")
    await settle()
    assert producer.next_fire("ns.a") == datetime(2024, 3, 1, 13, 0, tzinfo=UTC)
    producer.deregister("ns.a")
    assert producer.timers() == {TimerKey("0 0 * * * ?", "UTC"): ("ns.b",)}
    assert producer.next_fire("ns.a") is None
    producer.deregister("ns.b")
    producer.deregister("ns.b")
    assert producer.timers() == {}
    await producer.close()


async def test_changing_a_jobs_cron_moves_it_to_another_timer() -> None:
    time = FakeTime(START)

    async def on_fire(jobs: tuple[str, ...], at: datetime) -> None:
        await asyncio.Event().wait()

    producer = TransientProducer(on_fire, clock=time.clock, sleep=time.sleep)
    producer.register("ns.a", "0 * * * * ?")
    producer.register("ns.a", "30 * * * * ?")
    assert producer.timers() == {TimerKey("30 * * * * ?", "UTC"): ("ns.a",)}
    assert producer.is_registered("ns.a")
    await producer.close()


async def test_a_bad_cron_is_refused_and_nothing_is_registered() -> None:
    async def on_fire(jobs: tuple[str, ...], at: datetime) -> None:
        raise AssertionError("never fires")

    producer = TransientProducer(on_fire)
    with pytest.raises(CronError):
        producer.register("ns.a", "not a cron")
    assert producer.timers() == {} and not producer.is_registered("ns.a")
    await producer.close()


async def test_misfired_fires_are_skipped_not_replayed() -> None:
    time = FakeTime(START)
    time.oversleep = 30.0  # every sleep wakes 30 s late: far past the 5 s threshold
    fires: list[datetime] = []
    misfires: list[datetime] = []
    done = asyncio.Event()

    async def on_fire(jobs: tuple[str, ...], at: datetime) -> None:
        fires.append(at)

    def on_misfire(key: TimerKey, at: datetime) -> None:
        misfires.append(at)
        if len(misfires) == 3:
            done.set()

    producer = TransientProducer(
        on_fire, clock=time.clock, sleep=time.sleep, on_misfire=on_misfire, misfire_threshold=5
    )
    producer.register("ns.a", "* * * * * ?")
    await asyncio.wait_for(done.wait(), 5)
    await producer.close()
    assert fires == []
    # each skip continues from "now", not from the missed fire: no burst of catch-up fires
    assert misfires[1] - misfires[0] > timedelta(seconds=29)


async def test_a_failing_handler_does_not_stop_the_timer() -> None:
    time = FakeTime(START)
    calls: list[datetime] = []
    done = asyncio.Event()

    async def on_fire(jobs: tuple[str, ...], at: datetime) -> None:
        calls.append(at)
        if len(calls) == 3:
            done.set()
        raise RuntimeError("ZooKeeper unavailable")

    producer = TransientProducer(on_fire, clock=time.clock, sleep=time.sleep)
    producer.register("ns.a", "* * * * * ?")
    await asyncio.wait_for(done.wait(), 5)
    await producer.close()
    assert calls[1] - calls[0] == timedelta(seconds=1)


async def test_real_clock_fires_a_seconds_cron() -> None:
    fired = asyncio.Event()
    seen: list[datetime] = []

    async def on_fire(jobs: tuple[str, ...], at: datetime) -> None:
        seen.append(at)
        fired.set()

    producer = TransientProducer(on_fire)
    producer.register("ns.a", "* * * * * ?")
    await asyncio.wait_for(fired.wait(), 5)
    await producer.close()
    assert seen[0].microsecond == 0
    assert datetime.now(UTC) - seen[0] < timedelta(seconds=5)
