"""Waiting in tests: poll until something holds, or check that it keeps holding.

Every test that waits on a condition it cannot be notified of (a file a job writes, a
node in ZooKeeper, an object's status on the API server, the emulator's state) uses
these, synchronous or from a coroutine. `wait_for` returns the value it waited for, and
a timeout fails naming what was awaited and the last value seen; `holds` checks a value
for a while ("nothing more happens") and fails with the value that broke it.

`check` may return an awaitable in the async forms (e.g. `asyncio.to_thread(...)` for a
blocking call that must not stall the loop the code under test runs on).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

# Long enough for a loaded 2-core machine; a test that waits longer says so.
WAIT = 30.0
INTERVAL = 0.1


def wait_for(
    check: Callable[[], T],
    until: Callable[[T], object] = bool,
    *,
    what: str = "a condition",
    timeout: float = WAIT,
    interval: float = INTERVAL,
) -> T:
    """Poll `check()` until `until(value)` is true (by default: until the value is
    truthy); return that value."""
    deadline = time.monotonic() + timeout
    value = check()
    while not until(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {value!r}")
        time.sleep(interval)
        value = check()
    return value


def holds(
    check: Callable[[], T],
    predicate: Callable[[T], object] = bool,
    *,
    seconds: float,
    what: str,
    interval: float = INTERVAL,
) -> None:
    """Assert that `predicate(check())` stays true for `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        assert predicate(value), f"{what} no longer holds: {value!r}"
        if time.monotonic() >= deadline:
            return
        time.sleep(interval)


async def _value(check: Callable[[], T | Awaitable[T]]) -> T:
    value = check()
    if inspect.isawaitable(value):
        return await value
    return value


async def async_wait_for(
    check: Callable[[], T | Awaitable[T]],
    until: Callable[[T], object] = bool,
    *,
    what: str = "a condition",
    # The same parameters as `wait_for`; asyncio.timeout would lose the last value seen.
    timeout: float = WAIT,  # noqa: ASYNC109
    interval: float = INTERVAL,
) -> T:
    """`wait_for` from a coroutine: the event loop runs between polls."""
    deadline = time.monotonic() + timeout
    value = await _value(check)
    while not until(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {value!r}")
        await asyncio.sleep(interval)
        value = await _value(check)
    return value


async def async_holds(
    check: Callable[[], T | Awaitable[T]],
    predicate: Callable[[T], object] = bool,
    *,
    seconds: float,
    what: str,
    interval: float = INTERVAL,
) -> None:
    """`holds` from a coroutine: the event loop runs between checks."""
    deadline = time.monotonic() + seconds
    while True:
        value = await _value(check)
        assert predicate(value), f"{what} no longer holds: {value!r}"
        if time.monotonic() >= deadline:
            return
        await asyncio.sleep(interval)
