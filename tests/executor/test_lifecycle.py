"""Kill, STOP, trigger, event sampling and non-overlapping daemon runs, through real processes."""

from __future__ import annotations

import itertools
import os
import signal
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest

from controller.executor.messages import BEGIN, COMPLETE, RunReport, Stop, Trigger
from controller.resources import ExecutionType, JobKind
from tests.executor.conftest import App, Framework, job_pid, parent_of, process_alive, wait_gone

pytestmark = pytest.mark.integration

SLEEP_SCRIPT = {"kind": JobKind.SCRIPT, "command_line": "bin/sleep.sh"}
STUBBORN = {"kind": JobKind.SCRIPT, "command_line": "bin/stubborn.sh"}
SLEEPY = {"kind": JobKind.PYTHON, "callable": "demo_jobs.sleepy:run"}
SIMPLE = {"kind": JobKind.PYTHON, "callable": "demo_jobs.simple:run"}
DAEMON = {"execution_type": ExecutionType.DAEMON}
NEVER_SOON = "0 0 0 1 1 ? 2099"


def test_killing_a_script_during_its_run(framework: Framework, demo_app: App) -> None:
    (task_id,) = framework.launch(framework.task(demo_app, "tests.sleep", **SLEEP_SCRIPT))
    output = partial(framework.task_output, demo_app, task_id)
    framework.wait_for_file(output, lambda text: "sleeping" in text, "the job to start")
    framework.kill(task_id)
    updates = framework.wait_terminal(task_id)
    assert [u.state for u in updates] == ["TASK_RUNNING", "TASK_KILLED"]
    # SIGTERM reached the script (its trap ran), and the run did not go on.
    text = output().read_text()
    assert "got SIGTERM" in text
    assert "woke up" not in text


def test_killing_a_python_job_during_its_run(framework: Framework, demo_app: App) -> None:
    (task_id,) = framework.launch(framework.task(demo_app, "tests.sleepy", **SLEEPY))
    output = partial(framework.task_output, demo_app, task_id)
    framework.wait_for_file(output, lambda text: "sleeping" in text, "the job to start")
    framework.kill(task_id)
    updates = framework.wait_terminal(task_id)
    assert [u.state for u in updates] == ["TASK_RUNNING", "TASK_KILLED"]
    assert "woke up" not in output().read_text()


def test_killing_a_daemon_during_a_run(framework: Framework, demo_app: App) -> None:
    task = framework.task(demo_app, "tests.sleepy-daemon", cron="* * * * * ?", **SLEEPY, **DAEMON)
    (task_id,) = framework.launch(task)
    framework.wait_for(lambda: BEGIN in framework.runs_reported(task_id), "a run to begin")
    framework.kill(task_id)
    updates = framework.wait_terminal(task_id)
    assert [(u.state, u.message) for u in updates] == [
        ("TASK_RUNNING", ""),
        ("TASK_RUNNING", BEGIN),
        ("TASK_KILLED", "killed"),
    ]


def test_stop_kills_every_task_then_the_executor_exits(framework: Framework, demo_app: App) -> None:
    transient = framework.task(demo_app, "tests.sleep", **SLEEP_SCRIPT)
    daemon = framework.task(demo_app, "tests.simple-daemon", cron="* * * * * ?", **SIMPLE, **DAEMON)
    transient_id, daemon_id = framework.launch(transient, daemon)
    framework.wait_for(lambda: COMPLETE in framework.runs_reported(daemon_id), "a daemon run")
    framework.wait_for(lambda: framework.states(transient_id) != [], "the transient task")

    framework.send(demo_app, Stop())

    assert [u.state for u in framework.wait_terminal(transient_id)] == [
        "TASK_RUNNING",
        "TASK_KILLED",
    ]
    daemon_states = [u.state for u in framework.wait_terminal(daemon_id)]
    assert daemon_states[0] == "TASK_RUNNING" and daemon_states[-1] == "TASK_KILLED"
    assert set(daemon_states[:-1]) == {"TASK_RUNNING"}
    executor_id = demo_app.executor_id(framework.agent_id)
    framework.wait_for(
        lambda: any(e == executor_id for e, _ in framework.scheduler.executor_exits),
        "the executor to exit",
    )
    assert (executor_id, 0) in framework.scheduler.executor_exits
    # It stopped only once the agent had acknowledged every update.
    assert "not acknowledged" not in (framework.sandbox(demo_app) / "stderr").read_text()


