"""The woken loop shared by the launch cycle and the app roll-out: batching, and a hurry
that cuts a batching window short."""

from __future__ import annotations

import asyncio

import pytest

from controller.mesos.woken import run_when_woken

pytestmark = pytest.mark.unit


async def test_a_hurry_cuts_a_batching_window_short_and_a_failed_step_does_not_end_the_loop() -> (
    None
):
    wake, hurry = asyncio.Event(), asyncio.Event()
    steps: list[int] = []
    stepped = asyncio.Condition()

    async def step() -> None:
        steps.append(len(steps))
        async with stepped:
            stepped.notify_all()
        if len(steps) == 1:
            raise RuntimeError("the first step fails")

    failures: list[None] = []
    loop = asyncio.create_task(
        run_when_woken(
            wake,
            step,
            what="test loop",
            delay=lambda: 0.0 if hurry.is_set() else 3600.0,
            failed=lambda: failures.append(None),
            hurry=hurry,
        )
    )
    try:
        wake.set()
        await asyncio.sleep(0.05)
        assert steps == [], "still in its hour-long batching window"
        hurry.set()
        async with stepped:
            await stepped.wait_for(lambda: len(steps) == 1)
        assert failures == [None]
        wake.set()  # the hurry is still set: no window this time
        async with stepped:
            await stepped.wait_for(lambda: len(steps) == 2)
        assert not loop.done()
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
