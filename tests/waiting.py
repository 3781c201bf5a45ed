"""Waiting in tests: poll until something holds, or check that it keeps holding.

Every test that waits on a condition it cannot be notified of (a file a job writes, a
node in ZooKeeper, an object's status on the API server, the emulator's state) uses
these, synchronous or from a coroutine. `wait_for` returns the value it waited for, and
a timeout fails naming what was awaited and the last value seen; `holds` checks a value
for a while ("nothing more happens") and fails with the value that broke it.

The async forms run `check` on the event loop, or with `in_thread=True` in a worker
thread: a blocking call (an HTTP request) must not stall the loop the code under test
runs on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")

# Long enough for a loaded 2-core machine; a test that waits longer says so.
WAIT = 30.0
INTERVAL = 0.1


# Without `until`, the value waited for is truthy, so never None.
@overload
def wait_for(
    check: Callable[[], T | None],
    *,
    what: str = ...,
    timeout: float = ...,
    interval: float = ...,
) -> T: ...


@overload
def wait_for(
    check: Callable[[], T],
    until: Callable[[T], object],
    *,
    what: str = ...,
    timeout: float = ...,
    interval: float = ...,
) -> T: ...


def wait_for(
    check: Callable[[], Any],
    until: Callable[[Any], object] = bool,
    *,
    what: str = "a condition",
    timeout: float = WAIT,
    interval: float = INTERVAL,
) -> Any:
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


async def _value(check: Callable[[], T], in_thread: bool) -> T:
    return await asyncio.to_thread(check) if in_thread else check()


@overload
async def async_wait_for(
    check: Callable[[], T | None],
    *,
    what: str = ...,
    timeout: float = ...,  # noqa: ASYNC109
    interval: float = ...,
    in_thread: bool = ...,
) -> T: ...


@overload
async def async_wait_for(
    check: Callable[[], T],
    until: Callable[[T], object],
    *,
    what: str = ...,
    timeout: float = ...,  # noqa: ASYNC109
    interval: float = ...,
    in_thread: bool = ...,
) -> T: ...


async def async_wait_for(
    check: Callable[[], Any],
    until: Callable[[Any], object] = bool,
    *,
    what: str = "a condition",
    # The same parameters as `wait_for`; asyncio.timeout would lose the last value seen.
    timeout: float = WAIT,  # noqa: ASYNC109
    interval: float = INTERVAL,
    in_thread: bool = False,
) -> Any:
    """`wait_for` from a coroutine: the event loop runs between polls."""
    deadline = time.monotonic() + timeout
    value = await _value(check, in_thread)
    while not until(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {value!r}")
        await asyncio.sleep(interval)
        value = await _value(check, in_thread)
    return value


async def async_holds(
    check: Callable[[], T],
    predicate: Callable[[T], object] = bool,
    *,
    seconds: float,
    what: str,
    interval: float = INTERVAL,
    in_thread: bool = False,
) -> None:
    """`holds` from a coroutine: the event loop runs between checks."""
    deadline = time.monotonic() + seconds
    while True:
        value = await _value(check, in_thread)
        assert predicate(value), f"{what} no longer holds: {value!r}"
        if time.monotonic() >= deadline:
            return
        await asyncio.sleep(interval)
