"""The daemon run clock: fires, overlap, misfire, triggers; and event sampling."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.cron import parse_cron
from controller.executor.clock import ClockState, Run, RunClock, sample

pytestmark = pytest.mark.unit

EVERY_10S = parse_cron("*/10 * * * * ?")
T0 = datetime(2024, 5, 1, 12, 0, 3, tzinfo=UTC)
FIRE1 = datetime(2024, 5, 1, 12, 0, 10, tzinfo=UTC)
FIRE2 = FIRE1 + timedelta(seconds=10)
FIRE3 = FIRE1 + timedelta(seconds=20)
MS = timedelta(milliseconds=1)


def clock(misfire: bool) -> RunClock:
    return RunClock(schedule=EVERY_10S, misfire=misfire)


def test_begin_points_at_the_next_fire() -> None:
    assert clock(False).begin(T0) == ClockState(next_fire=FIRE1)


def test_an_early_wake_does_nothing() -> None:
    c = clock(False)
    state = c.begin(T0)
    assert c.wake(state, FIRE1 - MS) == (state, None)


def test_a_fire_on_time_starts_a_run_and_moves_on() -> None:
    c = clock(False)
    state, run = c.wake(c.begin(T0), FIRE1 + 5 * MS)
    assert run == Run(fire_time=FIRE1)
    assert state == ClockState(next_fire=FIRE2, running=True)


def test_without_misfire_a_fire_during_a_run_is_dropped() -> None:
    c = clock(False)
    state, _ = c.wake(c.begin(T0), FIRE1)
    state, run = c.wake(state, FIRE2)
    assert run is None
    assert state == ClockState(next_fire=FIRE3, running=True)
    assert c.finished(state, FIRE2 + timedelta(seconds=3)) == (ClockState(next_fire=FIRE3), None)


def test_with_misfire_fires_during_a_run_coalesce_into_one_run_after_it() -> None:
    c = clock(True)
    state, _ = c.wake(c.begin(T0), FIRE1)
    state, run = c.wake(state, FIRE2)
    assert run is None
    state, run = c.wake(state, FIRE3)
    assert run is None
    assert state.held_fire == FIRE2
    end = FIRE3 + timedelta(seconds=1)
    state, run = c.finished(state, end)
    assert run == Run(fire_time=FIRE2)
    assert state.running and state.held_fire is None
    state, run = c.finished(state, end + timedelta(seconds=1))
    assert run is None and not state.running


def test_a_held_fire_older_than_the_threshold_is_dropped() -> None:
    c = clock(True)
    state, _ = c.wake(c.begin(T0), FIRE1)
    state, _ = c.wake(state, FIRE2)
    state, run = c.finished(state, FIRE2 + timedelta(seconds=61))
    assert run is None
    assert not state.running and state.held_fire is None


def test_a_late_wake_without_misfire_is_dropped_and_not_replayed() -> None:
    c = clock(False)
    late = FIRE1 + timedelta(seconds=25)
    state, run = c.wake(c.begin(T0), late)
    assert run is None
    assert state == ClockState(next_fire=FIRE1 + timedelta(seconds=30))


def test_a_late_wake_with_misfire_runs_within_the_threshold_only() -> None:
    c = clock(True)
    state, run = c.wake(c.begin(T0), FIRE1 + timedelta(seconds=25))
    assert run == Run(fire_time=FIRE1)
    assert state.next_fire == FIRE1 + timedelta(seconds=30)
    state, run = c.wake(c.begin(T0), FIRE1 + timedelta(seconds=61))
    assert run is None
    assert not state.running


def test_small_timer_jitter_is_on_time() -> None:
    c = clock(False)
    _, run = c.wake(c.begin(T0), FIRE1 + timedelta(milliseconds=900))
    assert run == Run(fire_time=FIRE1)


def test_a_trigger_runs_now_or_right_after_the_run_in_progress() -> None:
    c = clock(False)
    state, run = c.trigger(c.begin(T0), T0)
    assert run == Run(fire_time=None, triggered=True)
    state, run = c.trigger(state, T0 + MS)
    assert run is None and state.held_trigger
    state, run = c.finished(state, T0 + timedelta(seconds=100))
    assert run == Run(fire_time=None, triggered=True)
    assert state.running and not state.held_trigger


def test_a_held_trigger_and_a_held_fire_make_one_run() -> None:
    c = clock(True)
    state, _ = c.wake(c.begin(T0), FIRE1)
    state, _ = c.wake(state, FIRE2)
    state, _ = c.trigger(state, FIRE2 + MS)
    state, run = c.finished(state, FIRE2 + timedelta(seconds=1))
    assert run == Run(fire_time=FIRE2, triggered=True)
    assert state == ClockState(next_fire=FIRE3, running=True)


def test_a_cron_with_no_fire_left_only_waits_for_triggers() -> None:
    c = RunClock(schedule=parse_cron("0 0 0 1 1 ? 2020"), misfire=False)
    state = c.begin(T0)
    assert state.next_fire is None
    assert c.seconds_until_wake(state, T0) is None
    assert c.wake(state, T0) == (state, None)
    assert c.trigger(state, T0)[1] == Run(fire_time=None, triggered=True)


def test_seconds_until_wake_is_until_the_fire_at_most_the_recheck() -> None:
    c = clock(False)
    state = c.begin(T0)
    assert c.seconds_until_wake(state, T0) == 1.0
    assert c.seconds_until_wake(state, FIRE1 - 300 * MS) == 0.3
    assert c.seconds_until_wake(state, FIRE1 + MS) == 0.0
    patient = RunClock(schedule=EVERY_10S, misfire=False, recheck=timedelta(seconds=30))
    assert patient.seconds_until_wake(state, T0) == 7.0


def test_time_zones_come_from_the_schedule() -> None:
    c = RunClock(schedule=parse_cron("0 0 9 * * ?", "Asia/Shanghai"), misfire=False)
    assert c.begin(T0).next_fire == datetime(2024, 5, 2, 1, 0, 0, tzinfo=UTC)


_steps = st.lists(
    st.tuples(st.sampled_from(["wake", "finish", "trigger"]), st.integers(0, 90_000)),
    max_size=60,
)


@given(misfire=st.booleans(), steps=_steps)
def test_runs_of_one_task_never_overlap(misfire: bool, steps: list[tuple[str, int]]) -> None:
    c = clock(misfire)
    now = T0
    state = c.begin(now)
    active = 0
    for action, advance_ms in steps:
        now += timedelta(milliseconds=advance_ms)
        if action == "wake":
            state, run = c.wake(state, now)
        elif action == "trigger":
            state, run = c.trigger(state, now)
        elif active:
            active -= 1
            state, run = c.finished(state, now)
        else:
            continue
        if run is not None:
            active += 1
        assert active <= 1
        assert state.running == (active == 1)


# The wall clock stepped (an NTP correction).


def simulate(
    c: RunClock, start: datetime, steps: Sequence[tuple[float, timedelta]], seconds: float
) -> list[tuple[float, Run]]:
    """Drive the clock as the task supervisor does, for `seconds` of monotonic time: sleep
    what `seconds_until_wake` says, then wake; every run ends at once. `steps` are wall-clock
    steps (monotonic seconds at which it happens, by how much). Returns (when, run) pairs."""
    elapsed, wall, pending = 0.0, start, list(steps)
    state = c.begin(wall)
    runs: list[tuple[float, Run]] = []
    while True:
        delay = c.seconds_until_wake(state, wall)
        assert delay is not None and 0.0 <= delay <= c.recheck.total_seconds()
        elapsed += delay
        if elapsed > seconds:
            return runs
        wall += timedelta(seconds=delay)
        while pending and pending[0][0] <= elapsed:
            wall += pending.pop(0)[1]
        state, run = c.wake(state, wall)
        if run is not None:
            runs.append((elapsed, run))
            state, _ = c.finished(state, wall)


EVERY_MINUTE = parse_cron("0 * * * * ?")


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2024, 5, 1, hour, minute, second, tzinfo=UTC)


def test_a_clock_stepped_back_replays_no_run() -> None:
    # 12:00:10 runs 7 s in; 0.5 s later the clock goes back a minute.
    runs = simulate(clock(False), T0, [(7.5, timedelta(minutes=-1))], seconds=100)
    assert [run.fire_time for _, run in runs] == [
        FIRE1,
        FIRE2,
        FIRE3,
        FIRE3 + timedelta(seconds=10),
    ]
    # 12:00:20 runs when the clock shows it again, 70 s after 12:00:10.
    assert [when for when, _ in runs] == [7.0, 77.0, 87.0, 97.0]


def test_a_clock_stepped_back_then_forward_is_not_slept_through() -> None:
    # Back 30 s at 1 s in, forward 20 s at 60 s in: 12:01:00 is then 7 s away. A timer that
    # slept out the 30 s computed while the clock was behind would wake 20 s late.
    steps = [(1.0, timedelta(seconds=-30)), (60.0, timedelta(seconds=20))]
    for misfire in (False, True):
        c = RunClock(schedule=EVERY_MINUTE, misfire=misfire)
        runs = simulate(c, T0, steps, seconds=80)
        assert runs == [(67.0, Run(fire_time=at(12, 1)))]


def test_a_clock_stepped_forward_runs_on_time_not_at_the_old_deadline() -> None:
    # 13:00 is an hour away when the clock jumps 30 minutes ahead, 10 minutes in.
    c = RunClock(schedule=parse_cron("0 0 13 * * ?"), misfire=False)
    runs = simulate(c, at(12, 0), [(600.0, timedelta(minutes=30))], seconds=2000)
    assert runs == [(1800.0, Run(fire_time=at(13, 0)))]


def test_a_clock_stepped_forward_past_fires_follows_the_misfire_rule() -> None:
    # 12:00:10 runs 7 s in; 1 s later the clock jumps 45 s, past 12:00:20 .. 12:00:50.
    steps = [(8.0, timedelta(seconds=45))]
    on = simulate(RunClock(schedule=EVERY_10S, misfire=True), T0, steps, seconds=13)
    # misfire on: 12:00:20 is 36 s late, within 60 s, so it runs once; the rest are skipped
    assert [run.fire_time for _, run in on] == [FIRE1, FIRE2, at(12, 1)]
    off = simulate(RunClock(schedule=EVERY_10S, misfire=False), T0, steps, seconds=13)
    assert [run.fire_time for _, run in off] == [FIRE1, at(12, 1)]


@given(
    misfire=st.booleans(),
    moves=st.lists(st.tuples(st.integers(-90_000, 90_000), st.booleans()), max_size=60),
)
def test_fire_times_only_move_forward_whatever_the_wall_clock_does(
    misfire: bool, moves: list[tuple[int, bool]]
) -> None:
    c = clock(misfire)
    now = T0
    state = c.begin(now)
    fired: list[datetime] = []
    for move_ms, run_ends in moves:
        now += timedelta(milliseconds=move_ms)  # either way
        state, run = c.wake(state, now)
        if run_ends and state.running:
            state, held = c.finished(state, now)
            run = run or held
        if run is not None and run.fire_time is not None:
            fired.append(run.fire_time)
        wait = c.seconds_until_wake(state, now)
        assert wait is not None and 0.0 <= wait <= 1.0
    assert all(earlier < later for earlier, later in pairwise(fired))


def test_sampling_zero_or_one_reports_every_run() -> None:
    for every in (0, 1):
        assert [sample(every, 0) for _ in range(3)] == [(True, 0)] * 3


def test_sampling_n_reports_every_nth_run() -> None:
    reports = []
    unreported = 0
    for _ in range(7):
        report, unreported = sample(3, unreported)
        reports.append(report)
    assert reports == [False, False, True, False, False, True, False]
