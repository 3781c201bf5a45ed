"""An in-memory scheduling core for the reconcilers' orchestration tests.

`SchedulingOperations` is a Python seam, not a wire: tests of what the reconcilers decide
to call (and when) use this stand-in, which records every call and holds definitions
the way the real core does. Whole-stack behaviour is tested against the real core.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from controller.definitions import AppDefinition, JobDefinition
from controller.operations import ExecutorRuntime, JobRuntime, SchedulingError, TriggerResult

NEXT_FIRE = datetime(2099, 1, 1, tzinfo=UTC)


@dataclass
class MemoryCore:
    jobs: dict[str, JobDefinition] = field(default_factory=dict)
    apps: dict[str, AppDefinition] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    triggered: list[str] = field(default_factory=list)
    last_trigger: dict[str, str] = field(default_factory=dict)
    leading: bool = True

    def _check(self) -> None:
        if not self.leading:
            raise SchedulingError("not the leader")

    async def put_app(self, app: AppDefinition) -> None:
        self._check()
        self.calls.append(("put_app", app.key))
        self.apps[app.key] = app

    async def remove_app(self, app_key: str) -> None:
        self._check()
        self.calls.append(("remove_app", app_key))
        self.apps.pop(app_key, None)

    async def disable_app(self, app_key: str) -> None:
        self._check()
        self.calls.append(("disable_app", app_key))

    async def enable_app(self, app_key: str) -> None:
        self._check()
        self.calls.append(("enable_app", app_key))

    async def schedule(self, job: JobDefinition) -> None:
        self._check()
        self.calls.append(("schedule", job.key))
        self.jobs[job.key] = job

    async def unschedule(self, job_key: str) -> None:
        self._check()
        self.calls.append(("unschedule", job_key))
        self.jobs.pop(job_key, None)
        self.last_trigger.pop(job_key, None)

    async def disable_job(self, job_key: str) -> None:
        self._check()
        self.calls.append(("disable_job", job_key))

    async def enable_job(self, job_key: str) -> None:
        self._check()
        self.calls.append(("enable_job", job_key))

    async def trigger(self, job_key: str, token: str) -> TriggerResult:
        self._check()
        self.calls.append(("trigger", job_key))
        if self.last_trigger.get(job_key) == token:
            return TriggerResult.ALREADY_HANDLED
        self.last_trigger[job_key] = token
        self.triggered.append(job_key)
        return TriggerResult.RAN

    def job_runtime(self, job_key: str) -> JobRuntime:
        scheduled = job_key in self.jobs and self.leading
        # A held job's cron has a next fire; which one does not matter here.
        return JobRuntime(
            job_key=job_key, scheduled=scheduled, next_fire_time=NEXT_FIRE if scheduled else None
        )

    def app_executors(self, app_key: str) -> list[ExecutorRuntime]:
        return []

    def job_keys(self) -> frozenset[str]:
        self._check()
        return frozenset(self.jobs)

    def app_keys(self) -> frozenset[str]:
        self._check()
        return frozenset(self.apps)
