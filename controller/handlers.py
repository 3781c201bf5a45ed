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
`drift`). The event handlers keep the memo's `indexes` (`reconcilers.indexing`, not
kopf's indexes), which let jobs see their app, apps find their jobs, and the refresher
and the sweeps read each object as the watch last showed it (`Known`). Used by
`controller.app`, the leader-gated controller.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import kopf

from controller import resources
from controller.diffbase import TrimmedDiffBaseStorage
from controller.dirty import ObjectKind
from controller.reconcilers import apps, jobs
from controller.reconcilers.handling import ObjectView, Post, Reconciliation
from controller.reconcilers.indexing import ObjectIndex
from controller.reconcilers.kubeapi import bounded_session
from controller.reconcilers.recording import EventRecorder, ObjectRef, object_ref
from controller.reconcilers.refreshing import Known

GROUP, VERSION = resources.GROUP, resources.VERSION
APPS, JOBS = "cloudapps", "cloudjobs"
FINALIZER = f"{GROUP}/finalizer"
ANNOTATION_PREFIX = GROUP
EVENT_COMPONENT = "cloudjob-controller"
USER_AGENT = EVENT_COMPONENT
WATCH_SERVER_TIMEOUT = 300
# kopf's connections beside its watches: its handlers' patches wait for a free one.
HANDLER_CONNECTIONS = 32
# Objects whose events kopf handles at once (per-object workers); the rest wait.
KOPF_WORKERS = 200


@dataclass
class OperatorMemo:
    """The operator's memo for one leadership term (kopf hands each object a shallow copy)."""

    reconciliation: Reconciliation
    credentials: Callable[[], kopf.ConnectionInfo]
    recorder: EventRecorder
    # The watch streams kopf holds open: two kinds, in each watched namespace or in all.
    watches: int = 2
    indexes: ObjectIndex = field(default_factory=ObjectIndex)


# The annotations the controller acts on; the rest (kubectl's last applied
# configuration, kopf's bookkeeping) would only weigh on the object index.
ACTED_ON_ANNOTATIONS = (jobs.TRIGGER_ANNOTATION, apps.RECONCILE_ANNOTATION)


def view(body: kopf.Body) -> ObjectView:
    """The object for a change handler, which hands it on: spec and status copied off
    kopf's body."""
    return _view(body, copy.deepcopy)


def glance(body: kopf.Body) -> ObjectView:
    """The object for a watch event, read at once and not kept: its spec and status are
    kopf's own (`Known` copies what the index keeps as it packs it)."""
    return _view(body, lambda part: part)


def _view(body: kopf.Body, own: Callable[[dict[str, Any]], dict[str, Any]]) -> ObjectView:
    meta = body.metadata
    annotations = meta.annotations
    return ObjectView(
        namespace=meta.namespace or "",
        name=meta.name or "",
        generation=meta.get("generation"),
        spec=own(dict(body.spec)),
        status=own(dict(body.status)),
        annotations={k: annotations[k] for k in ACTED_ON_ANNOTATIONS if k in annotations},
        deleting=meta.deletion_timestamp is not None,
    )


def reference(body: kopf.Body) -> ObjectRef:
    return object_ref(str(body.get("apiVersion", "")), str(body.get("kind", "")), body.metadata)


def poster(recorder: EventRecorder, body: kopf.Body) -> Post:
    ref = reference(body)

    def post(*, warning: bool, reason: str, message: str) -> None:
        recorder.post(ref, warning=warning, reason=reason, message=message)

    return post


def app_entry(body: kopf.Body) -> tuple[tuple[str, str], apps.AppSummary, Known]:
    """What the object index keeps of a CloudApp (from a watch event or a listing)."""
    app = glance(body)
    desired = apps.desired_app(app.namespace, app.name, app.generation, app.spec)
    summary = apps.summarize(desired, deleting=app.deleting)
    return (app.namespace, app.name), summary, Known(app, reference(body))


