"""The event recorder: which Events it writes (pure book) and how they reach the real API
server (as the chart's ServiceAccount): one Event per repeated event with a growing
count, similar ones combined, writes paced, nothing written once the term no longer
leads."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
import pytest

from controller.reconcilers.kubeapi import KubeApi
from controller.reconcilers.recording import (
    COMBINED,
    EventBook,
    EventPolicy,
    EventRecorder,
    ObjectRef,
)
from devcluster.kube import ControlPlane
from devcluster.kube.identities import Identity
from tests.kubeworld import fresh_namespace
from tests.waiting import async_wait_for

pytestmark = pytest.mark.integration

REF = ObjectRef("cloudjob.io/v1alpha1", "CloudJob", "default", "report", "uid-1")
T0 = datetime(2030, 1, 1, tzinfo=UTC)


def record(book: EventBook, message: str, tick: float, reason: str = "Failed") -> None:
    book.record(
        REF,
        type_="Warning",
        reason=reason,
        message=message,
        now=T0 + timedelta(seconds=tick),
        tick=tick,
    )


def test_identical_events_are_one_event_whose_count_grows_paced() -> None:
    book = EventBook(EventPolicy(pace=10.0))
    record(book, "shard 0 failed", 0.0)
    writes, later = book.due(0.0)
    assert [(w.create, w.count) for w in writes] == [(True, 1)]
    assert later is None
    body = writes[0].body("cloudjob-controller", "replica-1")
    assert body["involvedObject"]["uid"] == "uid-1"
    assert body["firstTimestamp"] == body["lastTimestamp"] == "2030-01-01T00:00:00Z"
    name = body["metadata"]["name"]
    assert name.startswith("report.")

    for tick in (1.0, 2.0, 3.0):
        record(book, "shard 0 failed", tick)
    writes, later = book.due(3.0)
    assert writes == []
    assert later == 7.0
    writes, _ = book.due(10.0)
    assert [(w.create, w.count, w.entry.name) for w in writes] == [(False, 4, name)]
    patch = writes[0].body("cloudjob-controller", "replica-1")
    assert patch == {
        "count": 4,
        "lastTimestamp": "2030-01-01T00:00:03Z",
        "message": "shard 0 failed",
    }
    assert book.due(30.0) == ([], None)


def test_different_messages_beyond_the_limit_are_combined_into_one_event() -> None:
    book = EventBook(EventPolicy(similar=3, pace=0.0))
    for n in range(6):
        record(book, f"shard {n} failed", float(n))
    writes, _ = book.due(6.0)
    messages = sorted(w.entry.message for w in writes)
    assert messages == [
        f"{COMBINED}shard 5 failed",
        "shard 0 failed",
        "shard 1 failed",
        "shard 2 failed",
    ]
    combined = next(w for w in writes if w.entry.message.startswith(COMBINED))
    assert combined.count == 3
    # An already seen message is still counted on its own Event.
    record(book, "shard 1 failed", 7.0)
    writes, _ = book.due(7.0)
    assert [(w.entry.message, w.count) for w in writes] == [("shard 1 failed", 2)]


def test_other_reasons_and_old_messages_are_counted_apart() -> None:
    book = EventBook(EventPolicy(similar=1, window=60.0, pace=0.0))
    record(book, "a", 0.0)
    record(book, "cron fired: added", 0.0, reason="Fired")
    record(book, "b", 100.0)
    writes, _ = book.due(100.0)
    assert sorted((w.entry.reason, w.entry.message) for w in writes) == [
        ("Failed", "a"),
        ("Failed", "b"),
        ("Fired", "cron fired: added"),
    ]


def test_the_book_is_bounded_and_forgets_a_deleted_object() -> None:
    book = EventBook(EventPolicy(entries=3, similar=100))
    for n in range(10):
        record(book, f"m{n}", float(n))
    writes, _ = book.due(10.0)
    assert [w.entry.message for w in writes] == ["m7", "m8", "m9"]
    book.forget("uid-1")
    assert book.due(11.0) == ([], None)


def credentials(cluster: ControlPlane, identity: Identity) -> kopf.ConnectionInfo:
    return kopf.ConnectionInfo(
        server=cluster.url, ca_path=str(cluster.ca_cert), token=identity.token
    )


def job_events(cluster: ControlPlane, namespace: str) -> list[dict[str, Any]]:
    return cluster.client().list("v1", "Event", namespace)


async def test_the_recorder_creates_then_patches_and_recreates_an_expired_event(
    kube_cluster: ControlPlane, controller_identity: Identity
) -> None:
    namespace = fresh_namespace(kube_cluster)
    ref = replace(REF, namespace=namespace)
    api = KubeApi(lambda: credentials(kube_cluster, controller_identity), user_agent="test")
    recorder = EventRecorder(
        api,
        component="cloudjob-controller",
        instance="replica-1",
        leading=lambda: True,
        policy=EventPolicy(pace=0.1),
    )
    stop = asyncio.Event()
    running = asyncio.create_task(recorder.run(stop))
    try:
        for _ in range(3):
            recorder.post(ref, warning=True, reason="Failed", message="shard 0 failed")
            await asyncio.sleep(0.2)
        events = await async_wait_for(
            lambda: [e for e in job_events(kube_cluster, namespace) if e.get("count") == 3],
            what="count 3",
            in_thread=True,
        )
        assert len(job_events(kube_cluster, namespace)) == 1
        event = events[0]
        assert (event["type"], event["reason"], event["reportingInstance"]) == (
            "Warning",
            "Failed",
            "replica-1",
        )
        # The Event expires on the server; the next occurrence starts a new one.
        await asyncio.to_thread(
            kube_cluster.client().delete, "v1", "Event", event["metadata"]["name"], namespace
        )
        recorder.post(ref, warning=True, reason="Failed", message="shard 0 failed")
        renewed = await async_wait_for(
            lambda: job_events(kube_cluster, namespace), what="a new Event", in_thread=True
        )
        assert renewed[0]["count"] == 4
        assert renewed[0]["metadata"]["name"] != event["metadata"]["name"]
    finally:
        stop.set()
        await running
        await api.close()


async def test_a_recorder_whose_term_ended_writes_nothing(
    kube_cluster: ControlPlane, controller_identity: Identity
) -> None:
    namespace = fresh_namespace(kube_cluster)
    ref = replace(REF, namespace=namespace)
    api = KubeApi(lambda: credentials(kube_cluster, controller_identity), user_agent="test")
    leading = True
    recorder = EventRecorder(
        api,
        component="cloudjob-controller",
        instance="replica-1",
        leading=lambda: leading,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(recorder.run(stop))
    try:
        recorder.post(ref, warning=False, reason="Launched", message="one")
        await async_wait_for(
            lambda: job_events(kube_cluster, namespace), what="the first Event", in_thread=True
        )
        leading = False
        recorder.post(ref, warning=False, reason="Launched", message="two")
        await asyncio.wait_for(running, 5)
        assert [e["message"] for e in job_events(kube_cluster, namespace)] == ["one"]
    finally:
        stop.set()
        await running
        await api.close()
