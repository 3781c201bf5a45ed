"""The orphan sweep's decisions: what counts as an orphan, that a key must be missing in
two sweeps in a row and confirmed gone by the API server, under the object's lock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from controller.reconcilers.handling import Reconciliation, job_slot
from controller.reconcilers.specs import parse_job
from controller.reconcilers.sweeping import JOB, OrphanSweep, SweepMetrics, orphans, watched
from tests.kubernetes.core import MemoryCore

pytestmark = pytest.mark.unit

SPEC: dict[str, Any] = {
    "appName": "demo",
    "cron": "0 * * * * ?",
    "shardingTotalCount": 2,
    "cpuCount": 0.5,
    "memoryMB": 64.0,
    "script": {"commandLine": "echo hi"},
}


def test_an_orphan_is_held_by_the_core_unknown_to_kopf_and_in_a_watched_namespace() -> None:
    held = ["team-a.report", "team-a.live", "team-b.report"]
    present = [("team-a", "live")]
    assert orphans(held, present, ()) == {"team-a.report", "team-b.report"}
    assert orphans(held, present, ("team-a",)) == {"team-a.report"}
    assert orphans(held, [], ("team-c",)) == set()
    assert not watched("not-a-key", ())


class Api:
    """What the API server answers to a GET: objects that exist, or an error."""

    def __init__(self) -> None:
        self.objects: set[tuple[str, str, str]] = set()
        self.failing = False
        self.asked: list[tuple[str, str, str]] = []
        self.locked_when_asked: list[bool] = []

    async def exists(self, kind: str, namespace: str, name: str) -> bool | None:
        self.asked.append((kind, namespace, name))
        return None if self.failing else (kind, namespace, name) in self.objects


def sweep_of(
    core: MemoryCore,
    api: Api,
    present: list[tuple[str, str]],
    registry: CollectorRegistry | None = None,
) -> OrphanSweep:
    return OrphanSweep(
        ops=core,
        reconciliation=Reconciliation(ops=core),
        jobs_present=lambda: present,
        apps_present=lambda: [],
        exists=api.exists,
        metrics=SweepMetrics(registry or CollectorRegistry()),
    )


async def test_a_key_missing_once_is_only_suspected_and_twice_is_removed() -> None:
    core, api, registry = MemoryCore(), Api(), CollectorRegistry()
    core.jobs["team-a.report"] = parse_job("team-a", "report", SPEC)
    sweep = sweep_of(core, api, [], registry)

    assert await sweep.sweep() == []
    assert api.asked == []
    assert "team-a.report" in core.jobs
    assert await sweep.sweep() == [(JOB, "team-a.report")]
    assert core.calls == [("unschedule", "team-a.report")]
    assert registry.get_sample_value("cloudjob_orphans_removed_total", {"kind": JOB}) == 1


async def test_a_key_seen_again_between_two_sweeps_is_no_longer_suspected() -> None:
    core, api = MemoryCore(), Api()
    core.jobs["team-a.report"] = parse_job("team-a", "report", SPEC)
    present: list[tuple[str, str]] = []
    sweep = sweep_of(core, api, present)
    await sweep.sweep()
    present.append(("team-a", "report"))
    await sweep.sweep()
    present.clear()
    assert await sweep.sweep() == []
    assert core.calls == []


async def test_nothing_is_removed_while_the_api_server_has_the_object_or_cannot_tell() -> None:
    core, api = MemoryCore(), Api()
    core.jobs["team-a.report"] = parse_job("team-a", "report", SPEC)
    sweep = sweep_of(core, api, [])
    api.objects.add((JOB, "team-a", "report"))
    for _ in range(3):
        assert await sweep.sweep() == []
    api.objects.clear()
    api.failing = True
    assert await sweep.sweep() == []
    assert core.calls == []
    api.failing = False
    assert await sweep.sweep() == [(JOB, "team-a.report")]


async def test_the_object_is_looked_up_under_its_lock_so_a_create_handler_cannot_interleave() -> (
    None
):
    core, api = MemoryCore(), Api()
    core.jobs["team-a.report"] = parse_job("team-a", "report", SPEC)
    sweep = sweep_of(core, api, [])
    lock = sweep.reconciliation.mailboxes.lock(job_slot("team-a.report"))
    original = api.exists

    async def exists(kind: str, namespace: str, name: str) -> bool | None:
        api.locked_when_asked.append(lock.locked())
        return await original(kind, namespace, name)

    sweep.exists = exists
    await sweep.sweep()

    # A create handler holds the lock and schedules the new object; the sweep waits for
    # it, then finds the object on the server and leaves the job alone.
    async def create_handler() -> None:
        async with lock:
            await asyncio.sleep(0.05)
            api.objects.add((JOB, "team-a", "report"))
            await core.schedule(parse_job("team-a", "report", SPEC))

    handler = asyncio.create_task(create_handler())
    await asyncio.sleep(0)
    assert await sweep.sweep() == []
    await handler
    assert api.locked_when_asked == [True]
    assert "team-a.report" in core.jobs
    assert core.calls == [("schedule", "team-a.report")]
