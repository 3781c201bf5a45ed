"""Kubernetes Events about CloudJobs and CloudApps, aggregated as the Kubernetes event
recorder does, posted by the leader only.

A job that fails every ten seconds must not leave thousands of Event objects behind.
`EventBook` (pure) decides what to write:
- identical events (same object, type, reason and message) are one Event whose `count`
  and `lastTimestamp` grow — `kubectl describe` shows `(x42 over 7m)`;
- once an object has had `similar` different messages of one type and reason within
  `window` seconds, later ones are combined into one Event whose message is
  `(combined from similar events): <latest message>`;
- an Event already written is patched at most once per `pace` seconds; occurrences in
  between are added to the next write, so nothing is lost and writes stay bounded.
So an object gets at most `similar + 1` Event objects per type, reason and window, and
at most one write per Event per `pace`.

`EventRecorder` keeps a book per leadership term, takes `post` calls from the
reconcilers without blocking, and writes in the background through the `KubeApi`
(create, or a merge patch of `count`, `lastTimestamp` and `message`; a patch of an
Event that expired meanwhile creates a new one), taking a token from its `TokenBucket`
before each, so Event writes per second are bounded across all objects (occurrences
meanwhile keep adding to the book). Before every write it asks `leading`: a replica
that lost its leadership writes nothing more. Built by `controller.app`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from controller.reconcilers.kubeapi import ApiError, KubeApi, events_path
from controller.reconcilers.pacing import TokenBucket

log = logging.getLogger(__name__)

COMBINED = "(combined from similar events): "
MAX_MESSAGE = 1024


@dataclass(frozen=True)
class ObjectRef:
    """The `involvedObject` of an Event."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str

    def render(self) -> dict[str, str]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "uid": self.uid,
        }


@dataclass(frozen=True)
class EventPolicy:
    window: float = 600.0
    """Seconds over which different messages of one type and reason are counted."""
    similar: int = 10
    """Different messages of one type and reason per window before they are combined."""
    pace: float = 10.0
    """The shortest gap (seconds) between two writes of one Event."""
    entries: int = 4096
    """Events remembered (for aggregation) across all objects; the oldest are forgotten."""


@dataclass
class Entry:
    ref: ObjectRef
    type: str
    reason: str
    message: str
    first: datetime
    last: datetime
    count: int = 0
    written: int = 0
    name: str | None = None
    written_at: float | None = None