def test_an_idle_executor_exits_by_itself_and_a_later_task_gets_a_new_one(
    framework: Framework, demo_tarball: Path
) -> None:
    app = App(
        key="tests.idle-app",
        tarball=demo_tarball,
        environment=(("CLOUDJOB_EXECUTOR_IDLE_TIMEOUT", "1secs"),),
    )
    executor_id = app.executor_id(framework.agent_id)
    (first,) = framework.launch(framework.task(app, "tests.simple", **SIMPLE))
    assert [u.state for u in framework.wait_terminal(first)] == ["TASK_RUNNING", "TASK_FINISHED"]
    framework.wait_for(
        lambda: any(e == executor_id for e, _ in framework.scheduler.executor_exits),
        "the idle executor to exit",
    )
    # A clean exit: status 0, and the finished task's update was the last one.
    assert framework.scheduler.executor_exits == [(executor_id, 0)]
    assert framework.states(first) == ["TASK_RUNNING", "TASK_FINISHED"]
    assert "no task for 1 s; the executor exits" in (framework.sandbox(app) / "stderr").read_text()

    (second,) = framework.launch(framework.task(app, "tests.simple", **SIMPLE))
    assert [u.state for u in framework.wait_terminal(second)] == ["TASK_RUNNING", "TASK_FINISHED"]


def test_sigterm_stops_the_executor_cleanly(framework: Framework, demo_app: App) -> None:
    (task_id,) = framework.launch(framework.task(demo_app, "tests.sleepy", **SLEEPY))
    text = framework.wait_for_file(
        partial(framework.task_output, demo_app, task_id), lambda t: "pid" in t, "the job"
    )
    pid = job_pid(text)
    os.kill(parent_of(pid), signal.SIGTERM)
    assert [u.state for u in framework.wait_terminal(task_id)] == ["TASK_RUNNING", "TASK_KILLED"]
    executor_id = demo_app.executor_id(framework.agent_id)
    framework.wait_for(
        lambda: (executor_id, 0) in framework.scheduler.executor_exits, "the executor to exit"
    )
    assert not process_alive(pid)


def test_agent_shutdown_kills_every_job_and_the_executor_exits(
    framework: Framework, demo_app: App
) -> None:
    tasks = [framework.task(demo_app, "tests.sleepy", shard=n, total=2, **SLEEPY) for n in (0, 1)]
    task_ids = framework.launch(*tasks)
    pids = [
        job_pid(
            framework.wait_for_file(
                partial(framework.task_output, demo_app, task_id), lambda t: "pid" in t, "a job"
            )
        )
        for task_id in task_ids
    ]
    executor_pid = parent_of(pids[0])
    log = framework.sandbox(demo_app) / "stderr"

    framework.tear_down()  # the agent sends SHUTDOWN to the framework's executors

    for pid in [*pids, executor_pid]:
        wait_gone(pid)
    text = log.read_text()
    assert "the agent shuts this executor down" in text
    assert "executor exits with status 0" in text


def test_a_crashed_executor_takes_its_jobs_down(framework: Framework, demo_app: App) -> None:
    (task_id,) = framework.launch(framework.task(demo_app, "tests.stubborn", **STUBBORN))
    text = framework.wait_for_file(
        partial(framework.task_output, demo_app, task_id), lambda t: "pid" in t, "the job"
    )
    pid = job_pid(text)
    framework.cluster.crash_executor(framework.agent_id, demo_app.executor_id(framework.agent_id))
    updates = framework.wait_terminal(task_id)
    assert [(u.state, u.reason) for u in updates] == [
        ("TASK_RUNNING", ""),
        ("TASK_FAILED", "REASON_EXECUTOR_TERMINATED"),
    ]
    # The job ignores SIGTERM and runs in a process group of its own: only the
    # agent destroying the executor's whole container ends it.
    wait_gone(pid)


