"""The one seam through which the state package talks to ZooKeeper.

`ZkGateway` wraps a started `KazooClient`: pipelined reads for loading, and fenced
multi-op transactions built from the plain operations of `transactions`. It counts every request
and every round trip it makes (`RequestCounts`), which is how the tests show that a
launch cycle costs a bounded number of round trips, and it translates kazoo's
exceptions into the state package's own (see `errors`). Only `StateStore` and
`LeaderElection` use it. `StateGateway` is the part of it the store needs, as a
Protocol: the unit tests give the store an in-memory gateway instead.

Transactions: kazoo's `commit()` does not raise when an operation fails, it returns
the failure in the result list; `commit` here inspects the list. Every transaction
starts with `check(<writer's election node>, version 0)` so that a writer that has
lost its election node (session expired, another leader elected) cannot write: that
check failing raises `NotLeader`. A transaction cut by a connection loss has an
unknown outcome: `commit` raises `OutcomeUnknown` and the caller re-reads before any
retry.

The operations themselves, and how they are packed into transactions within
ZooKeeper's request size, are plain data in `transactions` (pure, shared with the
planning).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kazoo.client import KazooClient
from kazoo.exceptions import (
    ConnectionClosedError,
    ConnectionLoss,
    KazooException,
    NoNodeError,
    RolledBackError,
    RuntimeInconsistency,
    SessionExpiredError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import WatchedEvent
from kazoo.security import ACL

from controller.state.errors import NotLeader, StateError, StateUnavailable
from controller.state.multiread import READS_PER_REQUEST, Answer, Read, reads_in_bulk, send
from controller.state.transactions import Create, Op, SetData

log = logging.getLogger(__name__)


class OutcomeUnknown(StateError):
    """The connection was lost while a transaction was in flight: it may have committed."""


class TransactionRefused(StateError):
    """ZooKeeper refused one operation of a transaction; nothing was written."""

    def __init__(self, op: Op, error: Exception) -> None:
        super().__init__(f"{type(op).__name__} {op.path} refused: {type(error).__name__}")
        self.op = op
        self.error = error


@dataclass
class RequestCounts:
    """What the gateway sent: requests, sequential round trips, transactions and their ops."""

    requests: int = 0
    round_trips: int = 0
    transactions: int = 0
    transaction_ops: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, *, requests: int, round_trips: int = 1, ops: int = 0, tx: int = 0) -> None:
        with self._lock:
            self.requests += requests
            self.round_trips += round_trips
            self.transactions += tx
            self.transaction_ops += ops

    def snapshot(self) -> RequestCounts:
        with self._lock:
            return RequestCounts(
                self.requests, self.round_trips, self.transactions, self.transaction_ops
            )

    def since(self, before: RequestCounts) -> RequestCounts:
        now = self.snapshot()
        return RequestCounts(
            now.requests - before.requests,
            now.round_trips - before.round_trips,
            now.transactions - before.transactions,
            now.transaction_ops - before.transaction_ops,
        )


class StateGateway(Protocol):
    """What `StateStore` needs of ZooKeeper (`ZkGateway` documents each call)."""

    @property
    def counts(self) -> RequestCounts: ...

    def get_many(self, paths: Iterable[str]) -> dict[str, tuple[bytes, int]]: ...

    def children_many(self, paths: Iterable[str]) -> dict[str, list[str]]: ...

    def ensure_paths(self, paths: Iterable[str]) -> None: ...

    def commit(self, fence: str, ops: Sequence[Op]) -> None: ...


_UNAVAILABLE = (ConnectionClosedError, SessionExpiredError, ConnectionLoss)


class ZkGateway:
    """Counted, translated access to one kazoo client; `acl` goes on every node created."""

    def __init__(
        self,
        client: KazooClient,
        acl: Sequence[ACL] | None = None,
        timeout: float = 15.0,
        *,
        bulk: bool | None = None,
    ) -> None:
        """`bulk`: read many nodes with multi-reads (None: if the server answers them,
        asked once, at the first read of many nodes)."""
        self.client = client
        self.acl = list(acl) if acl else None
        self.timeout = timeout
        self.counts = RequestCounts()
        self._bulk = bulk

    # reads
    def get(self, path: str) -> tuple[bytes, int] | None:
        """Data and version of `path`, None when it does not exist."""
        return self.get_many([path]).get(path)

    def get_many(self, paths: Iterable[str]) -> dict[str, tuple[bytes, int]]:
        """Data and version of every existing path, fetched in one pipelined round trip."""
        paths = list(paths)
        if self._in_bulk(paths):
            answers = self._read_bulk([(Read.DATA, p) for p in paths])
            return {p: a for p, a in zip(paths, answers, strict=True) if isinstance(a, tuple)}
        pending = [(p, self.client.get_async(p)) for p in paths]
        if not pending:
            return {}
        self.counts.add(requests=len(pending))
        found: dict[str, tuple[bytes, int]] = {}
        for path, result in pending:
            try:
                data, stat = self._wait(result)
            except NoNodeError:
                continue
            found[path] = (data, stat.version)
        return found

    def children(self, path: str) -> list[str]:
        """Children of `path` ([] when it does not exist)."""
        return self.children_many([path]).get(path, [])

    def children_many(self, paths: Iterable[str]) -> dict[str, list[str]]:
        """Children of every existing path, fetched in one pipelined round trip."""
        paths = list(paths)
        if self._in_bulk(paths):
            answers = self._read_bulk([(Read.CHILDREN, p) for p in paths])
            pairs = zip(paths, answers, strict=True)
            return {p: sorted(a) for p, a in pairs if isinstance(a, list)}
        pending = [(p, self.client.get_children_async(p)) for p in paths]
        if not pending:
            return {}
        self.counts.add(requests=len(pending))
        found: dict[str, list[str]] = {}
        for path, result in pending:
            try:
                found[path] = sorted(self._wait(result))
            except NoNodeError:
                continue
        return found

    def _in_bulk(self, paths: Sequence[str]) -> bool:
        if len(paths) < 2:
            return False
        if self._bulk is None:
            self._bulk = reads_in_bulk(self.client)
        return self._bulk

    def _read_bulk(self, reads: Sequence[tuple[Read, str]]) -> list[Answer]:
        """Every read's answer, sent as pipelined multi-reads; a read of a node that does
        not exist answers NoNodeError, any other failed read raises its error (as a
        single read would)."""
        pending = [
            send(self.client, reads[i : i + READS_PER_REQUEST])
            for i in range(0, len(reads), READS_PER_REQUEST)
        ]
        self.counts.add(requests=len(pending))
        answers: list[Answer] = []
        for result in pending:
            answers += self._wait(result)
        for (_, path), answer in zip(reads, answers, strict=True):
            if isinstance(answer, Exception) and not isinstance(answer, NoNodeError):
                log.warning("reading %s failed: %r", path, answer)
                raise answer
        return answers

    def exists(self, path: str, watch: Callable[[WatchedEvent], None] | None = None) -> bool:
        """Whether `path` exists, leaving `watch` on it (fired once on its next change)."""
        self.counts.add(requests=1)
        return self._wait(self.client.exists_async(path, watch=watch)) is not None

    # writes
    def ensure_paths(self, paths: Iterable[str]) -> None:
        """Create missing persistent nodes (and their parents) with the gateway's ACL."""
        for path in paths:
            self.counts.add(requests=1)
            # Bounded like every other request: a connection that hangs (packets dropped)
            # must not hold the caller, and the store's lock with it, forever.
            self._wait(self.client.ensure_path_async(path, acl=self.acl))

    def create_ephemeral_sequential(self, prefix: str, data: bytes) -> str:
        self.counts.add(requests=1)
        created: str = self._wait(
            self.client.create_async(prefix, data, acl=self.acl, ephemeral=True, sequence=True)
        )
        return created

    def delete_quietly(self, path: str, timeout: float = 2.0) -> None:
        """Delete `path` if connected, waiting at most `timeout`; never raises."""
        if not self.client.connected:
            return
        self.counts.add(requests=1)
        try:
            self.client.delete_async(path).get(timeout=timeout)
        except (KazooException, KazooTimeoutError) as exc:
            log.debug("could not delete %s: %r", path, exc)

    def commit(self, fence: str, ops: Sequence[Op]) -> None:
        """Commit `ops` in one transaction fenced on the election node `fence`.

        Raises NotLeader (fence gone), TransactionRefused (an op failed; nothing
        written), OutcomeUnknown (connection lost in flight) or StateUnavailable.
        """
        tx = self.client.transaction()
        tx.check(fence, 0)
        for op in ops:
            if isinstance(op, Create):
                tx.create(op.path, op.data, acl=self.acl)
            elif isinstance(op, SetData):
                tx.set_data(op.path, op.data, op.version)
            else:
                tx.delete(op.path, op.version)
        self.counts.add(requests=1, ops=len(ops) + 1, tx=1)
        try:
            results = tx.commit()
        except ConnectionLoss as exc:
            raise OutcomeUnknown(f"connection lost committing {len(ops)} operations") from exc
        except SessionExpiredError as exc:
            raise NotLeader("the ZooKeeper session expired; the election node is gone") from exc
        except ConnectionClosedError as exc:
            raise StateUnavailable("the ZooKeeper client is closed") from exc
        self._inspect(fence, ops, results)

    @staticmethod
    def _inspect(fence: str, ops: Sequence[Op], results: Sequence[Any]) -> None:
        if (
            results
            and isinstance(results[0], Exception)
            and not isinstance(results[0], RolledBackError | RuntimeInconsistency)
        ):
            raise NotLeader(
                f"write fenced: election node {fence} is gone "
                f"({type(results[0]).__name__}); another process may lead"
            )
        for op, result in zip(ops, results[1:], strict=False):
            if isinstance(result, Exception) and not isinstance(
                result, RolledBackError | RuntimeInconsistency
            ):
                raise TransactionRefused(op, result)

    def _wait(self, result: Any) -> Any:
        try:
            return result.get(timeout=self.timeout)
        except _UNAVAILABLE as exc:
            raise StateUnavailable(f"ZooKeeper did not answer: {exc!r}") from exc
        except KazooTimeoutError as exc:
            raise StateUnavailable(f"ZooKeeper did not answer within {self.timeout}s") from exc
