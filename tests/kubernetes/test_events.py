"""Kubernetes Events over the whole stack: each kind is really posted on its object, with
a CamelCase reason, and repeats are aggregated into one Event with a count instead of a
new Event object per occurrence."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest

from tests.stack import Stack
from tests.waiting import holds, wait_for

pytestmark = pytest.mark.system

EVERY_SECOND = "* * * * * ?"
CAMEL_CASE = re.compile(r"^[A-Z][a-zA-Z]+$")


def by_reason(events: list[dict[str, Any]], reason: str) -> list[dict[str, Any]]:
    return [event for event in events if event["reason"] == reason]


def test_a_job_failing_every_second_keeps_one_failed_event_whose_count_grows(
    stack: Stack,
) -> None:
    stack.start_controller()
    stack.script_app_object()
    stack.script_job(
        "broken", EVERY_SECOND, shardingTotalCount=1, script={"commandLine": "sh -c 'exit 3'"}
    )

    failed = wait_for(
        lambda: by_reason(stack.events("CloudJob", "broken"), "Failed"),
        lambda found: sum(event.get("count", 1) for event in found) >= 6,
        what="six failures counted in Failed events",
    )
    assert all(event["type"] == "Warning" for event in failed)
    # One Event per distinct message: every failure of shard 0 says the same.
    assert len({event["message"] for event in failed}) == len(failed)
    assert len(failed) <= 2
    counted = max(event["count"] for event in failed)
    assert counted >= 3
    assert any(event["firstTimestamp"] < event["lastTimestamp"] for event in failed)
    status = stack.status("CloudJob", "broken")
    assert status["failed"] >= 6

    events = stack.events("CloudJob", "broken")
    kinds = Counter(event["reason"] for event in events)
    # One Fired Event per distinct outcome ("added"; "merged" when a fire finds the last
    # run still going, which a slow machine sees), each counting its repeats.
    fired = by_reason(events, "Fired")
    assert len(fired) == len({event["message"] for event in fired}), fired
    assert {"Fired", "Launched", "Failed"} <= set(kinds)
    assert all(CAMEL_CASE.match(reason) for reason in kinds)
    assert all(event["involvedObject"]["kind"] == "CloudJob" for event in events)
    assert all(event["source"]["component"] == "cloudjob-controller" for event in events)
    # Failures go on; Event objects do not multiply.
    objects = len(events)
    holds(
        lambda: len(stack.events("CloudJob", "broken")),
        lambda now: now <= objects + 3,
        seconds=4,
        what="a bounded number of Event objects",
    )