@dataclass(frozen=True)
class Write:
    """One request: a new Event (`create`) or a patch of the Event named `name`."""

    entry: Entry
    create: bool
    count: int

    def body(self, component: str, instance: str) -> dict[str, Any]:
        entry = self.entry
        if not self.create:
            return {
                "count": self.count,
                "lastTimestamp": _stamp(entry.last),
                "message": entry.message,
            }
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": entry.name, "namespace": entry.ref.namespace},
            "involvedObject": entry.ref.render(),
            "type": entry.type,
            "reason": entry.reason,
            "message": entry.message,
            "count": self.count,
            "firstTimestamp": _stamp(entry.first),
            "lastTimestamp": _stamp(entry.last),
            "source": {"component": component},
            "reportingComponent": component,
            "reportingInstance": instance,
        }


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _clip(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


@dataclass
class EventBook:
    """The aggregation decisions (see the module docstring); `now` is wall-clock time for
    the Events' timestamps, `tick` a monotonic clock for the window and the pace."""

    policy: EventPolicy = field(default_factory=EventPolicy)
    _entries: OrderedDict[tuple[str, str, str, str], Entry] = field(default_factory=OrderedDict)
    _messages: dict[tuple[str, str, str], dict[str, float]] = field(default_factory=dict)

    def record(
        self, ref: ObjectRef, *, type_: str, reason: str, message: str, now: datetime, tick: float
    ) -> None:
        message = _clip(message)
        group = (ref.uid, type_, reason)
        window = self.policy.window
        seen = {m: t for m, t in self._messages.pop(group, {}).items() if tick - t < window}
        if message not in seen and len(seen) >= self.policy.similar:
            key, message = (*group, COMBINED), _clip(COMBINED + message)
        else:
            seen[message] = tick
            key = (*group, message)
        self._messages[group] = seen
        entry = self._entries.pop(key, None)
        if entry is None:
            entry = Entry(ref, type_, reason, message, first=now, last=now)
        entry.count += 1
        entry.last = now
        entry.message = message
        self._entries[key] = entry
        while len(self._entries) > self.policy.entries:
            self._entries.popitem(last=False)
        while len(self._messages) > self.policy.entries:
            del self._messages[next(iter(self._messages))]

    def due(self, tick: float) -> tuple[list[Write], float | None]:
        """The writes to make now, and in how many seconds more become due (None: none)."""
        writes: list[Write] = []
        later: float | None = None
        for entry in self._entries.values():
            if entry.count == entry.written:
                continue
            if entry.name is None:
                entry.name = event_name(entry.ref)
                writes.append(Write(entry, create=True, count=entry.count))
            elif entry.written_at is None or tick - entry.written_at >= self.policy.pace:
                writes.append(Write(entry, create=False, count=entry.count))
            else:
                wait = self.policy.pace - (tick - entry.written_at)
                later = wait if later is None else min(later, wait)
                continue
            entry.written, entry.written_at = entry.count, tick
        return writes, later

    def forget(self, uid: str) -> None:
        """Drop what is kept about an object that is gone."""
        for key in [k for k in self._entries if k[0] == uid]:
            del self._entries[key]
        for group in [g for g in self._messages if g[0] == uid]:
            del self._messages[group]


class EventRecorder:
    """Posts the book's writes in the background; see the module docstring."""

    def __init__(
        self,
        api: KubeApi,
        *,
        component: str,
        instance: str,
        leading: Callable[[], bool],
        policy: EventPolicy | None = None,
        bucket: TokenBucket | None = None,
    ) -> None:
        self.book = EventBook(policy or EventPolicy())
        self._bucket = bucket
        self._api = api
        self._component = component
        self._instance = instance
        self._leading = leading
        self._wake = asyncio.Event()

    def post(self, ref: ObjectRef, *, warning: bool, reason: str, message: str) -> None:
        self.book.record(
            ref,
            type_="Warning" if warning else "Normal",
            reason=reason,
            message=message,
            now=datetime.now(UTC),
            tick=time.monotonic(),
        )
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Write what is due whenever something is posted or a paced write comes due."""
        later: float | None = None
        while not stop.is_set():
            waker = asyncio.ensure_future(self._wake.wait())
            stopping = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait({waker, stopping}, timeout=later, return_when="FIRST_COMPLETED")
            finally:
                waker.cancel()
                stopping.cancel()
            self._wake.clear()
            if stop.is_set():
                return
            writes, later = self.book.due(time.monotonic())
            for write in writes:
                if not await self._paced(stop) or not self._leading():
                    return
                await self._write(write)

    async def _paced(self, stop: asyncio.Event) -> bool:
        """Wait for a token; False if `stop` was set meanwhile."""
        if self._bucket is None:
            return True
        while (wait := self._bucket.take(time.monotonic())) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            if stop.is_set():
                return False
        return True

    async def _write(self, write: Write) -> None:
        entry = write.entry
        try:
            if not write.create:
                patched = await self._api.patch(
                    events_path(entry.ref.namespace, entry.name),
                    write.body(self._component, self._instance),
                )
                if patched is not None:
                    return
                # The Event expired on the server: a new one carries the count on.
                entry.name = event_name(entry.ref)
            created = Write(entry, create=True, count=write.count)
            await self._api.post(
                events_path(entry.ref.namespace), created.body(self._component, self._instance)
            )
        except ApiError as error:
            log.warning(
                "could not post the %s event %s on %s %s/%s: %s",
                entry.type,
                entry.reason,
                entry.ref.kind,
                entry.ref.namespace,
                entry.ref.name,
                error,
            )


def event_name(ref: ObjectRef) -> str:
    return f"{ref.name}.{uuid.uuid4().hex[:16]}"


def object_ref(api_version: str, kind: str, metadata: Mapping[str, Any]) -> ObjectRef:
    return ObjectRef(
        api_version=api_version,
        kind=kind,
        namespace=str(metadata.get("namespace") or ""),
        name=str(metadata.get("name") or ""),
        uid=str(metadata.get("uid") or ""),
    )
