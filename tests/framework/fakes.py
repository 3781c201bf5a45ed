"""In-memory fakes of the framework's two wires, for unit tests that run in milliseconds.

`FakeGateway` stands in for ZooKeeper behind `StateGateway` (the store's seam): a
tree of versioned nodes, fenced atomic transactions with ZooKeeper's checks, and a
way to make the next transactions fail. `FakeMesos` stands in for the master behind
`MesosConnection`: it records every call, can refuse calls, and hands events to the
engine's sink. Both append to one shared `Journal` when given it, so a test can
check the order of writes and calls (an acknowledgement after the write it waits for).

Only the unit tests use these; the integration tests run a real ZooKeeper and the
Mesos emulator.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from controller.mesos.calls import AgentAccept, MesosCallError
from controller.mesos.events import DriverEvent, EventSink, JsonObject
from controller.mesos.states import Acknowledgement
from controller.state import NotLeader, RequestCounts, StateError, StateStore
from controller.state.gateway import TransactionRefused
from controller.state.transactions import Create, Delete, Op, SetData

FENCE = "/election/leader-0000000001"


@dataclass
class Journal:
    """What happened on either wire, in order: ("commit", n ops), ("ack", task id), ..."""

    entries: list[tuple[str, Any]] = field(default_factory=list)

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.entries]


class FakeGateway:
    """ZooKeeper's tree in memory, as `StateStore` sees it."""

    def __init__(self, journal: Journal | None = None) -> None:
        self.nodes: dict[str, tuple[bytes, int]] = {FENCE: (b"", 0)}
        self.journal = journal or Journal()
        self._counts = RequestCounts()
        self._failures: list[StateError] = []
        self._gate: threading.Event | None = None
        self.commit_waiting = threading.Event()

    @property
    def counts(self) -> RequestCounts:
        return self._counts

    def fail_next_commits(self, *errors: StateError) -> None:
        """The next transactions raise these, in order, writing nothing."""
        self._failures.extend(errors)

    def hold_commits(self) -> threading.Event:
        """Transactions from now on wait (as a slow ZooKeeper would, with the store's
        write lock held) until the returned event is set; `commit_waiting` is set once
        one does."""
        self._gate = threading.Event()
        return self._gate

    def get_many(self, paths: Iterable[str]) -> dict[str, tuple[bytes, int]]:
        wanted = list(paths)
        self._counts.add(requests=len(wanted))
        return {p: self.nodes[p] for p in wanted if p in self.nodes}

    def children_many(self, paths: Iterable[str]) -> dict[str, list[str]]:
        wanted = [p for p in paths if p in self.nodes]
        self._counts.add(requests=len(wanted))
        return {p: self._children(p) for p in wanted}

    def ensure_paths(self, paths: Iterable[str]) -> None:
        for path in paths:
            parts = path.strip("/").split("/")
            for end in range(1, len(parts) + 1):
                self.nodes.setdefault("/" + "/".join(parts[:end]), (b"", 0))

    def commit(self, fence: str, ops: Sequence[Op]) -> None:
        if self._gate is not None:
            self.commit_waiting.set()
            self._gate.wait()
        self._counts.add(requests=1, ops=len(ops) + 1, tx=1)
        if self._failures:
            raise self._failures.pop(0)
        if self.nodes.get(fence, (b"", -1))[1] != 0:
            raise NotLeader(f"write fenced: election node {fence} is gone")
        nodes = dict(self.nodes)
        for op in ops:
            self._apply(nodes, op)
        self.nodes = nodes
        self.journal.entries.append(("commit", len(ops)))

    def _children(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        return sorted({p[len(prefix) :].split("/")[0] for p in self.nodes if p.startswith(prefix)})

    @staticmethod
    def _apply(nodes: dict[str, tuple[bytes, int]], op: Op) -> None:
        parent = op.path.rsplit("/", 1)[0] or "/"
        if isinstance(op, Create):
            if op.path in nodes or (parent != "/" and parent not in nodes):
                raise TransactionRefused(op, KeyError(op.path))
            nodes[op.path] = (op.data, 0)
            return
        current = nodes.get(op.path)
        if current is None or op.version not in (-1, current[1]):
            raise TransactionRefused(op, KeyError(op.path))
        if isinstance(op, SetData):
            nodes[op.path] = (op.data, current[1] + 1)
        elif isinstance(op, Delete):
            if any(p.startswith(op.path + "/") for p in nodes):
                raise TransactionRefused(op, KeyError(op.path))
            del nodes[op.path]


class FakeFence:
    """The election's fence: leading until `depose`."""

    def __init__(self) -> None:
        self.leading = True

    def token(self) -> str:
        if not self.leading:
            raise NotLeader("not leading")
        return FENCE

    def confirm(self, timeout: float) -> bool:
        return self.leading

    def depose(self) -> None:
        self.leading = False


def loaded_store(gateway: FakeGateway, fence: FakeFence | None = None) -> StateStore:
    """A state store over `gateway`, loaded."""
    store = StateStore(
        gateway, fence or FakeFence(), clock=lambda: datetime(2024, 1, 1, tzinfo=UTC)
    )
    store.load()
    return store


class FakeMesos:
    """The master as the framework's calls see it; implements `MesosConnection`."""

    def __init__(self, journal: Journal | None = None) -> None:
        self.journal = journal or Journal()
        self.connected = False
        self.refused: set[str] = set()
        self.master_executors: list[tuple[str, str]] = []
        self.accepted: list[tuple[list[str], list[JsonObject]]] = []
        self.declined: list[list[str]] = []
        self.killed: list[str] = []
        self.acknowledged: list[Acknowledgement] = []
        self.reconciled: list[list[tuple[str, str | None]]] = []
        self.messages: list[tuple[str, str, str]] = []
        self.shutdowns: list[tuple[str, str]] = []
        self.revives = 0
        self.suppressions = 0
        self.started_with: list[str | None] = []
        self.sink: EventSink | None = None
        self.may_call: Callable[[], bool] = lambda: True
        self.may_subscribe: Callable[[], bool] = lambda: True
        self._called = asyncio.Condition()
        # Built on the event loop: the calls made from worker threads notify on it.
        self._loop = asyncio.get_running_loop()
        self._notifying: set[asyncio.Task[None]] = set()

    def connect(
        self, sink: EventSink, may_call: Callable[[], bool], may_subscribe: Callable[[], bool]
    ) -> FakeMesos:
        """The `MesosFactory` of a term: this fake, wired to the engine."""
        self.sink, self.may_call, self.may_subscribe = sink, may_call, may_subscribe
        return self

    def deliver(self, event: DriverEvent) -> None:
        assert self.sink is not None, "not connected to an engine"
        self.sink(event)

    async def until(self, check: Callable[[], bool]) -> None:
        """Wait until `check()` holds after some call (no clock involved)."""
        async with self._called:
            await self._called.wait_for(check)

    async def _call(self, name: str, detail: object = None) -> None:
        if name in self.refused or not self.may_call():
            raise MesosCallError(f"{name} refused")
        self.journal.entries.append((name, detail))
        async with self._called:
            self._called.notify_all()

    async def start(self, framework_id: str | None) -> None:
        self.started_with.append(framework_id)
        self.connected = True
        async with self._called:
            self._called.notify_all()

    async def restart(self, framework_id: str | None) -> None:
        await self.start(framework_id)

    async def close(self) -> None:
        self.connected = False

    async def accept(
        self, offer_ids: Sequence[str], tasks: Sequence[JsonObject], refuse_seconds: float
    ) -> None:
        await self._call("accept", list(offer_ids))
        self.accepted.append((list(offer_ids), list(tasks)))

    def accept_now(
        self, launches: Sequence[AgentAccept], refuse_seconds: float
    ) -> list[Future[None]]:
        answers: list[Future[None]] = []
        for offer_ids, tasks in launches:
            answer: Future[None] = Future()
            answers.append(answer)
            if "accept" in self.refused or not self.may_call():
                answer.set_exception(MesosCallError("accept refused"))
                continue
            self.journal.entries.append(("accept", list(offer_ids)))
            self.accepted.append((list(offer_ids), list(tasks)))
            answer.set_result(None)
        self._loop.call_soon_threadsafe(self._notify)
        return answers

    def _notify(self) -> None:
        async def notify() -> None:
            async with self._called:
                self._called.notify_all()

        self._notifying.add(task := self._loop.create_task(notify()))
        task.add_done_callback(self._notifying.discard)

    async def decline(self, offer_ids: Sequence[str], refuse_seconds: float) -> None:
        await self._call("decline", list(offer_ids))
        self.declined.append(list(offer_ids))

    async def revive(self) -> None:
        await self._call("revive")
        self.revives += 1

    async def suppress(self) -> None:
        await self._call("suppress")
        self.suppressions += 1

    async def kill(self, task_id: str, agent_id: str | None) -> None:
        await self._call("kill", task_id)
        self.killed.append(task_id)

    async def acknowledge(self, acks: Sequence[Acknowledgement]) -> None:
        for ack in acks:
            await self._call("ack", ack.task_id)
            self.acknowledged.append(ack)

    async def reconcile(self, tasks: Sequence[tuple[str, str | None]]) -> None:
        await self._call("reconcile", list(tasks))
        self.reconciled.append(list(tasks))

    async def message(self, agent_id: str, executor_id: str, data_base64: str) -> None:
        await self._call("message", executor_id)
        self.messages.append((agent_id, executor_id, data_base64))

    async def shutdown(self, agent_id: str, executor_id: str) -> None:
        await self._call("shutdown", executor_id)
        self.shutdowns.append((agent_id, executor_id))

    async def executors(self, master: str, framework_id: str) -> list[tuple[str, str]]:
        await self._call("executors")
        return list(self.master_executors)