def register_handlers(registry: kopf.OperatorRegistry) -> None:
    """Register every handler of the controller into `registry`.

    Indexes and the stop flag reach the handlers through kopf's extra kwargs
    (`app_index`, `jobs_by_app`, `stopped`).
    """

    @kopf.on.startup(registry=registry, id="configure")
    async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.finalizer = FINALIZER
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
            prefix=ANNOTATION_PREFIX
        )
        settings.persistence.diffbase_storage = TrimmedDiffBaseStorage(
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
        # kopf runs a worker per object with events, kept 5 s after its last event, with
        # no bound: a leader starting with 10,000 objects ran 10,000 at once, and the
        # memory they took stayed with the process. Workers beyond the bound wait; no
        # handler waits for another object's worker.
        settings.queueing.worker_limit = KOPF_WORKERS
        settings.queueing.idle_timeout = 0.5

    @kopf.on.login(registry=registry, id="credentials")
    async def credentials(memo: OperatorMemo, **_: Any) -> kopf.AiohttpSession:
        # kopf's own session would open a connection per concurrent request, unbounded
        # (over a thousand at 10,000 objects). Each watch holds one; handlers share the
        # rest. Created here, on the operator's loop; kopf closes it on a new login.
        info = memo.credentials()
        return kopf.AiohttpSession(
            server=info.server,
            default_namespace=info.default_namespace,
            expiration=info.expiration,
            priority=info.priority,
            aiohttp_session=bounded_session(info, memo.watches + HANDLER_CONNECTIONS),
        )

    # Every watch event, before the object's change handlers: index it, then see
    # whether its annotations ask for something (trigger on a job, reconcile on an app).
    # Every handler is a coroutine: kopf runs a plain function on a worker thread, and
    # the object index and the dirty queue belong to the event loop.
    @kopf.on.event(GROUP, VERSION, APPS, registry=registry, id="app-seen")
    async def app_seen(memo: OperatorMemo, body: kopf.Body, type: str | None, **_: Any) -> None:
        key, summary, known = app_entry(body)
        if type == "DELETED":
            memo.indexes.forget_app(key)
        else:
            memo.indexes.put_app(key, summary, known)
        memo.reconciliation.annotations_seen(ObjectKind.APP, glance(body))

    @kopf.on.event(GROUP, VERSION, JOBS, registry=registry, id="job-seen")
    async def job_seen(memo: OperatorMemo, body: kopf.Body, type: str | None, **_: Any) -> None:
        job = glance(body)
        key = (job.namespace, job.name)
        if type == "DELETED":
            memo.indexes.forget_job(key)
        else:
            app_name = body.spec.get("appName")
            app_name = app_name if isinstance(app_name, str) else None
            memo.indexes.put_job(key, app_name, Known(job, reference(body)))
        memo.reconciliation.annotations_seen(ObjectKind.JOB, job)

    # CloudApp
    @kopf.on.resume(GROUP, VERSION, APPS, registry=registry, id="app-resume")
    @kopf.on.create(GROUP, VERSION, APPS, registry=registry, id="app-create")
    @kopf.on.update(GROUP, VERSION, APPS, registry=registry, id="app-update")
    async def app_changed(memo: OperatorMemo, body: kopf.Body, **kw: Any) -> None:
        app = view(body)
        await memo.reconciliation.app_changed(
            app, memo.indexes.jobs_of(app.namespace, app.name), poster(memo.recorder, body)
        )

    @kopf.on.delete(GROUP, VERSION, APPS, registry=registry, id="app-delete")
    async def app_deleted(memo: OperatorMemo, body: kopf.Body, **_: Any) -> None:
        app = view(body)
        await memo.reconciliation.app_deleted(app, memo.indexes.jobs_of(app.namespace, app.name))
        memo.recorder.book.forget(reference(body).uid)

    # CloudJob
    @kopf.on.resume(GROUP, VERSION, JOBS, registry=registry, id="job-resume")
    @kopf.on.create(GROUP, VERSION, JOBS, registry=registry, id="job-create")
    @kopf.on.update(GROUP, VERSION, JOBS, registry=registry, id="job-update")
    async def job_changed(memo: OperatorMemo, body: kopf.Body, **kw: Any) -> None:
        await memo.indexes.apps_listed.wait()  # not before its app can be known
        # A new leader resumes every job: those marks must not go ahead of a user's apply.
        await memo.reconciliation.job_changed(
            view(body),
            memo.indexes.app_lookup,
            poster(memo.recorder, body),
            urgent=kw.get("reason") != kopf.Reason.RESUME,
        )

    @kopf.on.delete(GROUP, VERSION, JOBS, registry=registry, id="job-delete")
    async def job_deleted(memo: OperatorMemo, body: kopf.Body, **_: Any) -> None:
        await memo.reconciliation.job_deleted(view(body))
        memo.recorder.book.forget(reference(body).uid)
