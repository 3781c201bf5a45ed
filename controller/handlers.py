"""The kopf handlers of CloudApp and CloudJob: thin adapters onto the reconcilers.

`register_handlers` puts every handler into an explicit `kopf.OperatorRegistry` (never
kopf's global one). Each handler turns kopf's kwargs into an `ObjectView` and hands it
to the term's `Reconciliation` (in the memo), then writes the status patch it returns;
Events go through the term's `EventRecorder` (kopf's own event posting is off).
All kopf settings are made in the one startup handler; credentials come from the
memo's `credentials` callable (the controller builds it from its settings).

Per object kind: create / update / resume apply the desired state and mark the object
dirty, delete undoes it (behind the `cloudjob.io/finalizer` finalizer). There is no
timer per object: status is written by the term's status refresher from the dirty
queue, and drift is repaired by the drift sweep (`controller.reconcilers.refreshing`,
`drift`). Indexes let jobs see their app, apps find their jobs, and the refresher and
the sweeps read each object as the watch last showed it (`Known`) — the startup
handler hands them over in the memo's `indexes`. Used by `controller.app`, the
leader-gated controller.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import kopf

from controller import naming, resources
from controller.dirty import ObjectKind
from controller.reconcilers import apps, jobs
from controller.reconcilers.handling import ObjectView, Post, Reconciliation
from controller.reconcilers.recording import EventRecorder, ObjectRef, object_ref
from controller.reconcilers.refreshing import Known
from controller.reconcilers.status import AppAvailability

GROUP, VERSION = resources.GROUP, resources.VERSION
APPS, JOBS = "cloudapps", "cloudjobs"
FINALIZER = f"{GROUP}/finalizer"
ANNOTATION_PREFIX = GROUP
EVENT_COMPONENT = "cloudjob-controller"
USER_AGENT = EVENT_COMPONENT
WATCH_SERVER_TIMEOUT = 300

AppIndex = kopf.Index[tuple[str, str], apps.AppSummary]
JobsByApp = kopf.Index[tuple[str, str], str]
KnownIndex = kopf.Index[tuple[str, str], Known]


@dataclass
class Indexes:
    """The indexes, handed over by the startup handler to whoever runs beside the operator
    (the refresher and the sweeps); each maps (namespace, name) keys of one kind."""

    apps: AppIndex | None = None
    jobs: KnownIndex | None = None
    app_objects: KnownIndex | None = None

    def app_keys(self) -> list[tuple[str, str]]:
        return list(self.app_objects) if self.app_objects is not None else []

    def job_keys(self) -> list[tuple[str, str]]:
        return list(self.jobs) if self.jobs is not None else []

    def objects(self) -> list[tuple[ObjectKind, str]]:
        """Every object known now, apps first."""
        return [(ObjectKind.APP, naming.object_key(*k)) for k in self.app_keys()] + [
            (ObjectKind.JOB, naming.object_key(*k)) for k in self.job_keys()
        ]

    def known(self, kind: ObjectKind, key: str) -> Known | None:
        index = self.jobs if kind is ObjectKind.JOB else self.app_objects
        if index is None:
            return None
        try:
            store = index.get(naming.split_key(key))
        except ValueError:
            return None
        return next(iter(store), None) if store is not None else None

    def app_lookup(self, namespace: str, app_name: str) -> AppAvailability:
        if self.apps is None:
            return AppAvailability.MISSING
        return app_lookup(self.apps)(namespace, app_name)


@dataclass
class OperatorMemo:
    """The operator's memo for one leadership term (kopf hands each object a shallow copy)."""

    reconciliation: Reconciliation
    credentials: Callable[[], kopf.ConnectionInfo]
    recorder: EventRecorder
    indexes: Indexes = field(default_factory=Indexes)


def view(body: kopf.Body) -> ObjectView:
    meta = body.metadata
    return ObjectView(
        namespace=meta.namespace or "",
        name=meta.name or "",
        generation=meta.get("generation"),
        spec=copy.deepcopy(dict(body.spec)),
        status=copy.deepcopy(dict(body.status)),
        annotations=dict(meta.annotations),
        deleting=meta.deletion_timestamp is not None,
    )


def reference(body: kopf.Body) -> ObjectRef:
    return object_ref(str(body.get("apiVersion", "")), str(body.get("kind", "")), body.metadata)


def poster(recorder: EventRecorder, body: kopf.Body) -> Post:
    ref = reference(body)

    def post(*, warning: bool, reason: str, message: str) -> None:
        recorder.post(ref, warning=warning, reason=reason, message=message)

    return post


def app_lookup(index: AppIndex) -> jobs.AppLookup:
    def lookup(namespace: str, app_name: str) -> AppAvailability:
        store = index.get((namespace, app_name))
        return apps.app_availability(next(iter(store), None) if store is not None else None)

    return lookup


def jobs_of(index: JobsByApp, body: kopf.Body) -> list[str]:
    store = index.get((body.metadata.namespace or "", body.metadata.name or ""))
    return sorted(store) if store is not None else []


def known(body: kopf.Body) -> Known:
    return Known(view(body), reference(body))


