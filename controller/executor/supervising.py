"""The life of every task this executor serves, on one asyncio loop.

`TaskSupervisor` turns launch, kill, trigger and stop requests into task runs and
status updates:

- A launch is planned first (`plans.plan_task`); a task that cannot run is
  reported TASK_ERROR with the reason and nothing else happens — the other tasks
  keep running.
- Transient: TASK_RUNNING, one run, then TASK_FINISHED or TASK_FAILED with the
  exit status or exception text.
- Daemon: TASK_RUNNING, then the task's own `RunClock` decides when runs start
  (never two at once); sampled runs are framed by TASK_RUNNING `BEGIN` and
  `COMPLETE` (with a `RunReport` as data).
- Kill: the task's coroutine is cancelled; that stops its clock and kills the
  job process (SIGTERM, SIGKILL after the grace period), then TASK_KILLED —
  only once the job process is gone, also when the kill is repeated or a stop
  follows (both cancel again).

- Idle: when the last task ends, `on_idle` is called; `retire_if_idle` then lets
  the service exit, and a launch that still arrives is answered TASK_DROPPED (the
  task never ran; the framework launches it again).

At most `workers` job processes run at once; other runs wait for a slot. All
methods run on the loop's thread; the pymesos callbacks hand work over with
`call_soon_threadsafe`. Updates go to the `report` callable (the status sender).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from controller import commandline
from controller.executor import commands, jobhost
from controller.executor.clock import Run, RunClock, sample
from controller.executor.context import JobContext
from controller.executor.environment import ExecutorEnvironment
from controller.executor.messages import BEGIN, COMPLETE, RunReport, Trigger
from controller.executor.outcomes import RunOutcome, outcome_of, start_failure
from controller.executor.plans import (
    DataflowWork,
    PlanError,
    PythonWork,
    ScriptWork,
    TaskPlan,
    plan_task,
    task_id_of,
)
from controller.executor.processes import (
    ProcessSpec,
    finish_despite_cancellation,
    run_process,
)
from controller.executor.reporting import TaskUpdate

logger = logging.getLogger(__name__)

TASK_RUNNING = "TASK_RUNNING"
TASK_FINISHED = "TASK_FINISHED"
TASK_FAILED = "TASK_FAILED"
TASK_KILLED = "TASK_KILLED"
TASK_ERROR = "TASK_ERROR"
TASK_DROPPED = "TASK_DROPPED"
RESULT_FILE = ".last-run-result.json"


class _Event(Enum):
    TRIGGER = "trigger"
    FINISHED = "finished"


@dataclass
class _Task:
    plan: TaskPlan
    directory: Path
    grace: float
    coroutine: asyncio.Task[None] | None = None
    killing: bool = False
    events: collections.deque[_Event] = field(default_factory=collections.deque)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    def post(self, event: _Event) -> None:
        self.events.append(event)
        self.wakeup.set()


class TaskSupervisor:
    def __init__(
        self,
        *,
        environment: ExecutorEnvironment,
        report: Callable[[TaskUpdate], None],
        python: str = sys.executable,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_idle: Callable[[], None] = lambda: None,
    ) -> None:
        self._environment = environment
        self._report = report
        self._python = python
        self._now = now
        self._tasks: dict[str, _Task] = {}
        self._slots = asyncio.Semaphore(environment.workers)
        self._on_idle = on_idle
        self._stopping = False
        # What a launch is answered once the executor is stopping.
        self._refusal = (TASK_KILLED, "the executor is shutting down")

    @property
    def task_ids(self) -> list[str]:
        return list(self._tasks)

    def launch(self, task_info: Mapping[str, Any]) -> None:
        task_id = task_id_of(task_info)
        if task_id in self._tasks:
            logger.warning("task %s is already served here; ignoring the second launch", task_id)
            return
        if self._stopping:
            self._send(task_id, *self._refusal)
            return
        try:
            plan = plan_task(task_info)
        except PlanError as error:
            logger.error("task %s cannot run: %s", task_id, error)
            self._send(task_id, TASK_ERROR, str(error))
            return
        except Exception as error:  # a defect here must cost this task only
            logger.exception("task %s could not be planned", task_id)
            self._send(task_id, TASK_ERROR, f"executor error while reading the task: {error!r}")
            return
        directory = self._environment.tasks_dir / task_id
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            self._send(task_id, TASK_ERROR, f"cannot create task directory {directory}: {error}")
            return
        task = _Task(
            plan=plan,
            directory=directory,
            grace=plan.grace_seconds
            if plan.grace_seconds is not None
            else self._environment.grace_seconds,
        )
        self._tasks[task_id] = task
        task.coroutine = asyncio.create_task(self._serve(task), name=f"task {task_id}")

    def kill(self, task_id: str) -> None:
        task = self._tasks.get(task_id)
        if task is None or task.coroutine is None:
            logger.info("kill of task %s, which is not running here; nothing to do", task_id)
            return
        if task.killing:
            logger.info("task %s is being killed already", task_id)
            return
        logger.info("killing task %s (grace %.1f s)", task_id, task.grace)
        task.killing = True
        task.coroutine.cancel()

    def trigger(self, message: Trigger) -> int:
        """Ask matching daemon tasks for a run now; returns how many were asked."""
        asked = 0
        for task_id, task in self._tasks.items():
            if (
                task.plan.is_daemon
                and task.plan.payload.sharding.job_name == message.job_name
                and message.task_id in (None, task_id)
            ):
                task.post(_Event.TRIGGER)
                asked += 1
        if not asked:
            logger.warning(
                "trigger for job %s%s matches no daemon task of this executor",
                message.job_name,
                f" task {message.task_id}" if message.task_id else "",
            )
        return asked

    def retire_if_idle(self) -> bool:
        """With no task here, stop taking tasks (the executor exits); False otherwise.

        A launch that Mesos sent before it learnt the executor is going gets TASK_DROPPED:
        its run never started, so the framework queues it again."""
        if self._tasks or self._stopping:
            return False
        self._stopping = True
        self._refusal = (TASK_DROPPED, "the executor was exiting after being idle; launch again")
        return True

    async def stop(self, grace: float | None = None) -> None:
        """Kill every task (each reports TASK_KILLED) and refuse new ones."""
        self._stopping = True
        running = list(self._tasks.values())
        for task in running:
            if grace is not None:
                task.grace = min(task.grace, grace)
            if task.coroutine is not None and not task.killing:
                task.killing = True
                task.coroutine.cancel()
        await asyncio.gather(
            *(task.coroutine for task in running if task.coroutine is not None),
            return_exceptions=True,
        )

    async def _serve(self, task: _Task) -> None:
        plan = task.plan
        self._send(plan.task_id, TASK_RUNNING)
        try:
            if plan.is_daemon:
                await self._serve_daemon(task)
            else:
                run = Run(fire_time=plan.payload.sharding.fire_time)
                outcome = await self._run(task, run, on_start=None)
                self._send(
                    plan.task_id,
                    TASK_FINISHED if outcome.succeeded else TASK_FAILED,
                    outcome.detail,
                )
        except asyncio.CancelledError:
            self._send(plan.task_id, TASK_KILLED, "killed")
        except Exception as error:
            logger.exception("task %s failed in the executor", plan.task_id)
            self._send(plan.task_id, TASK_FAILED, f"executor error: {error}")
        finally:
            del self._tasks[plan.task_id]
            if not self._tasks:
                self._on_idle()

    async def _serve_daemon(self, task: _Task) -> None:
        assert task.plan.schedule is not None
        job = task.plan.payload.job
        clock = RunClock(schedule=task.plan.schedule, misfire=job.misfire)
        state = clock.begin(self._now())
        current: asyncio.Task[None] | None = None
        unreported = 0
        try:
            while True:
                delay = clock.seconds_until_wake(state, self._now())
                # Not asyncio.wait_for: on Python 3.11 it swallows a kill (cancellation)
                # that lands while the wakeup event is being set.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await task.wakeup.wait()
                task.wakeup.clear()
                now = self._now()
                runs: list[Run | None] = []
                while task.events:
                    event = task.events.popleft()
                    if event is _Event.TRIGGER:
                        state, run = clock.trigger(state, now)
                    else:
                        state, run = clock.finished(state, now)
                    runs.append(run)
                state, run = clock.wake(state, now)
                runs.append(run)
                for run in filter(None, runs):
                    if run.triggered:
                        reported = True
                    else:
                        reported, unreported = sample(job.event_trace_sampling_count, unreported)
                    current = asyncio.create_task(self._daemon_run(task, run, reported))
        finally:
            if current is not None and not current.done():
                current.cancel()
                await finish_despite_cancellation(current)

    async def _daemon_run(self, task: _Task, run: Run, reported: bool) -> None:
        task_id = task.plan.task_id
        began: list[datetime] = []

        def begin() -> None:
            began.append(self._now())
            self._send(task_id, TASK_RUNNING, BEGIN)

        try:
            outcome = await self._run(task, run, on_start=begin if reported else None)
        except Exception as error:  # a fault of the executor, not of the job
            logger.exception("daemon task %s: the run could not be carried out", task_id)
            outcome = RunOutcome(succeeded=False, detail=f"executor error: {error}")
        if reported:
            report = RunReport(
                outcome="succeeded" if outcome.succeeded else "failed",
                detail=outcome.detail,
                fire_time=run.fire_time,
                triggered=run.triggered,
                started_at=began[0] if began else None,
            )
            self._send(task_id, TASK_RUNNING, COMPLETE, report.encode())
        if not outcome.succeeded:
            logger.warning("daemon task %s run failed: %s", task_id, outcome.detail)
        task.post(_Event.FINISHED)

    async def _run(self, task: _Task, run: Run, on_start: Callable[[], None] | None) -> RunOutcome:
        async with self._slots:
            if on_start is not None:
                on_start()
            spec = self._process_spec(task, run)
            result_file = task.directory / RESULT_FILE
            result_file.unlink(missing_ok=True)
            try:
                result = await run_process(spec, lambda: task.grace)
            except OSError as error:
                return start_failure(spec.argv[0], error)
            return outcome_of(result.returncode, _error_text(result_file), result.stderr_tail)

    def _process_spec(self, task: _Task, run: Run) -> ProcessSpec:
        plan = task.plan
        sharding = plan.payload.sharding
        context = JobContext(
            job_name=sharding.job_name,
            task_id=plan.task_id,
            sharding_total_count=sharding.sharding_total_count,
            sharding_item=sharding.sharding_item,
            sharding_parameter=sharding.sharding_parameter,
            job_parameter=sharding.job_parameter,
            fire_time=run.fire_time,
            sandbox=str(task.directory),
            app_root=str(self._environment.app_root),
            triggered=run.triggered,
        )
        env = {**os.environ, **commands.job_environment(context)}
        work = plan.work
        stdin: bytes | None = None
        if isinstance(work, ScriptWork):
            sharding_json = sharding.model_copy(update={"fire_time": run.fire_time})
            argv = commandline.script_argv(work.command_line, sharding_json.model_dump_json())
        else:
            argv = [self._python, "-m", "controller.executor.jobhost"]
            env["PYTHONUNBUFFERED"] = "1"
            stdin = jobhost.request(
                module=work.module,
                attribute=work.attribute,
                mode=jobhost.MODE_CALL if isinstance(work, PythonWork) else jobhost.MODE_DATAFLOW,
                streaming=isinstance(work, DataflowWork) and work.streaming,
                context=context,
                result_path=task.directory / RESULT_FILE,
            )
        return ProcessSpec(
            argv=argv,
            env=env,
            cwd=self._environment.app_root,
            stdout=task.directory / "stdout",
            stderr=task.directory / "stderr",
            stdin=stdin,
        )

    def _send(self, task_id: str, state: str, message: str = "", data: bytes | None = None) -> None:
        self._report(TaskUpdate(task_id=task_id, state=state, message=message, data=data))


def _error_text(result_file: Path) -> str | None:
    try:
        document = json.loads(result_file.read_text())
    except (OSError, ValueError):
        return None
    error = document.get("error") if isinstance(document, dict) else None
    return str(error) if error else None
