"""The job host process: imports from the app package, calls, dataflow loops, failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from controller.executor import jobhost
from controller.executor.context import JobContext
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def context(app_root: Path, sandbox: Path) -> JobContext:
    return JobContext(
        job_name="ns.job",
        task_id="t1",
        sharding_total_count=2,
        sharding_item=1,
        sharding_parameter="b",
        job_parameter="jp",
        fire_time=None,
        sandbox=str(sandbox),
        app_root=str(app_root),
    )


def app(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    (root / "lib" / "helpers").mkdir(parents=True)
    (root / "lib" / "helpers" / "__init__.py").write_text("PREFIX = 'item'\n")
    (root / "jobs").mkdir()
    (root / "jobs" / "__init__.py").write_text("")
    (root / "jobs" / "work.py").write_text(
        "import pathlib\n"
        "from helpers import PREFIX\n"
        "def run(ctx):\n"
        "    print(PREFIX, ctx.sharding_item, ctx.sharding_parameter, ctx.job_parameter)\n"
        "def boom(ctx):\n"
        "    raise ValueError('boom ' + ctx.task_id)\n"
        "def block(ctx):\n"
        "    pathlib.Path(ctx.sandbox, 'started').write_text('1')\n"
        "    import time; time.sleep(60)\n"
        "class Batches:\n"
        "    def __init__(self):\n"
        "        self.left = [[1, 2], [3]]\n"
        "    def fetch(self, ctx):\n"
        "        return self.left.pop(0) if self.left else []\n"
        "    def process(self, ctx, items):\n"
        "        print('processed', items)\n"
    )
    return root


def host(tmp_path: Path, attribute: str, mode: str = jobhost.MODE_CALL, streaming: bool = False):
    root = app(tmp_path)
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    request = jobhost.request(
        module="jobs.work",
        attribute=attribute,
        mode=mode,
        streaming=streaming,
        context=context(root, sandbox),
        result_path=sandbox / "result.json",
    )
    return root, sandbox, request


@dataclass(frozen=True)
class Done:
    returncode: int
    stdout: bytes
    stderr: bytes


def run_host(root: Path, request: bytes) -> Done:
    """Run a job host as the executor does: own process group, stdin open until it ends."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "controller.executor.jobhost"],
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=err,
            cwd=root,
            process_group=0,
        )
        assert process.stdin is not None
        process.stdin.write(request)
        process.stdin.flush()
        returncode = process.wait(timeout=30)
        process.stdin.close()
        out.seek(0)
        err.seek(0)
        return Done(returncode, out.read(), err.read())


def test_a_callable_runs_with_lib_on_the_path(tmp_path: Path) -> None:
    root, _, request = host(tmp_path, "run")
    done = run_host(root, request)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"item 1 b jp\n"


def test_an_exception_is_recorded(tmp_path: Path) -> None:
    root, sandbox, request = host(tmp_path, "boom")
    done = run_host(root, request)
    assert done.returncode == jobhost.RAISED
    assert b"Traceback" in done.stderr
    assert json.loads((sandbox / "result.json").read_text()) == {"error": "ValueError: boom t1"}


def test_a_missing_target_is_an_error_naming_it(tmp_path: Path) -> None:
    root, sandbox, request = host(tmp_path, "nothing_here")
    assert run_host(root, request).returncode == jobhost.RAISED
    error = json.loads((sandbox / "result.json").read_text())["error"]
    assert error == "AttributeError: module 'jobs.work' has no attribute 'nothing_here'"


def test_streaming_dataflow_repeats_until_fetch_is_empty(tmp_path: Path) -> None:
    root, _, request = host(tmp_path, "Batches", jobhost.MODE_DATAFLOW, streaming=True)
    done = run_host(root, request)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"processed [1, 2]\nprocessed [3]\n"


def test_one_shot_dataflow_fetches_once(tmp_path: Path) -> None:
    root, _, request = host(tmp_path, "Batches", jobhost.MODE_DATAFLOW, streaming=False)
    done = run_host(root, request)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"processed [1, 2]\n"


def test_the_host_dies_with_its_executor(tmp_path: Path) -> None:
    root, sandbox, request = host(tmp_path, "block")
    process = subprocess.Popen(
        [sys.executable, "-m", "controller.executor.jobhost"],
        stdin=subprocess.PIPE,
        cwd=root,
        process_group=0,
    )
    assert process.stdin is not None
    process.stdin.write(request)
    process.stdin.flush()
    wait_for(lambda: (sandbox / "started").exists(), what="the job to start", interval=0.01)
    process.stdin.close()  # what the executor's death looks like from the job host
    assert process.wait(timeout=20) == -9
    assert os.getpgid(os.getpid()) != process.pid
