"""The operator lists the objects in pages (kopf's chunked listing), against the real API
server: every object of every page is taken up."""

from __future__ import annotations

import re

import pytest

from controller import handlers
from tests.stack import Stack

pytestmark = pytest.mark.system

FAR_FUTURE = "0 0 0 1 1 ? 2099"


def test_a_new_leader_lists_the_jobs_in_pages_and_takes_up_every_one(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handlers, "LIST_PAGE", 2)
    stack.script_app_object()
    names = [f"paged-{i}" for i in range(5)]
    for name in names:
        stack.script_job(name, FAR_FUTURE)

    stack.start_controller()
    for name in names:
        stack.wait_status(
            "CloudJob", name, lambda s: s.get("state") == "Scheduled", what=f"{name} scheduled"
        )
    listings = [
        event["requestURI"]
        for event in stack.requests()
        if event["verb"] == "list" and event.get("objectRef", {}).get("resource") == "cloudjobs"
    ]
    assert listings and all(re.search(r"[?&]limit=2(&|$)", uri) for uri in listings), listings
    # five jobs in pages of two: the first page, then two more with a continue token
    assert sum("continue=" in uri for uri in listings) >= 2, listings
