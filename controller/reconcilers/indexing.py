"""The objects as the watch last showed them: apps, jobs, and the jobs of each app.

`ObjectIndex` is fed by the kopf event handlers of both kinds (every watch event,
before the object's change handlers run; `handlers.register_handlers`) and read by the
handlers (a job's app, an app's jobs), the status refresher and the drift and orphan
sweeps. Keys are (namespace, name).

Why not kopf's own indexes: until every object of the first listing has been indexed,
kopf holds each object's handlers behind one readiness flag that every object adds
itself to and every waiting object re-checks, so a leader that starts with N objects
does work growing as N² before it handles the first one (minutes at 5,000 objects).
This index has one gate instead, on apps only: a job must not take its app for missing
(which unschedules it) just because the app's event has not been handled yet. So the
term lists the CloudApps once before anything reads a job's app (`seed_apps`, then
`apps_listed` is set; the job handlers and the refresher wait for it); apps created
later come through their events. Asyncio-loop only (kopf's loop); one per leadership
term.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

from controller import naming
from controller.dirty import ObjectKind
from controller.reconcilers import apps
from controller.reconcilers.refreshing import Known
from controller.reconcilers.status import AppAvailability

Key = tuple[str, str]


@dataclass
class ObjectIndex:
    app_summaries: dict[Key, apps.AppSummary] = field(default_factory=dict)
    app_objects: dict[Key, Known] = field(default_factory=dict)
    job_objects: dict[Key, Known] = field(default_factory=dict)
    # (namespace, app name) → names of the jobs naming that app, and the reverse.
    jobs_by_app: dict[Key, dict[str, None]] = field(default_factory=dict)
    app_of_job: dict[Key, str] = field(default_factory=dict)
    apps_listed: asyncio.Event = field(default_factory=asyncio.Event)
    # Apps whose deletion was seen before the listing was taken in: not to be revived.
    _apps_gone: set[Key] = field(default_factory=set)

    # fed by the event handlers -----------------------------------------------------------
    def put_app(self, key: Key, summary: apps.AppSummary, known: Known) -> None:
        self.app_summaries[key] = summary
        self.app_objects[key] = known

    def forget_app(self, key: Key) -> None:
        self.app_summaries.pop(key, None)
        self.app_objects.pop(key, None)
        if not self.apps_listed.is_set():
            self._apps_gone.add(key)

    def seed_apps(self, listed: Iterable[tuple[Key, apps.AppSummary, Known]]) -> None:
        """The apps of the term's first listing; an app an event has shown already is
        kept as the event showed it (it is newer)."""
        for key, summary, known in listed:
            if key not in self.app_objects and key not in self._apps_gone:
                self.put_app(key, summary, known)
        self._apps_gone.clear()
        self.apps_listed.set()

    def put_job(self, key: Key, app_name: str | None, known: Known) -> None:
        self.job_objects[key] = known
        if self.app_of_job.get(key) != app_name:
            self._unlink(key)
            if app_name is not None:
                self.app_of_job[key] = app_name
                self.jobs_by_app.setdefault((key[0], app_name), {})[key[1]] = None

    def forget_job(self, key: Key) -> None:
        self.job_objects.pop(key, None)
        self._unlink(key)

    def _unlink(self, key: Key) -> None:
        app_name = self.app_of_job.pop(key, None)
        if app_name is None:
            return
        names = self.jobs_by_app.get((key[0], app_name))
        if names is not None:
            names.pop(key[1], None)
            if not names:
                del self.jobs_by_app[(key[0], app_name)]

    # read ------------------------------------------------------------------------------
    def jobs_of(self, namespace: str, app_name: str) -> list[str]:
        """Names of the jobs of `namespace` that name the app, sorted."""
        return sorted(self.jobs_by_app.get((namespace, app_name), {}))

    def app_lookup(self, namespace: str, app_name: str) -> AppAvailability:
        return apps.app_availability(self.app_summaries.get((namespace, app_name)))

    def app_keys(self) -> list[Key]:
        return list(self.app_objects)

    def job_keys(self) -> list[Key]:
        return list(self.job_objects)

    def objects(self) -> list[tuple[ObjectKind, str]]:
        """Every object known now, apps first."""
        return [(ObjectKind.APP, naming.object_key(*k)) for k in self.app_objects] + [
            (ObjectKind.JOB, naming.object_key(*k)) for k in self.job_objects
        ]

    def known(self, kind: ObjectKind, key: str) -> Known | None:
        objects = self.job_objects if kind is ObjectKind.JOB else self.app_objects
        try:
            return objects.get(naming.split_key(key))
        except ValueError:
            return None
