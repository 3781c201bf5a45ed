"""The task supervisor on its own event loop, with real job processes and no Mesos.

Covers interleavings the end-to-end tests cannot aim at: a kill that lands in the
same loop turn as a trigger, kills of tasks still waiting for a worker slot, and
kills repeated while the job outlives its SIGTERM.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controller.executor import supervising
from controller.executor.environment import ExecutorEnvironment
from controller.executor.messages import Trigger
from controller.executor.plans import TaskPlan
from controller.executor.reporting import TaskUpdate
from controller.executor.supervising import TaskSupervisor
from controller.resources import ExecutionType, JobKind
from tests.executor.conftest import DEMO_APP, job_pid, payload, process_alive
from tests.waiting import async_wait_for

pytestmark = pytest.mark.integration

NEVER_SOON = "0 0 0 1 1 ? 2099"


@pytest.fixture
def app_root(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    shutil.copytree(DEMO_APP, root, ignore=shutil.ignore_patterns("dist", "__pycache__"))
    return root


def supervisor(app_root: Path, updates: list[TaskUpdate], workers: int = 4) -> TaskSupervisor:
    environment = ExecutorEnvironment(
        sandbox=app_root,
        app_root=app_root,
        grace_seconds=2.0,
        recovery_seconds=60.0,
        workers=workers,
        log_level="DEBUG",
    )
    return TaskSupervisor(environment=environment, report=updates.append)


def task_info(task_id: str, **job: Any) -> dict[str, Any]:
    data = payload(task_id.split("@-@")[0], task_id, **job).encode_base64()
    return {"task_id": {"value": task_id}, "data": data}


async def until(condition: Callable[[], bool], what: str) -> None:
    await async_wait_for(condition, what=what, interval=0.01)


def states(updates: list[TaskUpdate], task_id: str) -> list[tuple[str, str]]:
    return [(u.state, u.message) for u in updates if u.task_id == task_id]


@pytest.mark.parametrize("turns", range(8))
async def test_a_kill_right_after_a_trigger_always_ends_the_task(
    app_root: Path, turns: int
) -> None:
    updates: list[TaskUpdate] = []
    tasks = supervisor(app_root, updates)
    task_id = "tests.race@-@0"
    tasks.launch(
        task_info(
            task_id,
            kind=JobKind.PYTHON,
            callable="demo_jobs.simple:run",
            execution_type=ExecutionType.DAEMON,
            cron=NEVER_SOON,
        )
    )
    await until(lambda: bool(states(updates, task_id)), "TASK_RUNNING")
    tasks.trigger(Trigger(job_name="tests.race"))
    for _ in range(turns):
        await asyncio.sleep(0)
    tasks.kill(task_id)
    await until(lambda: states(updates, task_id)[-1][0] == "TASK_KILLED", "TASK_KILLED")
    assert tasks.task_ids == []


async def test_tasks_waiting_for_a_worker_slot_can_be_killed(app_root: Path) -> None:
    updates: list[TaskUpdate] = []
    tasks = supervisor(app_root, updates, workers=1)
    sleepy = {"kind": JobKind.PYTHON, "callable": "demo_jobs.sleepy:run"}
    tasks.launch(task_info("tests.first@-@0", **sleepy))
    tasks.launch(task_info("tests.second@-@0", **sleepy))
    output = app_root / "tasks" / "tests.first@-@0" / "stdout"
    await until(lambda: output.exists() and "sleeping" in output.read_text(), "the first run")
    assert not (app_root / "tasks" / "tests.second@-@0" / "stdout").exists()
    tasks.kill("tests.second@-@0")
    await until(lambda: len(states(updates, "tests.second@-@0")) == 2, "the waiting task's end")
    assert states(updates, "tests.second@-@0") == [("TASK_RUNNING", ""), ("TASK_KILLED", "killed")]
    await tasks.stop()
    assert states(updates, "tests.first@-@0") == [("TASK_RUNNING", ""), ("TASK_KILLED", "killed")]
    assert tasks.task_ids == []


async def test_after_stop_new_tasks_are_refused(app_root: Path) -> None:
    updates: list[TaskUpdate] = []
    tasks = supervisor(app_root, updates)
    await tasks.stop()
    tasks.launch(task_info("tests.late@-@0", kind=JobKind.SCRIPT, command_line="bin/hello.sh"))
    assert states(updates, "tests.late@-@0") == [("TASK_KILLED", "the executor is shutting down")]


def job_pid_in(path: Path) -> int | None:
    text = path.read_text() if path.exists() else ""
    return job_pid(text) if "(pid" in text else None


@pytest.mark.parametrize("execution_type", [ExecutionType.TRANSIENT, ExecutionType.DAEMON])
async def test_repeated_kills_report_killed_only_once_the_job_is_gone(
    app_root: Path, execution_type: ExecutionType
) -> None:
    updates: list[TaskUpdate] = []
    alive_when_reported: list[bool] = []
    pid: int | None = None

    def report(update: TaskUpdate) -> None:
        updates.append(update)
        if update.state == "TASK_KILLED":
            alive_when_reported.append(pid is not None and process_alive(pid))

    environment = ExecutorEnvironment(
        sandbox=app_root,
        app_root=app_root,
        grace_seconds=1.0,
        recovery_seconds=60.0,
        workers=4,
        log_level="DEBUG",
    )
    tasks = TaskSupervisor(environment=environment, report=report)
    task_id = "tests.stubborn@-@0"
    tasks.launch(
        task_info(
            task_id,
            kind=JobKind.SCRIPT,
            command_line="bin/stubborn.sh",
            execution_type=execution_type,
            cron=NEVER_SOON,
        )
    )
    await until(lambda: bool(states(updates, task_id)), "TASK_RUNNING")
    if execution_type is ExecutionType.DAEMON:
        tasks.trigger(Trigger(job_name="tests.stubborn"))
    output = app_root / "tasks" / task_id / "stdout"
    await until(lambda: job_pid_in(output) is not None, "the job to start")
    pid = job_pid_in(output)
    # The job ignores SIGTERM, so it lives through the whole grace period while
    # the framework repeats its kill and the agent then stops the executor.
    tasks.kill(task_id)
    await asyncio.sleep(0)
    tasks.kill(task_id)
    await asyncio.sleep(0)
    await tasks.stop(grace=0.5)
    assert states(updates, task_id)[-1] == ("TASK_KILLED", "killed")
    assert alive_when_reported == [False]
    assert tasks.task_ids == []


async def test_an_unexpected_planning_failure_fails_that_task_only(
    app_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    updates: list[TaskUpdate] = []
    tasks = supervisor(app_root, updates)
    real_plan = supervising.plan_task

    def plan(task_info: dict[str, Any]) -> TaskPlan:
        if task_info["task_id"]["value"] == "tests.broken@-@0":
            raise KeyError("surprise")
        return real_plan(task_info)

    monkeypatch.setattr(supervising, "plan_task", plan)
    tasks.launch(task_info("tests.broken@-@0", kind=JobKind.SCRIPT, command_line="bin/hello.sh"))
    tasks.launch(task_info("tests.fine@-@0", kind=JobKind.SCRIPT, command_line="bin/hello.sh"))
    assert states(updates, "tests.broken@-@0") == [
        ("TASK_ERROR", "executor error while reading the task: KeyError('surprise')")
    ]
    await until(lambda: len(states(updates, "tests.fine@-@0")) == 2, "the other task's end")
    assert states(updates, "tests.fine@-@0")[-1] == ("TASK_FINISHED", "exit status 0")
