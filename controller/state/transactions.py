"""The write operations of a ZooKeeper transaction, and how they are packed into requests.

Pure data and arithmetic: `planning` builds lists of `Create` / `SetData` / `Delete`,
`ZkGateway.commit` sends them as one multi-op request each. ZooKeeper refuses a request
larger than jute.maxbuffer (1 MiB by default), so `chunk` splits the operations of a
change into transactions of at most `MAX_TX_OPS` operations and `MAX_TX_BYTES`
estimated bytes; `StateStore` uses it for large launches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MAX_TX_OPS = 1000
MAX_TX_BYTES = 512 * 1024
_OP_OVERHEAD = 32
_ACL_BYTES = 96


@dataclass(frozen=True)
class Create:
    path: str
    data: bytes = b""


@dataclass(frozen=True)
class SetData:
    path: str
    data: bytes
    version: int = -1


@dataclass(frozen=True)
class Delete:
    path: str
    version: int = -1


Op = Create | SetData | Delete


def op_size(op: Op) -> int:
    """Estimated bytes of one operation on the wire."""
    size = _OP_OVERHEAD + len(op.path.encode())
    if isinstance(op, Create):
        size += len(op.data) + _ACL_BYTES
    elif isinstance(op, SetData):
        size += len(op.data)
    return size


def chunk(
    groups: Sequence[Sequence[Op]], max_ops: int = MAX_TX_OPS, max_bytes: int = MAX_TX_BYTES
) -> list[list[Op]]:
    """Pack groups of operations, in order, into transactions within both bounds.

    A group (e.g. everything one job's launch changes) stays in one transaction unless
    it alone exceeds a bound; then it is split in order across consecutive ones.
    """
    chunks: list[list[Op]] = []
    current: list[Op] = []
    size = 0
    for group in groups:
        cost = sum(op_size(op) for op in group)
        if current and (len(current) + len(group) > max_ops or size + cost > max_bytes):
            chunks.append(current)
            current, size = [], 0
        for op in group:
            op_cost = op_size(op)
            if current and (len(current) >= max_ops or size + op_cost > max_bytes):
                chunks.append(current)
                current, size = [], 0
            current.append(op)
            size += op_cost
    if current:
        chunks.append(current)
    return chunks
