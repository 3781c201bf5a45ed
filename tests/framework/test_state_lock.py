"""The engine's state lock: each lane in arrival order, a cron fire's work ahead of a
change, a change ahead of bulk work, never more than a bounded run of grants ahead of
a lane that waits, and waiters cancelled at any point leave the lock usable."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import pytest

from controller.mesos.state_lock import StateLock

pytestmark = pytest.mark.unit


async def granted_in_order(
    lock: StateLock, queued: list[tuple[str, Callable[[], AbstractAsyncContextManager[None]]]]
) -> list[str]:
    """Hold `lock`, queue every (name, way of taking it) in turn, let go: the names in
    the order they got it."""
    order: list[str] = []

    async def take(name: str, way: Callable[[], AbstractAsyncContextManager[None]]) -> None:
        async with way():
            order.append(name)
            await asyncio.sleep(0)

    async with lock:
        tasks = []
        for name, way in queued:
            tasks.append(asyncio.create_task(take(name, way)))
            await asyncio.sleep(0)  # queued in this order
    await asyncio.gather(*tasks)
    return order


async def test_ordinary_work_gets_the_lock_in_the_order_it_asked() -> None:
    lock = StateLock()
    order = await granted_in_order(lock, [(n, lambda: lock) for n in "abcd"])
    assert order == list("abcd")


async def test_a_fire_goes_ahead_of_ordinary_work_already_waiting_but_waits_for_the_holder() -> (
    None
):
    lock = StateLock()
    held: list[str] = []

    async def fire() -> None:
        async with lock.first():
            held.append("fire")

    async with lock:
        waiting = asyncio.create_task(fire())
        await asyncio.sleep(0)
        assert held == [] and not waiting.done(), "the holder keeps the lock"
    await waiting
    assert held == ["fire"]

    order = await granted_in_order(
        lock, [("status", lambda: lock), ("cycle", lambda: lock), ("fire", lock.first)]
    )
    assert order == ["fire", "status", "cycle"]


async def test_ordinary_work_gets_a_turn_after_a_bounded_run_of_fires() -> None:
    lock = StateLock(passed_at_most=2)
    queued = [("apply", lambda: lock)] + [(f"fire{i}", lock.first) for i in range(5)]
    order = await granted_in_order(lock, queued)
    assert order == ["fire0", "fire1", "apply", "fire2", "fire3", "fire4"]


async def test_a_change_goes_ahead_of_bulk_work_and_after_a_fire() -> None:
    lock = StateLock(passed_at_most=5)
    order = await granted_in_order(
        lock,
        [
            ("status", lock.last),
            ("cycle", lock.last),
            ("apply", lambda: lock),
            ("fire", lock.first),
            ("delete", lambda: lock),
        ],
    )
    assert order == ["fire", "apply", "delete", "status", "cycle"]


async def test_bulk_work_gets_a_turn_after_a_bounded_run_of_changes_and_fires() -> None:
    lock = StateLock(passed_at_most=2)
    queued = [("status", lock.last)] + [(f"apply{i}", lambda: lock) for i in range(3)]
    queued += [("fire", lock.first)]
    order = await granted_in_order(lock, queued)
    assert order == ["fire", "apply0", "status", "apply1", "apply2"]


async def test_of_two_lanes_passed_over_the_earlier_goes_first() -> None:
    lock = StateLock(passed_at_most=2)
    queued = [("status", lock.last), ("apply", lambda: lock)]
    queued += [(f"fire{i}", lock.first) for i in range(4)]
    order = await granted_in_order(lock, queued)
    # After two fires both the change and the bulk work were passed over twice; the
    # change goes, then the bulk work (passed over three times by then).
    assert order == ["fire0", "fire1", "apply", "status", "fire2", "fire3"]


async def test_a_lane_emptied_by_cancellation_starts_its_count_afresh() -> None:
    lock = StateLock(passed_at_most=2)
    order: list[str] = []
    holding, let_go = asyncio.Event(), asyncio.Event()

    async def take(name: str, way: Callable[[], AbstractAsyncContextManager[None]]) -> None:
        async with way():
            order.append(name)
            if name == "fire1":
                holding.set()
                await let_go.wait()

    async with lock:
        gone = asyncio.create_task(take("gone", lock.last))
        await asyncio.sleep(0)
        fires = [asyncio.create_task(take(f"fire{i}", lock.first)) for i in range(2)]
        await asyncio.sleep(0)
    await holding.wait()  # fire1 holds: the bulk waiter was passed over twice
    assert order == ["fire0", "fire1"]
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    later = [asyncio.create_task(take("status", lock.last))]
    await asyncio.sleep(0)
    later += [asyncio.create_task(take(f"fire{i}", lock.first)) for i in (2, 3)]
    await asyncio.sleep(0)
    let_go.set()
    await asyncio.gather(*fires, *later)
    assert order == ["fire0", "fire1", "fire2", "fire3", "status"]


async def test_a_waiter_cancelled_while_it_waits_is_passed_over() -> None:
    lock = StateLock()
    got: list[str] = []

    async def take(name: str) -> None:
        async with lock:
            got.append(name)

    async with lock:
        gone = asyncio.create_task(take("gone"))
        stays = asyncio.create_task(take("stays"))
        await asyncio.sleep(0)
        gone.cancel()
        await asyncio.sleep(0)
    await stays
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert got == ["stays"]
    assert not lock.locked()


async def test_a_waiter_cancelled_as_it_is_handed_the_lock_passes_it_on() -> None:
    lock = StateLock()
    got: list[str] = []

    async def take(name: str) -> None:
        async with lock.first():
            got.append(name)

    await lock.__aenter__()
    handed = asyncio.create_task(take("handed"))
    after = asyncio.create_task(take("after"))
    await asyncio.sleep(0)
    await lock.__aexit__(None, None, None)  # hands it to `handed`, which has not run yet
    handed.cancel()
    await after
    with pytest.raises(asyncio.CancelledError):
        await handed
    assert got == ["after"]
    assert not lock.locked()


async def test_the_lock_cannot_be_let_go_unheld_nor_made_without_a_turn_for_later_lanes() -> None:
    with pytest.raises(RuntimeError, match="not held"):
        await StateLock().__aexit__(None, None, None)
    with pytest.raises(ValueError, match="at least 1"):
        StateLock(passed_at_most=0)
