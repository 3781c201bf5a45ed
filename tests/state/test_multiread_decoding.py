"""Multi-reads: decoding a reply, and reading the server's version."""

from __future__ import annotations

import struct

import pytest
from kazoo.exceptions import NoNodeError

from controller.state.multiread import (
    MultiRead,
    Read,
    answers_multi_reads,
    decode,
    server_version,
)

pytestmark = pytest.mark.unit

STAT = struct.Struct("!qqqqiiiqiiq")


def header(kind: int, done: bool = False, err: int = -1) -> bytes:
    return struct.pack("!iBi", kind, done, err)


def stat(version: int) -> bytes:
    return STAT.pack(1, 2, 3, 4, version, 0, 0, 0, 0, 0, 5)


def string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!i", len(raw)) + raw


def test_decode_reads_each_kind_of_answer_in_order() -> None:
    reply = (
        b"\x00" * 3  # the offset the reply header would take
        + header(Read.DATA)
        + string('{"a": 1}')
        + stat(7)
        + header(Read.CHILDREN)
        + struct.pack("!i", 2)
        + string("b")
        + string("a")
        + header(-1)
        + struct.pack("!i", NoNodeError.code)
        + header(Read.DATA)
        + struct.pack("!i", -1)  # a node without data
        + stat(0)
        + header(-1, done=True)
    )
    answers = decode(reply, 3)
    assert answers[:2] == [(b'{"a": 1}', 7), ["b", "a"]]
    assert isinstance(answers[2], NoNodeError)
    assert answers[3] == (b"", 0)


def test_a_reply_with_another_number_of_answers_is_refused() -> None:
    reply = header(Read.CHILDREN) + struct.pack("!i", 0) + header(-1, done=True)
    request = MultiRead([(Read.CHILDREN, "/a"), (Read.CHILDREN, "/b")])
    with pytest.raises(ValueError, match="of 2 answered 1 times"):
        request.deserialize(reply, 0)


@pytest.mark.parametrize(
    ("answer", "version"),
    [
        (
            "Zookeeper version: 3.8.0-5a02a05eddb59aee6ac762f7ea82e92a68eb9c0f, built on "
            "2022-02-25 08:49 UTC\nLatency min/avg/max: 0/0.1/3\n",
            (3, 8),
        ),
        ("Zookeeper version: 3.5.9-83df9301aa5c2a5d284a9940177808c01bc35cef, built on", (3, 5)),
        ("srvr is not executed because it is not in the whitelist.\n", None),
        ("", None),
    ],
)
def test_server_version_from_srvr(answer: str, version: tuple[int, int] | None) -> None:
    assert server_version(answer) == version


@pytest.mark.parametrize(
    ("version", "takes"),
    [("3.6.0", True), ("3.8.4", True), ("4.0.0", True), ("3.5.9", False), ("2.9.1", False)],
)
def test_multi_reads_from_3_6_on(version: str, takes: bool) -> None:
    assert answers_multi_reads(f"Zookeeper version: {version}-abc, built on 2024") is takes


def test_no_multi_reads_when_the_version_is_not_told() -> None:
    assert not answers_multi_reads("srvr is not executed because it is not in the whitelist.\n")
