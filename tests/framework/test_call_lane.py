"""Reading the master's answers to pipelined calls (the wire itself is exercised by every
framework test over the local Mesos: all acknowledgements go out pipelined), and the
ACCEPTs a cron fire's thread sends."""

from __future__ import annotations

import asyncio
import io

import pytest

from controller.mesos.call_lane import CallRefused, read_answer
from controller.mesos.calls import MesosCallError
from controller.mesos.driver import MesosDriver
from tests.framework.world import settings

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


async def test_accepts_sent_from_a_thread_fail_as_calls_and_never_raise() -> None:
    driver = MesosDriver(settings(), lambda event: None, asyncio.get_running_loop())
    launches = [(["o1"], [{"name": "t"}]), (["o2"], [{"name": "u"}])]
    sent = await asyncio.to_thread(driver.accept_now, launches, 5.0)
    for answer in sent:
        with pytest.raises(MesosCallError, match="not subscribed"):
            answer.result(timeout=30)
    await driver.close()
    (closed,) = await asyncio.to_thread(driver.accept_now, launches[:1], 5.0)
    with pytest.raises(MesosCallError, match="not sent"):
        closed.result(timeout=30)