def register_handlers(registry: kopf.OperatorRegistry) -> None:
    """Register every handler of the controller into `registry`.

    Indexes and the stop flag reach the handlers through kopf's extra kwargs
    (`app_index`, `jobs_by_app`, `stopped`).
    """

    @kopf.on.startup(registry=registry, id="configure")
    def configure(settings: kopf.OperatorSettings, memo: OperatorMemo, **kw: Any) -> None:
        indexes = memo.indexes
        indexes.apps, indexes.jobs = kw["app_index"], kw["job_index"]
        indexes.app_objects = kw["app_objects"]
        settings.persistence.finalizer = FINALIZER
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
            prefix=ANNOTATION_PREFIX
        )
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
        )
        # ZooKeeper's election is the only fencing authority: no kopf peering.
        settings.peering.standalone = True
        # Events are posted by the controller's recorder only (aggregated, leader-gated);
        # kopf's own handler failures stay in the log, where retries cannot spam objects.
        settings.posting.enabled = False
        # Stopping is always requested through the stop flag; never kill the process.
        settings.process.ultimate_exiting_timeout = None
        # Renew watches now and then: a connection that silently died is noticed.
        settings.watching.server_timeout = WATCH_SERVER_TIMEOUT
        settings.watching.client_timeout = WATCH_SERVER_TIMEOUT + 30

    @kopf.on.login(registry=registry, id="credentials")
    def credentials(memo: OperatorMemo, **_: Any) -> kopf.ConnectionInfo:
        return memo.credentials()

    @kopf.index(GROUP, VERSION, APPS, registry=registry, id="app_index")
    def app_index(body: kopf.Body, **_: Any) -> dict[tuple[str, str], apps.AppSummary]:
        app = view(body)
        desired = apps.desired_app(app.namespace, app.name, app.generation, app.spec)
        return {(app.namespace, app.name): apps.summarize(desired, deleting=app.deleting)}

    @kopf.index(GROUP, VERSION, APPS, registry=registry, id="app_objects")
    def app_objects(body: kopf.Body, **_: Any) -> dict[tuple[str, str], Known]:
        return {(body.metadata.namespace or "", body.metadata.name or ""): known(body)}

    @kopf.index(GROUP, VERSION, JOBS, registry=registry, id="job_index")
    def job_index(body: kopf.Body, **_: Any) -> dict[tuple[str, str], Known]:
        return {(body.metadata.namespace or "", body.metadata.name or ""): known(body)}

    @kopf.index(GROUP, VERSION, JOBS, registry=registry, id="jobs_by_app")
    def jobs_by_app(body: kopf.Body, **_: Any) -> dict[tuple[str, str], str]:
        app_name = body.spec.get("appName")
        if not isinstance(app_name, str):
            return {}
        return {(body.metadata.namespace or "", app_name): body.metadata.name or ""}

    # Annotations that ask for something: trigger (job), reconcile (app).
    @kopf.on.event(GROUP, VERSION, APPS, registry=registry, id="app-annotations")
    def app_annotations(memo: OperatorMemo, body: kopf.Body, **_: Any) -> None:
        memo.reconciliation.annotations_seen(ObjectKind.APP, view(body))

    @kopf.on.event(GROUP, VERSION, JOBS, registry=registry, id="job-annotations")
    def job_annotations(memo: OperatorMemo, body: kopf.Body, **_: Any) -> None:
        memo.reconciliation.annotations_seen(ObjectKind.JOB, view(body))

    # CloudApp
    @kopf.on.resume(GROUP, VERSION, APPS, registry=registry, id="app-resume")
    @kopf.on.create(GROUP, VERSION, APPS, registry=registry, id="app-create")
    @kopf.on.update(GROUP, VERSION, APPS, registry=registry, id="app-update")
    async def app_changed(memo: OperatorMemo, body: kopf.Body, **kw: Any) -> None:
        await memo.reconciliation.app_changed(
            view(body), jobs_of(kw["jobs_by_app"], body), poster(memo.recorder, body)
        )

    @kopf.on.delete(GROUP, VERSION, APPS, registry=registry, id="app-delete")
    async def app_deleted(memo: OperatorMemo, body: kopf.Body, **kw: Any) -> None:
        await memo.reconciliation.app_deleted(view(body), jobs_of(kw["jobs_by_app"], body))
        memo.recorder.book.forget(reference(body).uid)

    # CloudJob
    @kopf.on.resume(GROUP, VERSION, JOBS, registry=registry, id="job-resume")
    @kopf.on.create(GROUP, VERSION, JOBS, registry=registry, id="job-create")
    @kopf.on.update(GROUP, VERSION, JOBS, registry=registry, id="job-update")
    async def job_changed(memo: OperatorMemo, body: kopf.Body, **kw: Any) -> None:
        await memo.reconciliation.job_changed(
            view(body), app_lookup(kw["app_index"]), poster(memo.recorder, body)
        )

    @kopf.on.delete(GROUP, VERSION, JOBS, registry=registry, id="job-delete")
    async def job_deleted(memo: OperatorMemo, body: kopf.Body, **_: Any) -> None:
        await memo.reconciliation.job_deleted(view(body))
        memo.recorder.book.forget(reference(body).uid)
