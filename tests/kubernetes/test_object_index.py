"""The object index the event handlers keep: apps, jobs, and the jobs of each app."""

from __future__ import annotations

import copy

import kopf
import pytest

from controller.dirty import ObjectKind
from controller.handlers import view
from controller.reconcilers.apps import RECONCILE_ANNOTATION, AppSummary
from controller.reconcilers.handling import ObjectView
from controller.reconcilers.indexing import ObjectIndex
from controller.reconcilers.jobs import TRIGGER_ANNOTATION
from controller.reconcilers.recording import ObjectRef
from controller.reconcilers.refreshing import Known
from controller.reconcilers.status import AppAvailability

pytestmark = pytest.mark.unit

VALID = AppSummary(valid=True, disabled=False, deleting=False)


def known(kind: str, namespace: str, name: str) -> Known:
    view = ObjectView(
        namespace=namespace, name=name, generation=1, spec={}, status={}, annotations={}
    )
    return Known(view, ObjectRef("cloudjob.io/v1alpha1", kind, namespace, name, f"uid-{name}"))


def test_a_job_is_listed_under_its_app_until_it_names_another_or_is_forgotten() -> None:
    index = ObjectIndex()
    index.put_job(("a", "j2"), "demo", known("CloudJob", "a", "j2"))
    index.put_job(("a", "j1"), "demo", known("CloudJob", "a", "j1"))
    index.put_job(("b", "j3"), "demo", known("CloudJob", "b", "j3"))
    assert index.jobs_of("a", "demo") == ["j1", "j2"]
    assert index.jobs_of("b", "demo") == ["j3"]

    index.put_job(("a", "j1"), "other", known("CloudJob", "a", "j1"))
    assert index.jobs_of("a", "demo") == ["j2"]
    assert index.jobs_of("a", "other") == ["j1"]

    index.forget_job(("a", "j2"))
    index.put_job(("a", "j1"), None, known("CloudJob", "a", "j1"))  # appName removed
    assert index.jobs_of("a", "demo") == [] and index.jobs_of("a", "other") == []
    assert index.jobs_by_app == {("b", "demo"): {"j3": None}}
    assert index.job_keys() == [("a", "j1"), ("b", "j3")]


def test_an_app_is_available_while_indexed_and_not_deleting() -> None:
    index = ObjectIndex()
    assert index.app_lookup("a", "demo") is AppAvailability.MISSING
    index.put_app(("a", "demo"), VALID, known("CloudApp", "a", "demo"))
    assert index.app_lookup("a", "demo") is AppAvailability.AVAILABLE
    assert index.app_lookup("b", "demo") is AppAvailability.MISSING
    deleting = AppSummary(valid=True, disabled=False, deleting=True)
    index.put_app(("a", "demo"), deleting, known("CloudApp", "a", "demo"))
    assert index.app_lookup("a", "demo") is AppAvailability.MISSING
    index.forget_app(("a", "demo"))
    assert index.app_keys() == []


def test_objects_and_lookups_by_key() -> None:
    index = ObjectIndex()
    app, job = known("CloudApp", "a", "demo"), known("CloudJob", "a", "j1")
    index.put_app(("a", "demo"), VALID, app)
    index.put_job(("a", "j1"), "demo", job)
    assert index.objects() == [(ObjectKind.APP, "a.demo"), (ObjectKind.JOB, "a.j1")]
    assert index.known(ObjectKind.JOB, "a.j1") is job
    assert index.known(ObjectKind.APP, "a.demo") is app
    assert index.known(ObjectKind.JOB, "a.demo") is None
    assert index.known(ObjectKind.JOB, "not-a-key") is None


def test_the_listing_fills_in_the_apps_no_event_has_shown_and_opens_the_gate() -> None:
    index = ObjectIndex()
    newer = known("CloudApp", "a", "seen")
    index.put_app(("a", "seen"), VALID, newer)  # an event came before the listing
    index.put_app(("a", "deleted"), VALID, known("CloudApp", "a", "deleted"))
    index.forget_app(("a", "deleted"))  # ... and a deletion
    assert not index.apps_listed.is_set()

    listed = [
        (("a", name), VALID, known("CloudApp", "a", name)) for name in ("seen", "deleted", "new")
    ]
    index.seed_apps(listed)
    assert index.apps_listed.is_set()
    assert index.known(ObjectKind.APP, "a.seen") is newer
    assert index.app_keys() == [("a", "seen"), ("a", "new")]
    # Once listed, a deletion is just a deletion.
    index.forget_app(("a", "new"))
    assert index.app_lookup("a", "new") is AppAvailability.MISSING


def test_an_object_is_kept_packed_and_read_back_as_a_fresh_copy_of_what_was_seen() -> None:
    status = {
        "state": "Scheduled",
        "conditions": [{"type": "Ready", "status": "True", "observedGeneration": 3}],
        "recentRuns": [{"fireTime": "2026-12-07T00:31:35Z", "shards": [{"shard": 0}]}],
        "pendingRuns": 0,
    }
    seen = ObjectView(
        namespace="a",
        name="j1",
        generation=3,
        spec={"appName": "demo", "cpuCount": 0.5, "script": {"commandLine": "./run.sh"}},
        status=status,
        annotations={TRIGGER_ANNOTATION: "1"},
        deleting=True,
    )
    entry = Known(seen, ObjectRef("cloudjob.io/v1alpha1", "CloudJob", "a", "j1", "uid-j1"))
    as_seen = copy.deepcopy(seen)
    first = entry.view
    assert first == as_seen
    first.status["conditions"][0]["status"] = "False"
    assert entry.view == as_seen


def test_the_view_of_an_object_keeps_only_the_annotations_the_controller_acts_on() -> None:
    body = kopf.Body(
        {
            "apiVersion": "cloudjob.io/v1alpha1",
            "kind": "CloudJob",
            "metadata": {
                "namespace": "a",
                "name": "j1",
                "generation": 2,
                "annotations": {
                    TRIGGER_ANNOTATION: "7",
                    RECONCILE_ANNOTATION: "r1",
                    "kubectl.kubernetes.io/last-applied-configuration": '{"spec": {}}',
                    "kopf.zalando.org/last-handled-configuration": '{"spec": {}}',
                },
            },
            "spec": {"appName": "demo"},
            "status": {"state": "Scheduled"},
        }
    )
    seen = view(body)
    assert seen.annotations == {TRIGGER_ANNOTATION: "7", RECONCILE_ANNOTATION: "r1"}
    assert (seen.spec, seen.status, seen.generation) == (
        {"appName": "demo"},
        {"state": "Scheduled"},
        2,
    )
