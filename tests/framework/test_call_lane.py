"""Reading the master's answers to pipelined calls (the wire itself is exercised by every
framework test over the local Mesos: all acknowledgements go out pipelined)."""

from __future__ import annotations

import io

import pytest

from controller.mesos.call_lane import CallRefused, read_answer

pytestmark = pytest.mark.unit


def test_answers_are_read_one_after_another_from_one_stream() -> None:
    stream = io.BytesIO(
        b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 5\r\n\r\nnope!"
        b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    assert read_answer(stream) == (202, False)
    assert read_answer(stream) == (400, False)
    assert read_answer(stream) == (202, True)
    with pytest.raises(CallRefused, match="no HTTP answer"):
        read_answer(stream)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "chunked"),
        (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 50\r\n\r\nshort", "part way"),
        (b"garbage\r\n", "no HTTP answer"),
    ],
)
def test_an_answer_that_cannot_be_delimited_is_refused(raw: bytes, why: str) -> None:
    with pytest.raises(CallRefused, match=why):
        read_answer(io.BytesIO(raw))
