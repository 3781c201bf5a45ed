"""The transient producer: one timer per (cron, time zone), fires with their fire times."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.cron import CronError, parse_cron
from controller.producer import TimerKey, TransientProducer, step

pytestmark = pytest.mark.unit


class FakeTime:
    """A clock that only moves when a timer sleeps (optionally oversleeping).

    `elapsed` counts the seconds slept (the monotonic clock); `steps` are wall-clock steps,
    (elapsed seconds at which it happens, by how much), applied as sleeps pass them.
    """

    def __init__(self, start: datetime, steps: Sequence[tuple[float, timedelta]] = ()) -> None:
        self.now = start
        self.elapsed = 0.0
        self.oversleep = 0.0
        self.sleeps: list[float] = []
        self.steps = list(steps)

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.elapsed += seconds + self.oversleep
        self.now += timedelta(seconds=seconds + self.oversleep)
        while self.steps and self.steps[0][0] <= self.elapsed:
            self.now += self.steps.pop(0)[1]
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
    producer.register("ns.c", "0 30 12 * * ?")
    assert producer.upcoming() == datetime(2024, 3, 1, 12, 30, tzinfo=UTC), "the earliest timer"
    producer.deregister("ns.c")
    assert producer.upcoming() == datetime(2024, 3, 1, 13, 0, tzinfo=UTC)
    producer.deregister("ns.a")
    assert producer.timers() == {TimerKey("0 0 * * * ?", "UTC"): ("ns.b",)}
    assert producer.next_fire("ns.a") is None
    producer.deregister("ns.b")
    producer.deregister("ns.b")
    assert producer.timers() == {}
    assert producer.upcoming() is None
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


async def test_a_timer_started_since_an_earlier_time_fires_what_came_after_it() -> None:
    """A new leader starts its timers where its catch-up of missed fires ended, so a fire
    between that moment and the registration is not lost."""
    time = FakeTime(START)
    fires: list[datetime] = []
    done = asyncio.Event()

    async def on_fire(jobs: tuple[str, ...], at: datetime) -> None:
        fires.append(at)
        if len(fires) == 2:
            done.set()

    producer = TransientProducer(on_fire, clock=time.clock, sleep=time.sleep)
    producer.register("ns.a", "* * * * * ?", since=START - timedelta(seconds=1))
    await asyncio.wait_for(done.wait(), 5)
    await producer.close()
    assert fires[:2] == [
        START.replace(microsecond=0),
        START.replace(microsecond=0) + timedelta(seconds=1),
    ]


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


@pytest.mark.parametrize(
    ("early", "planned", "handed"), [(0.0, True, 0.0), (0.2, True, 0.2), (0.2, False, 0.0)]
)
async def test_each_fire_is_announced_a_lead_before_then_handed_early_only_if_planned(
    early: float, planned: bool, handed: float
) -> None:
    time = FakeTime(START)  # 12:00:00.5
    events: list[tuple[str, datetime, datetime]] = []
    enough = asyncio.Event()

    async def on_upcoming(jobs: tuple[str, ...], at: datetime) -> bool:
        events.append(("upcoming", at, time.now))
        return planned

    async def on_fire(jobs: tuple[str, ...], at: datetime) -> None:
        events.append(("fire", at, time.now))
        if len(events) == 4:
            enough.set()

    producer = TransientProducer(
        on_fire,
        clock=time.clock,
        sleep=time.sleep,
        on_upcoming=on_upcoming,
        lead=0.3,
        early=early,
    )
    producer.register("ns.a", "*/2 * * * * ?")
    await asyncio.wait_for(enough.wait(), 5)
    await producer.close()
    fires = [datetime(2024, 3, 1, 12, 0, s, tzinfo=UTC) for s in (2, 4)]
    assert [(kind, at) for kind, at, _ in events[:4]] == [
        ("upcoming", fires[0]),
        ("fire", fires[0]),
        ("upcoming", fires[1]),
        ("fire", fires[1]),
    ]
    for kind, at, when in events:
        if kind == "upcoming":
            assert at - timedelta(seconds=0.3) <= when < at - timedelta(seconds=early)
        else:
            assert when == at - timedelta(seconds=handed), "carrying the fire's own time"


# The wall clock stepped (an NTP correction): no fire is replayed, none waits for a deadline
# computed before the step, and a step forward past a fire is a misfire.


class Recorder:
    """Fires and misfires as they come, with the monotonic time of each fire."""

    def __init__(self, time: FakeTime, fires_wanted: int) -> None:
        self.time = time
        self.fires: list[datetime] = []
        self.fired_after: list[float] = []
        self.misfires: list[datetime] = []
        self.done = asyncio.Event()
        self.wanted = fires_wanted

    async def on_fire(self, jobs: tuple[str, ...], at: datetime) -> None:
        self.fires.append(at)
        self.fired_after.append(self.time.elapsed)
        if len(self.fires) == self.wanted:
            self.done.set()

    def on_misfire(self, key: TimerKey, at: datetime) -> None:
        self.misfires.append(at)

    async def run(self, cron: str) -> None:
        producer = TransientProducer(
            self.on_fire,
            clock=self.time.clock,
            sleep=self.time.sleep,
            on_misfire=self.on_misfire,
            misfire_threshold=5,
        )
        producer.register("ns.a", cron)
        await asyncio.wait_for(self.done.wait(), 10)
        await producer.close()
        assert max(self.time.sleeps) <= 1.0


T12 = datetime(2024, 3, 1, 12, 0, 0, 500000, tzinfo=UTC)


async def test_a_clock_stepped_back_replays_no_fire() -> None:
    # 12:01 fires 59.5 s in; about a second later the clock goes back 5 minutes.
    time = FakeTime(T12, steps=[(60.0, timedelta(minutes=-5))])
    recorder = Recorder(time, fires_wanted=2)
    await recorder.run("0 * * * * ?")
    assert recorder.fires == [
        datetime(2024, 3, 1, 12, 1, tzinfo=UTC),
        datetime(2024, 3, 1, 12, 2, tzinfo=UTC),
    ]
    assert recorder.misfires == []
    # 12:02 comes when the clock shows it again: 6 minutes after 12:01, not 11:57 a minute after.
    assert recorder.fired_after[1] - recorder.fired_after[0] == pytest.approx(6 * 60)


async def test_a_clock_stepped_back_then_forward_does_not_oversleep() -> None:
    # Back 30 s at 10 s in, forward 15 s at 70 s in: 12:01 is then 4.5 s away. A timer that
    # slept out the 30 s computed while the clock was behind would wake 15 s late and skip it.
    time = FakeTime(T12, steps=[(10.0, timedelta(seconds=-30)), (70.0, timedelta(seconds=15))])
    recorder = Recorder(time, fires_wanted=1)
    await recorder.run("0 * * * * ?")
    assert recorder.fires == [datetime(2024, 3, 1, 12, 1, tzinfo=UTC)]
    assert recorder.fired_after == [pytest.approx(74.5)]
    assert recorder.misfires == []


async def test_a_clock_stepped_forward_fires_on_time_not_at_the_old_deadline() -> None:
    # The 13:00 fire is an hour away when the clock jumps 30 minutes ahead, 10 minutes in.
    time = FakeTime(T12, steps=[(600.0, timedelta(minutes=30))])
    recorder = Recorder(time, fires_wanted=1)
    await recorder.run("0 0 13 * * ?")
    assert recorder.fires == [datetime(2024, 3, 1, 13, tzinfo=UTC)]
    assert recorder.fired_after == [pytest.approx(3599.5 - 1800)]
    assert recorder.misfires == []


async def test_a_clock_stepped_forward_past_fires_misfires_once_without_a_burst() -> None:
    # 30 s in the clock jumps an hour ahead, past the fires 12:01 .. 13:00.
    time = FakeTime(T12, steps=[(30.0, timedelta(hours=1))])
    recorder = Recorder(time, fires_wanted=2)
    await recorder.run("0 * * * * ?")
    assert recorder.misfires == [datetime(2024, 3, 1, 12, 1, tzinfo=UTC)]
    assert recorder.fires == [
        datetime(2024, 3, 1, 13, 1, tzinfo=UTC),
        datetime(2024, 3, 1, 13, 2, tzinfo=UTC),
    ]


@given(
    st.sampled_from(["* * * * * ?", "*/7 * * * * ?", "0 * * * * ?", "*/5 * * * *"]),
    st.lists(st.integers(-600_000, 600_000), min_size=1, max_size=80),
    st.sampled_from([0.0, 0.5]),
    st.sampled_from([0.0, 0.25]),
)
def test_step_never_fires_at_or_before_what_it_handled(
    cron: str, moves_ms: list[int], lead: float, early: float
) -> None:
    schedule = parse_cron(cron)
    now = handled = T12
    announced: datetime | None = None
    fired: list[datetime] = []
    for move in moves_ms:
        now += timedelta(milliseconds=move)  # the wall clock, stepping either way
        decision = step(
            schedule,
            handled,
            now,
            threshold=5.0,
            recheck=1.0,
            lead=lead,
            announced=announced,
            early=early,
        )
        assert 0.0 <= decision.sleep <= 1.0
        if decision.upcoming is not None:
            assert decision.upcoming != announced and decision.fire is None
            assert timedelta(0) < decision.upcoming - now <= timedelta(seconds=lead)
            announced = decision.upcoming
        assert decision.handled >= handled
        if decision.fire is not None:
            assert decision.fire > handled and all(decision.fire > f for f in fired)
            assert timedelta(seconds=-early) <= now - decision.fire <= timedelta(seconds=5)
            if decision.fire > now:
                assert lead == 0 or announced == decision.fire, "announced before it is handed"
            fired.append(decision.fire)
        if decision.missed is not None:
            assert now - decision.missed > timedelta(seconds=5)
        if decision.next_fire is not None:
            assert decision.next_fire > decision.handled
        handled = decision.handled
