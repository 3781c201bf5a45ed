"""Pure decisions of the reconcilers: what a job wants, how it sees its app, whether a
trigger value asks for a run; and the per-object re-apply requests."""

from __future__ import annotations

from typing import Any

import pytest

from controller.reconcilers.apps import AppSummary, app_availability
from controller.reconcilers.jobs import (
    TRIGGER_ANNOTATION,
    DesiredJob,
    TriggerVerdict,
    apply_job,
    desired_job,
    holds_last_valid,
    trigger_decision,
)
from controller.reconcilers.mailboxes import Mailboxes
from controller.reconcilers.status import AppAvailability
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


def desired(app: AppAvailability = AppAvailability.AVAILABLE, **spec: Any) -> DesiredJob:
    return desired_job("team-a", "report", 3, {**SPEC, **spec}, lambda namespace, name: app)


def test_a_valid_job_of_a_present_or_disabled_app_is_held_by_the_core() -> None:
    assert desired().holdable
    assert desired().definition is not None
    assert desired(AppAvailability.DISABLED).holdable
    assert desired(disabled=True).facts.disabled


def test_an_invalid_job_or_one_without_its_app_is_not_held() -> None:
    assert not desired(cron="0 0 25 * * ?").holdable
    assert desired(cron="0 0 25 * * ?").facts.problems
    assert not desired(AppAvailability.MISSING).holdable
    assert not desired(AppAvailability.INVALID).holdable


def test_the_app_lookup_is_asked_for_the_job_namespace_and_app_name() -> None:
    asked: list[tuple[str, str]] = []

    def lookup(namespace: str, name: str) -> AppAvailability:
        asked.append((namespace, name))
        return AppAvailability.AVAILABLE

    desired_job("team-a", "report", 1, SPEC, lookup)
    assert asked == [("team-a", "demo")]


def test_a_job_whose_app_name_is_no_name_never_asks_for_an_app() -> None:
    job = desired_job("team-a", "report", 1, {**SPEC, "appName": "Not A Name"}, lambda *_: 1 / 0)
    assert job.facts.app_name is None
    assert job.facts.problems


def test_an_app_being_deleted_counts_as_missing() -> None:
    assert app_availability(None) is AppAvailability.MISSING
    assert app_availability(AppSummary(True, False, deleting=True)) is AppAvailability.MISSING
    assert app_availability(AppSummary(False, False, False)) is AppAvailability.INVALID
    assert app_availability(AppSummary(True, True, False)) is AppAvailability.DISABLED
    assert app_availability(AppSummary(True, False, False)) is AppAvailability.AVAILABLE


def test_a_trigger_value_runs_once() -> None:
    job = desired()
    assert trigger_decision({}, None, job).verdict is TriggerVerdict.NONE
    first = trigger_decision({TRIGGER_ANNOTATION: "1"}, None, job)
    assert (first.verdict, first.value) == (TriggerVerdict.RUN, "1")
    assert trigger_decision({TRIGGER_ANNOTATION: "1"}, "1", job).verdict is TriggerVerdict.NONE
    assert trigger_decision({TRIGGER_ANNOTATION: "2"}, "1", job).verdict is TriggerVerdict.RUN


def test_a_trigger_the_job_cannot_honour_is_refused_with_the_reason() -> None:
    for job, words in (
        (desired(disabled=True), "spec.disabled"),
        (desired(AppAvailability.MISSING), "missing"),
        (desired(AppAvailability.DISABLED), "disabled"),
        (desired(cron="0 0 25 * * ?"), "invalid"),
    ):
        decision = trigger_decision({TRIGGER_ANNOTATION: "x"}, None, job)
        assert decision.verdict is TriggerVerdict.REFUSE
        assert words in decision.reason


def test_a_reapply_request_is_taken_once_and_forgotten_with_the_object() -> None:
    boxes = Mailboxes()
    boxes.request_reapply("k")
    assert boxes.take_reapply("k")
    assert not boxes.take_reapply("k")
    boxes.request_reapply("k")
    boxes.forget("k")
    assert not boxes.take_reapply("k")


async def test_an_invalid_spec_leaves_the_core_alone_but_for_a_disable() -> None:
    core = MemoryCore()
    await apply_job(core, desired(cron="0 0 25 * * ?"))
    assert core.calls == []

    await apply_job(core, desired())
    held = desired(cron="0 0 25 * * ?")
    assert held.keeps_last_valid
    assert holds_last_valid(core, held)
    await apply_job(core, held)
    assert core.calls == [("schedule", "team-a.report")]
    await apply_job(core, desired(cron="0 0 25 * * ?", disabled=True))
    assert core.calls[-1] == ("disable_job", "team-a.report")


async def test_a_job_without_its_app_is_unscheduled_even_with_an_invalid_spec() -> None:
    core = MemoryCore()
    await apply_job(core, desired())
    await apply_job(core, desired(AppAvailability.MISSING, cron="0 0 25 * * ?"))
    assert core.calls[-1] == ("unschedule", "team-a.report")
    assert not holds_last_valid(core, desired(AppAvailability.MISSING, cron="0 0 25 * * ?"))
