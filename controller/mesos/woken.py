"""A loop that does one step each time it is woken, after an optional batching delay.

The launch cycle and the app roll-out each run one: `changed()` sets the event, the
loop waits `delay()` seconds so that what arrives together is handled together (cut
short when `hurry` is set: something that must not wait arrived meanwhile), then runs
its step. A failed step is logged (and `failed` told), never ends the loop: the
next wake tries again. Each term's background runs these loops until the term ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


def _nothing() -> None:
    pass


async def run_when_woken(
    wake: asyncio.Event,
    step: Callable[[], Awaitable[None]],
    *,
    what: str,
    delay: Callable[[], float],
    failed: Callable[[], None] = _nothing,
    hurry: asyncio.Event | None = None,
) -> None:
    while True:
        await wake.wait()
        if (seconds := delay()) > 0:
            if hurry is None:
                await asyncio.sleep(seconds)
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(seconds):
                        await hurry.wait()
        wake.clear()
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception:
            failed()
            log.exception("%s failed; retrying on the next change", what)
