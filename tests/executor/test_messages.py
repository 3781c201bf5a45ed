"""Framework messages (STOP, TRIGGER) and daemon run reports."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from controller.executor.messages import (
    MessageError,
    RunReport,
    Stop,
    Trigger,
    decode,
    decode_base64,
    encode,
    encode_base64,
)

pytestmark = pytest.mark.unit


def test_stop_is_the_plain_word() -> None:
    assert encode(Stop()) == b"STOP"
    assert decode(b"STOP") == Stop()
    assert decode(b"STOP\n") == Stop()
    assert decode(b'{"type": "STOP"}') == Stop()


def test_trigger_round_trips() -> None:
    for message in (Trigger("ns.job"), Trigger("ns.job", task_id="ns.job@-@0@-@READY@-@a@-@u")):
        assert decode(encode(message)) == message
        assert decode_base64(encode_base64(message)) == message
    assert encode(Trigger("ns.job")) == b'{"type":"TRIGGER","jobName":"ns.job"}'


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"HALT", "neither STOP nor a JSON object"),
        (b"[1]", "must be a JSON object"),
        (b'{"type": "RESTART"}', "'RESTART' is unknown"),
        (b'{"type": "TRIGGER"}', "non-empty string 'jobName'"),
        (b'{"type": "TRIGGER", "jobName": ""}', "non-empty string 'jobName'"),
        (b'{"type": "TRIGGER", "jobName": "a.b", "taskId": 3}', "'taskId'"),
        (b"\xff\xfe", "neither STOP nor a JSON object"),
    ],
)
def test_bad_messages_say_what_is_wrong(raw: bytes, fragment: str) -> None:
    with pytest.raises(MessageError, match=fragment):
        decode(raw)


def test_bad_base64_is_a_message_error() -> None:
    with pytest.raises(MessageError, match="base64"):
        decode_base64("***")
    assert decode_base64(base64.b64encode(b"STOP").decode()) == Stop()


def test_run_reports_round_trip() -> None:
    report = RunReport(
        outcome="failed",
        detail="exit status 3",
        fire_time=datetime(2024, 1, 1, tzinfo=UTC),
        triggered=True,
        started_at=datetime(2024, 1, 1, 0, 0, 2, tzinfo=UTC),
    )
    assert RunReport.decode(report.encode()) == report
    assert RunReport.decode(RunReport(outcome="succeeded").encode()) == RunReport("succeeded")


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"nope", "not JSON"),
        (b'{"outcome": "maybe"}', "'outcome'"),
        (b'{"outcome": "failed", "fireTime": "yesterday"}', "'fireTime'"),
        (b'{"outcome": "failed", "startedAt": 3}', "'startedAt'"),
    ],
)
def test_bad_run_reports_say_what_is_wrong(raw: bytes, fragment: str) -> None:
    with pytest.raises(MessageError, match=fragment):
        RunReport.decode(raw)
