"""ZooKeeper's multi-read: many node reads in one request, for loading the state.

kazoo sends one request per node read, and its connection thread spends about 180 µs
of Python on each: at 5,000 jobs a leader's load (about 22,000 reads) took 4.2 s
before it could subscribe to Mesos. ZooKeeper 3.6 added a request (opcode 22) that
carries many reads and answers each one, a failed read (a node deleted meanwhile)
with its own error; kazoo has no call for it, so `MultiRead` is a request in kazoo's
own shape (`type`, `serialize`, `deserialize`) sent through the client's queue, on the
same session as every other request of the store. The same 22,000 reads take about
0.2 s as 110 of them.

A server older than 3.6 answers an unknown request by closing the connection, which
would cost the leader its leadership (the election treats a suspended connection as
lost). `reads_in_bulk` therefore asks the server its version first (the `srvr`
four-letter command, the one ZooKeeper allows by default) and says no whenever it
cannot tell.
"""

from __future__ import annotations

import logging
import re
import struct
from collections.abc import Sequence
from enum import IntEnum
from typing import TypeAlias

from kazoo.client import KazooClient
from kazoo.exceptions import EXCEPTIONS, KazooException

log = logging.getLogger(__name__)

MULTI_READ_OPCODE = 22
READS_PER_REQUEST = 200
"""Reads per request: a batch of job definitions stays well under a megabyte."""
FIRST_VERSION = (3, 6)

_HEADER = struct.Struct("!iBi")  # operation type, done flag, error
_INT = struct.Struct("!i")
_STAT = struct.Struct("!qqqqiiiqiiq")
_VERSION_FIELD = 4  # the node's data version, in `_STAT`'s order
_VERSION = re.compile(r"Zookeeper version: (\d+)\.(\d+)")


class Read(IntEnum):
    DATA = 4
    CHILDREN = 8


Answer: TypeAlias = tuple[bytes, int] | list[str] | Exception
"""A read's answer: (data, version), the children's names, or the read's error."""


def encode(reads: Sequence[tuple[Read, str]]) -> bytes:
    """The body of a multi-read request (none of the reads leaves a watch)."""
    body = bytearray()
    for kind, path in reads:
        name = path.encode()
        body += _HEADER.pack(kind, False, -1)
        body += _INT.pack(len(name)) + name + b"\x00"
    return bytes(body + _HEADER.pack(-1, True, -1))


def decode(buffer: bytes | bytearray | memoryview, offset: int) -> list[Answer]:
    """The answers of a multi-read reply body, in the order of the reads."""
    answers: list[Answer] = []
    while True:
        kind, done, _ = _HEADER.unpack_from(buffer, offset)
        offset += _HEADER.size
        if done:
            return answers
        if kind == Read.DATA:
            (size,) = _INT.unpack_from(buffer, offset)
            offset += _INT.size
            data = b"" if size < 0 else bytes(buffer[offset : offset + size])
            offset += max(size, 0)
            version = _STAT.unpack_from(buffer, offset)[_VERSION_FIELD]
            offset += _STAT.size
            answers.append((data, version))
        elif kind == Read.CHILDREN:
            (count,) = _INT.unpack_from(buffer, offset)
            offset += _INT.size
            names: list[str] = []
            for _ in range(max(count, 0)):
                (size,) = _INT.unpack_from(buffer, offset)
                offset += _INT.size
                names.append(bytes(buffer[offset : offset + size]).decode())
                offset += size
            answers.append(names)
        elif kind == -1:
            (code,) = _INT.unpack_from(buffer, offset)
            offset += _INT.size
            answers.append(EXCEPTIONS[code]())
        else:
            raise ValueError(f"multi-read reply with an answer of unknown type {kind}")


class MultiRead:
    """A multi-read in the shape kazoo's connection sends and answers."""

    type = MULTI_READ_OPCODE

    def __init__(self, reads: Sequence[tuple[Read, str]]) -> None:
        self.reads = reads

    def serialize(self) -> bytes:
        return encode(self.reads)

    def deserialize(self, buffer: bytes, offset: int) -> list[Answer]:
        answers = decode(buffer, offset)
        if len(answers) != len(self.reads):
            raise ValueError(f"multi-read of {len(self.reads)} answered {len(answers)} times")
        return answers


def server_version(srvr: str) -> tuple[int, int] | None:
    """Major and minor version from the `srvr` command's answer (None: not in it)."""
    found = _VERSION.search(srvr)
    return (int(found[1]), int(found[2])) if found else None


def answers_multi_reads(srvr: str) -> bool:
    """Whether the server whose `srvr` answer this is takes multi-reads (no when the
    answer names no version)."""
    version = server_version(srvr)
    return version is not None and version >= FIRST_VERSION


def reads_in_bulk(client: KazooClient) -> bool:
    """Whether the server `client` is connected to answers multi-reads."""
    try:
        answer = client.command(b"srvr")
    except (OSError, KazooException) as error:
        log.info("ZooKeeper's version unknown (%s): reading the state node by node", error)
        return False
    if answers_multi_reads(answer):
        return True
    version = server_version(answer)
    shown = "of unknown version" if version is None else f"{version[0]}.{version[1]}"
    log.info("ZooKeeper %s: reading the state node by node (multi-reads need 3.6)", shown)
    return False


def send(client: KazooClient, reads: Sequence[tuple[Read, str]]) -> object:
    """Queue one multi-read on `client`'s session; returns kazoo's async result."""
    root = (client.chroot or "").rstrip("/")
    result = client.handler.async_result()
    # kazoo's own calls queue their requests the same way (`_call`); it has no
    # public call for a request type it does not know.
    client._call(MultiRead([(kind, root + path) for kind, path in reads]), result)
    return result
