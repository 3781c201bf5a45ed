"""The agent's task status update manager, emulated.

Per task, status updates form a stream: only the oldest unacknowledged update
is outstanding at the master; it is resent with exponential backoff
(10 s doubling up to 10 min in Mesos, configurable here) until the scheduler's
acknowledgement comes back, then the next one goes out. A terminal update,
once acknowledged, closes the stream. Used by each agent.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from devcluster.mesos.protocol import JSON, is_terminal, value


@dataclass
class _Stream:
    pending: deque[JSON] = field(default_factory=deque)
    seen_uuids: set[str] = field(default_factory=set)
    backoff: float = 0.0
    timer: asyncio.TimerHandle | None = None


class StatusUpdateManager:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        send: Callable[[str, JSON], None],
        retry_initial: float,
        retry_max: float,
    ) -> None:
        self._loop = loop
        self._send = send
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._streams: dict[tuple[str, str], _Stream] = {}

    def seen(self, framework_id: str, status: JSON) -> bool:
        stream = self._streams.get((framework_id, value(status["task_id"]) or ""))
        return stream is not None and status.get("uuid") in stream.seen_uuids

    def add(self, framework_id: str, status: JSON) -> None:
        key = (framework_id, value(status["task_id"]) or "")
        stream = self._streams.setdefault(key, _Stream())
        stream.seen_uuids.add(str(status.get("uuid")))
        stream.pending.append(status)
        if len(stream.pending) == 1:
            self._transmit(key, stream, reset=True)

    def acknowledge(self, framework_id: str, task_id: str, uuid: str) -> JSON | None:
        """Pop the outstanding update if `uuid` matches it; returns it, else None."""
        key = (framework_id, task_id)
        stream = self._streams.get(key)
        if stream is None or not stream.pending or stream.pending[0].get("uuid") != uuid:
            return None
        acked = stream.pending.popleft()
        if stream.timer is not None:
            stream.timer.cancel()
            stream.timer = None
        if stream.pending:
            self._transmit(key, stream, reset=True)
        elif is_terminal(str(acked["state"])):
            del self._streams[key]
        return acked

    def outstanding_state(self, framework_id: str, task_id: str) -> str | None:
        stream = self._streams.get((framework_id, task_id))
        if stream is None or not stream.pending:
            return None
        return str(stream.pending[0]["state"])

    def pending(self) -> dict[tuple[str, str], list[str]]:
        """The states of the updates not yet acknowledged, per (framework, task)."""
        return {
            key: [str(status["state"]) for status in stream.pending]
            for key, stream in self._streams.items()
            if stream.pending
        }

    def has_pending(self, framework_id: str, task_id: str) -> bool:
        stream = self._streams.get((framework_id, task_id))
        return stream is not None and bool(stream.pending)

    def flush(self) -> None:
        """Resend every outstanding update now (after (re-)registering with a master)."""
        for key, stream in self._streams.items():
            if stream.pending:
                self._transmit(key, stream, reset=True)

    def forget_framework(self, framework_id: str) -> None:
        for key in [k for k in self._streams if k[0] == framework_id]:
            stream = self._streams.pop(key)
            if stream.timer is not None:
                stream.timer.cancel()

    def close(self) -> None:
        for stream in self._streams.values():
            if stream.timer is not None:
                stream.timer.cancel()
        self._streams.clear()

    def _transmit(self, key: tuple[str, str], stream: _Stream, reset: bool) -> None:
        if stream.timer is not None:
            stream.timer.cancel()
        stream.backoff = self._retry_initial if reset else min(stream.backoff * 2, self._retry_max)
        self._send(key[0], stream.pending[0])
        stream.timer = self._loop.call_later(stream.backoff, self._retry, key)

    def _retry(self, key: tuple[str, str]) -> None:
        stream = self._streams.get(key)
        if stream is None or not stream.pending:
            return
        stream.timer = None
        self._transmit(key, stream, reset=False)
