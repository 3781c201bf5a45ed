"""Every kopf handler of the controller runs on the event loop: kopf runs a plain
function on a worker thread of its own, while the object index, the dirty queue and the
refresher's wake-up belong to the loop."""

from __future__ import annotations

import inspect

import kopf
import pytest

from controller.handlers import register_handlers

pytestmark = pytest.mark.unit


def test_every_handler_is_a_coroutine_function() -> None:
    registry = kopf.OperatorRegistry()
    register_handlers(registry)
    handlers = [
        handler
        for kind in ("_activities", "_indexing", "_watching", "_spawning", "_changing")
        for handler in getattr(registry, kind).get_all_handlers()
    ]
    assert {h.id for h in handlers} >= {"configure", "credentials", "app-seen", "job-seen"}
    assert [h.id for h in handlers if not inspect.iscoroutinefunction(h.fn)] == []