def test_trigger_runs_daemon_tasks_now(framework: Framework, demo_app: App) -> None:
    job = "tests.triggered"
    shards = [
        framework.task(demo_app, job, shard=shard, total=2, cron=NEVER_SOON, **SIMPLE, **DAEMON)
        for shard in (0, 1)
    ]
    first, second = framework.launch(*shards)
    framework.wait_for(
        lambda: framework.states(first) and framework.states(second), "both tasks running"
    )

    framework.send(demo_app, Trigger(job_name=job))
    for task_id in (first, second):
        framework.wait_for(
            lambda task_id=task_id: framework.runs_reported(task_id) == [BEGIN, COMPLETE],
            "a triggered run of each shard",
        )
    framework.send(demo_app, Trigger(job_name=job, task_id=first))
    framework.wait_for(
        lambda: framework.runs_reported(first) == [BEGIN, COMPLETE] * 2, "a second run of shard 0"
    )
    framework.send(demo_app, Trigger(job_name="tests.other-job"))
    for task_id in (first, second):
        framework.kill(task_id)

    first_updates = framework.wait_terminal(first)
    second_updates = framework.wait_terminal(second)
    assert [(u.state, u.message) for u in first_updates] == [
        ("TASK_RUNNING", ""),
        *[("TASK_RUNNING", BEGIN), ("TASK_RUNNING", COMPLETE)] * 2,
        ("TASK_KILLED", "killed"),
    ]
    assert [(u.state, u.message) for u in second_updates] == [
        ("TASK_RUNNING", ""),
        ("TASK_RUNNING", BEGIN),
        ("TASK_RUNNING", COMPLETE),
        ("TASK_KILLED", "killed"),
    ]
    report = RunReport.decode(first_updates[2].data or b"")
    assert report.started_at is not None, "the run's start travels with its end"
    assert replace(report, started_at=None) == RunReport(
        outcome="succeeded", detail="exit status 0", triggered=True
    )
    lines = framework.task_output(demo_app, first).read_text().splitlines()
    assert len(lines) == 2 and all(line.endswith("fire now triggered True") for line in lines)


def test_event_sampling_reports_every_nth_run(framework: Framework, demo_app: App) -> None:
    task = framework.task(
        demo_app, "tests.sampled", cron="* * * * * ?", sampling=2, **SIMPLE, **DAEMON
    )
    (task_id,) = framework.launch(task)
    framework.wait_for(
        lambda: framework.runs_reported(task_id).count(COMPLETE) >= 2, "two reported runs"
    )
    framework.kill(task_id)
    updates = framework.wait_terminal(task_id)
    reported = [RunReport.decode(u.data or b"").fire_time for u in updates if u.message == COMPLETE]
    # Every run prints its fire time; only the 2nd, 4th, ... run is reported.
    runs = [
        line.split(" fire ")[1].split(" ")[0]
        for line in framework.task_output(demo_app, task_id).read_text().splitlines()
    ]
    assert [fire.isoformat() for fire in reported if fire] == runs[1::2][: len(reported)]
    assert len(reported) >= 2


@pytest.mark.parametrize("misfire", [False, True])
def test_daemon_runs_of_one_task_never_overlap(
    framework: Framework, demo_app: App, misfire: bool
) -> None:
    # Each run takes longer than the cron period (every second).
    task = framework.task(
        demo_app,
        "tests.slow-daemon",
        cron="* * * * * ?",
        misfire=misfire,
        job_parameter="1.5",
        **SLEEPY,
        **DAEMON,
    )
    (task_id,) = framework.launch(task)
    framework.wait_for(
        lambda: framework.runs_reported(task_id).count(COMPLETE) >= 3, "three runs", timeout=90
    )
    framework.kill(task_id)
    framework.wait_terminal(task_id)
    lines = framework.task_output(demo_app, task_id).read_text().splitlines()
    kinds = ["start" if line.startswith("sleeping") else "end" for line in lines]
    assert kinds[:6] == ["start", "end"] * 3
    assert all(a != b for a, b in itertools.pairwise(kinds))
