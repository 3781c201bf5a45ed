"""Leader election over ZooKeeper, and the fence every state write carries.

Each contender owns one ephemeral-sequential node `ha/election/n_<contender>_<seq>`;
the lowest sequence leads, every other contender watches only its predecessor. The
leader's node path is its fencing token: `StateStore` puts `check(<token>)` in every
transaction, so a process whose node is gone (session expired, another leader
elected) cannot write even if it still believes it leads.

Connection states (kazoo calls the listener on its own thread; it never blocks):
- SUSPENDED: leadership is dropped at once; `must_stop` is called synchronously from
  the listener, before any further request, so the process stops acting before its
  session can expire and another contender can win.
- LOST: the same, and the node is forgotten; when kazoo connects with a new session
  the election contends again with a new node.
- CONNECTED after either: the worker confirms its node still exists and is the lowest
  before calling `became_leader` again (with a new `Term`).

`stop()` withdraws cleanly (calls `must_stop` first, then deletes the node); nothing
here ever exits the process. Requests to ZooKeeper run on the election's own worker
thread; `start()` and `stop()` are blocking and meant for `asyncio.to_thread` or
plain threads. `AsyncLeadership` turns the callbacks into an asyncio queue.

Used by the controller's entry point (start/stop, callbacks) and by `StateStore`
(as its `Fence`).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from kazoo.client import KazooClient, KazooState
from kazoo.protocol.states import WatchedEvent

from controller.state.connection import digest_acl
from controller.state.errors import NotLeader, StateError
from controller.state.gateway import ZkGateway
from controller.state.layout import ELECTION_PREFIX, Layout

log = logging.getLogger(__name__)


class Fence(Protocol):
    """What a state writer needs from the election."""

    def token(self) -> str:
        """The path of the leader's election node; raises NotLeader when not leading."""
        ...

    def confirm(self, timeout: float) -> bool:
        """Whether a fresh round trip to ZooKeeper shows this process still leading."""
        ...


@dataclass(frozen=True)
class Term:
    """One continuous period of leadership of this process."""

    number: int
    node: str
    started: float


class TermFence:
    """The fence of one leadership term, which the scheduling core of that term writes
    with. A process that loses leadership and wins it back with the same election node
    (its session survived a short disconnection) starts a new term whose token is the
    same path; work of the old term still in flight — a fire that waited out the
    disconnection — must not write then: it decided on the old term's view of the state,
    and the new term has loaded its own."""

    def __init__(self, election: LeaderElection, term: Term | None) -> None:
        self._election = election
        self._term = term

    def token(self) -> str:
        if self._term is None:
            raise NotLeader("this process does not lead (no term)")
        return self._election.token(self._term)

    def confirm(self, timeout: float) -> bool:
        return (
            self._term is not None
            and self._election.term == self._term
            and self._election.confirm(timeout)
        )


class LeadershipListener(Protocol):
    """Callbacks of a `LeaderElection`; both run on kazoo/election threads and must
    return quickly (hand the event over, never do I/O)."""

    def became_leader(self, term: Term) -> None: ...

    def must_stop(self, reason: str) -> None: ...


@dataclass(frozen=True)
class LeadershipChange:
    leading: bool
    term: Term | None
    reason: str
    at: float


