"""What happens when a CloudApp or CloudJob changes, is refreshed or goes away.

One `Reconciliation` per leadership term orchestrates the reconcilers for the kopf
change handlers and for the status refresher: it serialises work per object, calls the
scheduling core, decides triggers and computes the status patch to write. It knows
kopf only through its two error types (`PermanentError` for bad input, with a
condition and a warning event naming the field; `TemporaryError` when the core asks to
retry later) and through the `Post` callable it is given.

A change (create, update, resume) applies the desired state and marks the object dirty
as urgent, so the refresher writes its status at once. A refresh (`job_refresh`,
`app_refresh`, called by the refresher for each dirty object) is level-triggered: it
reads the object as the watch last showed it, re-applies the desired state when asked
to (the app changed, the drift sweep came by), and returns the status patch — None
when nothing differs. Whether a trigger value has run is the scheduling core's answer
(it records the value with the run, in ZooKeeper); `status.lastTrigger` shows the value
handled, and spares asking the core again about it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import kopf

from controller import naming
from controller.dirty import DirtyQueue, ObjectKind
from controller.operations import (
    ReconcileKind,
    SchedulingError,
    SchedulingOperations,
    TriggerResult,
)
from controller.reconcilers import apps, jobs
from controller.reconcilers.mailboxes import Mailboxes
from controller.reconcilers.status import AppAvailability, Counted

log = logging.getLogger(__name__)
_T = TypeVar("_T")

RETRY_DELAY = 2.0


class Post(Protocol):
    """Posts one Kubernetes Event about the object being handled."""

    def __call__(self, *, warning: bool, reason: str, message: str) -> None: ...


@dataclass(frozen=True)
class ObjectView:
    """The parts of a CloudApp/CloudJob object the reconcilers read (of its annotations,
    those the controller acts on)."""

    namespace: str
    name: str
    generation: int | None
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    annotations: Mapping[str, str]
    deleting: bool = False

    @property
    def key(self) -> str:
        return naming.object_key(self.namespace, self.name)


@dataclass
class Reconciliation:
    """The reconcilers' entry points for one leadership term (see the module docstring).

    `triggers`: job key → the trigger value acted on in this term. The private maps hold,
    per job, its run counters' baseline and when it was last triggered. `dirty` is the
    scheduling core's queue of objects whose status is out of date.
    """

    ops: SchedulingOperations
    dirty: DirtyQueue = field(default_factory=DirtyQueue)
    leading: Callable[[], bool] = field(default=lambda: True)
    """Whether this term still leads: once it does not, no status is written."""
    mailboxes: Mailboxes = field(default_factory=Mailboxes)
    triggers: dict[str, str] = field(default_factory=dict)
    reconciles: dict[str, str] = field(default_factory=dict)
    """App key → the reconcile annotation value acted on in this term."""
    _counted: dict[str, Counted] = field(default_factory=dict)
    _triggered_at: dict[str, datetime] = field(default_factory=dict)

    # CloudJob
    async def job_changed(
        self, job: ObjectView, apps_now: jobs.AppLookup, post: Post, *, urgent: bool = True
    ) -> None:
        """Create/update/resume: apply, then have the status written (`urgent`: before
        the backlog of busy objects); invalid input fails permanently."""
        slot = job_slot(job.key)
        async with self.mailboxes.lock(slot):
            desired = jobs.desired_job(job.namespace, job.name, job.generation, job.spec, apps_now)
            await _retryable(jobs.apply_job(self.ops, desired))
            await self._trigger(job, desired, post)
            self.dirty.mark(ObjectKind.JOB, job.key, urgent=urgent)
        if desired.facts.problems:
            message = "; ".join(desired.facts.problems)
            post(warning=True, reason="InvalidSpec", message=message)
            raise kopf.PermanentError(f"the CloudJob's spec is invalid: {message}")
        if desired.facts.app is AppAvailability.MISSING:
            message = (
                f"spec.appName: CloudApp '{desired.facts.app_name}' does not exist in namespace "
                f"'{job.namespace}'; create it or set spec.appName to an existing CloudApp "
                "(the job is scheduled as soon as the app exists)"
            )
            post(warning=True, reason="AppMissing", message=message)
            raise kopf.PermanentError(message)

    async def job_refresh(
        self, job: ObjectView, apps_now: jobs.AppLookup, post: Post
    ) -> dict[str, Any] | None:
        """The job's status patch (None: nothing to write), re-applying its desired
        state first when that was asked for."""
        if job.deleting:
            return None
        slot = job_slot(job.key)
        async with self.mailboxes.lock(slot):
            desired = jobs.desired_job(job.namespace, job.name, job.generation, job.spec, apps_now)
            if self.mailboxes.take_reapply(slot):
                try:
                    await jobs.apply_job(self.ops, desired)
                except SchedulingError as error:
                    self.mailboxes.request_reapply(slot)
                    log.warning("job %s: re-applying its desired state failed: %s", job.key, error)
            await self._trigger(job, desired, post)
            return self._job_status(job, desired)

    async def job_deleted(self, job: ObjectView) -> None:
        slot = job_slot(job.key)
        async with self.mailboxes.lock(slot):
            await _retryable(self.ops.unschedule(job.key))
            self.mailboxes.forget(slot)
            self.triggers.pop(job.key, None)
            self._counted.pop(job.key, None)
            self._triggered_at.pop(job.key, None)
            self.dirty.forget(ObjectKind.JOB, job.key)

    # CloudApp
    async def app_changed(self, app: ObjectView, app_jobs: Iterable[str], post: Post) -> None:
        slot = app_slot(app.key)
        async with self.mailboxes.lock(slot):
            desired = apps.desired_app(app.namespace, app.name, app.generation, app.spec)
            await _retryable(apps.apply_app(self.ops, desired))
            if desired.definition is not None:
                await self._reconcile(app, post)
            self.dirty.mark(ObjectKind.APP, app.key, urgent=True)
        self._reapply_jobs(app.namespace, app_jobs)
        if desired.problems:
            message = "; ".join(desired.problems)
            post(warning=True, reason="InvalidSpec", message=message)
            raise kopf.PermanentError(f"the CloudApp's spec is invalid: {message}")

    async def app_refresh(self, app: ObjectView) -> dict[str, Any] | None:
        if app.deleting:
            return None
        slot = app_slot(app.key)
        async with self.mailboxes.lock(slot):
            desired = apps.desired_app(app.namespace, app.name, app.generation, app.spec)
            if self.mailboxes.take_reapply(slot):
                try:
                    await apps.apply_app(self.ops, desired)
                except SchedulingError as error:
                    self.mailboxes.request_reapply(slot)
                    log.warning("app %s: re-applying its desired state failed: %s", app.key, error)
            return self._app_status(desired, app.status, app.key)

    async def app_deleted(self, app: ObjectView, app_jobs: Iterable[str]) -> None:
        slot = app_slot(app.key)
        async with self.mailboxes.lock(slot):
            await _retryable(apps.remove_app(self.ops, app.namespace, app.name))
            self.mailboxes.forget(slot)
            self.dirty.forget(ObjectKind.APP, app.key)
        self._reapply_jobs(app.namespace, app_jobs)

    # orphans: state whose object is gone without passing through its finalizer
    async def remove_orphan(
        self, is_job: bool, key: str, gone: Callable[[], Awaitable[bool]]
    ) -> bool:
        """Remove the job (or app) `key` from the core if `gone()` still says its object
        does not exist; asked under the object's lock, so no handler of a new object of
        that name runs in between. True if removed."""
        slot = job_slot(key) if is_job else app_slot(key)
        async with self.mailboxes.lock(slot):
            if not await gone():
                return False
            if is_job:
                await self.ops.unschedule(key)
                self.triggers.pop(key, None)
                self._counted.pop(key, None)
                self._triggered_at.pop(key, None)
            else:
                await self.ops.remove_app(key)
            self.mailboxes.forget(slot)
            self.dirty.forget(ObjectKind.JOB if is_job else ObjectKind.APP, key)
            return True

    def busy(self, kind: ObjectKind, key: str) -> bool:
        """Whether a handler is working on the object now."""
        return self.mailboxes.lock(_slot(kind, key)).locked()

    def annotations_seen(self, kind: ObjectKind, view: ObjectView) -> None:
        """Any change of the object was seen. A trigger (job) or reconcile (app) value
        not acted on yet is a request: the object is refreshed at once, which acts on
        it. kopf's update handlers never hear of it: annotations are not in the part
        of the object whose changes they are called for."""
        if view.deleting:
            return
        if kind is ObjectKind.JOB:
            handled = self.triggers.get(view.key) or view.status.get("lastTrigger")
            pending = view.annotations.get(jobs.TRIGGER_ANNOTATION) not in (None, handled)
        else:
            handled = self.reconciles.get(view.key) or view.status.get("lastReconcile")
            pending = apps.reconcile_request(view.annotations, handled) is not None
        if pending:
            self.dirty.mark(kind, view.key, urgent=True)

    def request_reapply(self, kind: ObjectKind, key: str) -> None:
        """The object's next refresh re-applies its desired state; mark it dirty."""
        self.mailboxes.request_reapply(_slot(kind, key))
        self.dirty.mark(kind, key)

    # internals
    def _reapply_jobs(self, namespace: str, names: Iterable[str]) -> None:
        """The app of these jobs changed: their next refresh re-applies them."""
        for name in names:
            self.request_reapply(ObjectKind.JOB, naming.object_key(namespace, name))

    async def _trigger(self, job: ObjectView, desired: jobs.DesiredJob, post: Post) -> None:
        # A value in status was handled (status is written after the core answered); any
        # other value goes to the core, which alone knows whether it already ran.
        handled = self.triggers.get(job.key) or job.status.get("lastTrigger")
        decision = jobs.trigger_decision(job.annotations, handled, desired)
        if decision.verdict is jobs.TriggerVerdict.NONE or decision.value is None:
            return
        if decision.verdict is jobs.TriggerVerdict.RUN:
            result = await _retryable(self.ops.trigger(job.key, decision.value))
            if result is TriggerResult.RAN:
                self._triggered_at[job.key] = datetime.now(UTC)
                post(
                    warning=False,
                    reason="Triggered",
                    message=f"one run requested ({decision.value})",
                )
            else:
                log.info(
                    "job %s: trigger %r already ran (handled before status recorded it)",
                    job.key,
                    decision.value,
                )
        else:
            post(
                warning=True,
                reason="TriggerRefused",
                message=f"trigger {decision.value!r} not run: {decision.reason}",
            )
        self.triggers[job.key] = decision.value

    async def _reconcile(self, app: ObjectView, post: Post) -> None:
        """A new value of the app's reconcile annotation: one on-demand reconciliation."""
        handled = self.reconciles.get(app.key) or app.status.get("lastReconcile")
        request = apps.reconcile_request(app.annotations, handled)
        if request is None:
            return
        kind, value = request
        asked = await _retryable(self.ops.reconcile(kind, app.key))
        what = "every task it knows" if kind is ReconcileKind.IMPLICIT else f"{asked} task(s)"
        post(
            warning=False,
            reason="Reconciling",
            message=f"{kind.value} reconciliation ({value}): the Mesos master was asked "
            f"about {what}",
        )
        self.reconciles[app.key] = value

    def _app_status(
        self, desired: apps.DesiredApp, current: Mapping[str, Any], key: str
    ) -> dict[str, Any] | None:
        if not self.leading():
            return None
        return apps.refresh_app_status(
            self.ops, desired, current, last_reconcile=self.reconciles.get(key)
        )

    def _job_status(self, job: ObjectView, desired: jobs.DesiredJob) -> dict[str, Any] | None:
        """The status patch, None when nothing changed — or when this term no longer
        leads: a core that stopped would describe every job as unscheduled."""
        if not self.leading():
            return None
        patch, self._counted[job.key] = jobs.refresh_job_status(
            self.ops,
            desired,
            job.status,
            last_trigger=self.triggers.get(job.key),
            baseline=self._counted.get(job.key),
            triggered=self._triggered_at.get(job.key),
        )
        return patch


def job_slot(key: str) -> str:
    return f"CloudJob/{key}"


def app_slot(key: str) -> str:
    return f"CloudApp/{key}"


def _slot(kind: ObjectKind, key: str) -> str:
    return job_slot(key) if kind is ObjectKind.JOB else app_slot(key)


async def _retryable(step: Awaitable[_T]) -> _T:
    """Run one call into the core; its 'retry later' becomes kopf's TemporaryError."""
    try:
        return await step
    except SchedulingError as error:
        raise kopf.TemporaryError(
            f"the scheduler asked to retry: {error}", delay=RETRY_DELAY
        ) from error