class AsyncLeadership:
    """A `LeadershipListener` that queues every change for an asyncio loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.changes: asyncio.Queue[LeadershipChange] = asyncio.Queue()

    def became_leader(self, term: Term) -> None:
        self._post(LeadershipChange(True, term, "elected", time.monotonic()))

    def must_stop(self, reason: str) -> None:
        self._post(LeadershipChange(False, None, reason, time.monotonic()))

    def _post(self, change: LeadershipChange) -> None:
        self._loop.call_soon_threadsafe(self.changes.put_nowait, change)


class _Command(Enum):
    CHECK = "check"
    STOP = "stop"


def _sequence(name: str) -> int:
    tail = name.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else -1


class LeaderElection:
    """One contender for leadership of the namespace in `layout`."""

    def __init__(
        self,
        client: KazooClient,
        listener: LeadershipListener,
        *,
        layout: Layout | None = None,
        identity: str = "",
        auth: str | None = None,
    ) -> None:
        self._client = client
        self._listener = listener
        self._layout = layout or Layout()
        self._identity = identity.encode()
        self._contender = uuid.uuid4().hex
        self._gateway = ZkGateway(client, digest_acl(auth), timeout=5.0)
        self._lock = threading.Lock()
        self._notify = threading.RLock()
        self._commands: queue.Queue[_Command] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._node: str | None = None
        self._leading = False
        self._connected = False
        self._epoch = 0
        self._terms = 0
        self._term: Term | None = None
        self._stopping = False

    # public
    def start(self) -> None:
        """Begin contending; returns at once (the worker thread does the rest)."""
        if self._worker is not None:
            raise RuntimeError("this election has already been started")
        self._client.add_listener(self._on_state)
        with self._lock:
            self._connected = self._client.state == KazooState.CONNECTED
        self._worker = threading.Thread(
            target=self._work, name=f"leader-election-{self._contender[:8]}", daemon=True
        )
        self._worker.start()
        self._commands.put(_Command.CHECK)

    def stop(self, timeout: float = 10.0) -> None:
        """Withdraw: stop acting (`must_stop` if leading), then delete the election node."""
        with self._notify:
            with self._lock:
                self._stopping = True
                was_leading, self._leading, self._term = self._leading, False, None
                node, self._node = self._node, None
            if was_leading:
                self._listener.must_stop("leader election stopped")
        self._commands.put(_Command.STOP)
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout)
        self._client.remove_listener(self._on_state)
        if node is not None:
            self._gateway.delete_quietly(node)

    @property
    def is_leading(self) -> bool:
        with self._lock:
            return self._leading

    @property
    def term(self) -> Term | None:
        with self._lock:
            return self._term

    @property
    def node(self) -> str | None:
        """This contender's election node (None while it has none)."""
        with self._lock:
            return self._node

    def token(self, term: Term | None = None) -> str:
        """The election node while leading (and, given a `term`, while that term lasts)."""
        with self._lock:
            if not self._leading or self._node is None:
                raise NotLeader("this process does not lead (not elected, or suspended)")
            if term is not None and self._term != term:
                raise NotLeader(f"leadership term {term.number} has ended")
            return self._node

    def confirm(self, timeout: float) -> bool:
        """Whether a fresh ZooKeeper round trip shows this process still leading: its
        election node exists and belongs to its live session. For decisions a stale view
        must not make: the in-memory flag changes only once kazoo notices a lost session,
        and a process frozen past its session timeout acts on the old flag when it
        resumes (it would subscribe to Mesos and throw the real leader off)."""
        with self._lock:
            node = self._node if self._leading else None
        if node is None:
            return False
        try:
            # sync: a follower that lags the ensemble's leader must not answer from the past.
            self._client.sync_async(node).get(timeout=timeout)
            stat = self._client.exists_async(node).get(timeout=timeout)
        except Exception as error:  # kazoo's errors, a timeout: not confirmed either way
            log.warning("could not confirm leadership in ZooKeeper: %r", error)
            return False
        session = self._client.client_id
        return stat is not None and session is not None and stat.ephemeralOwner == session[0]

    def contenders(self) -> list[str]:
        """Election node names in order, the leader first."""
        return sorted(self._gateway.children(self._layout.election), key=_sequence)

    # kazoo's connection listener: never blocks, never calls ZooKeeper
    def _on_state(self, state: KazooState) -> None:
        if state == KazooState.CONNECTED:
            with self._lock:
                self._connected = True
            self._commands.put(_Command.CHECK)
            return
        reason = (
            "ZooKeeper connection suspended"
            if state == KazooState.SUSPENDED
            else "ZooKeeper session lost"
        )
        with self._notify:
            with self._lock:
                self._epoch += 1
                self._connected = False
                was_leading, self._leading, self._term = self._leading, False, None
                if state == KazooState.LOST:
                    self._node = None
            if was_leading:
                log.warning("leadership suspended: %s", reason)
                self._listener.must_stop(reason)

    def _on_watch(self, event: WatchedEvent) -> None:
        self._commands.put(_Command.CHECK)

    # worker thread
    def _work(self) -> None:
        while self._commands.get() is not _Command.STOP:
            if self._stopping:
                continue
            try:
                self._check()
            except StateError as exc:
                log.info("election check deferred until ZooKeeper answers: %s", exc)
            except Exception:
                log.exception("leader election check failed; retrying on the next event")

    def _check(self) -> None:
        with self._lock:
            if not self._connected or self._stopping:
                return
            epoch, node = self._epoch, self._node
        election = self._layout.election
        children = sorted(self._gateway.children(election), key=_sequence)
        mine = [c for c in children if c.startswith(self._own_prefix())]
        if node is None or node.rsplit("/", 1)[-1] not in children:
            node = self._adopt_or_create(election, mine, epoch)
            if node is None:
                return
            children = sorted(self._gateway.children(election), key=_sequence)
        name = node.rsplit("/", 1)[-1]
        if name not in children:
            self._commands.put(_Command.CHECK)
            return
        position = children.index(name)
        if position == 0:
            self._watch(node)
            self._lead(epoch, node)
            return
        self._step_down("a contender with a lower election node exists", epoch)
        if not self._watch(f"{election}/{children[position - 1]}"):
            self._commands.put(_Command.CHECK)

    def _own_prefix(self) -> str:
        return f"{ELECTION_PREFIX}{self._contender}_"

    def _adopt_or_create(self, election: str, mine: Sequence[str], epoch: int) -> str | None:
        self._step_down("the election node is gone", epoch)
        if mine:
            # a create whose reply was lost to a connection drop: keep that node
            node = f"{election}/{mine[0]}"
            for extra in mine[1:]:
                self._gateway.delete_quietly(f"{election}/{extra}")
        else:
            self._gateway.ensure_paths([election])
            node = self._gateway.create_ephemeral_sequential(
                f"{election}/{self._own_prefix()}", self._identity
            )
        with self._lock:
            if self._epoch != epoch or self._stopping:
                return None
            self._node = node
        log.info("contending for leadership with %s", node)
        return node

    def _watch(self, path: str) -> bool:
        return self._gateway.exists(path, watch=self._on_watch)

    def _lead(self, epoch: int, node: str) -> None:
        with self._notify:
            with self._lock:
                if self._epoch != epoch or self._stopping or self._leading:
                    return
                self._terms += 1
                self._leading = True
                self._term = term = Term(self._terms, node, time.monotonic())
            log.info("elected leader (term %d, node %s)", term.number, node)
            self._listener.became_leader(term)

    def _step_down(self, reason: str, epoch: int) -> None:
        with self._notify:
            with self._lock:
                if not self._leading or self._epoch != epoch:
                    return
                self._leading, self._term = False, None
            log.warning("stepping down: %s", reason)
            self._listener.must_stop(reason)
