"""Script argv building: no shell unless asked for, and never an injection path."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.commandline import (
    CommandLineError,
    needs_shell,
    script_argv,
    split_command_line,
)
from controller.executor.commands import job_environment
from controller.executor.context import JobContext

pytestmark = pytest.mark.integration

HOSTILE = json.dumps(
    {"job_parameter": "x; touch pwned", "other": "$(touch pwned2) `touch p3` 'q\""}
)


@pytest.mark.parametrize(
    "command_line",
    [
        "bin/hello.sh",
        "bin/hello.sh a b",
        "bin/hello.sh 'a;b' \"c|d\"",
        r"bin/hello.sh a\;b",
        "bin/run --name=value",
        "bin/x a#b c~d",
        "'bin/with space.sh' arg",
    ],
)
def test_plain_command_lines_need_no_shell(command_line: str) -> None:
    assert not needs_shell(command_line)


@pytest.mark.parametrize(
    "command_line",
    [
        "bin/a.sh | tee out",
        "bin/a.sh > out",
        "bin/a.sh; bin/b.sh",
        "bin/a.sh && bin/b.sh",
        "bin/a.sh $HOME",
        'bin/a.sh "$HOME"',
        "bin/a.sh `date`",
        "bin/a.sh *.txt",
        "FOO=1 bin/a.sh",
        "bin/a.sh ~/x",
        "bin/a.sh # comment",
        "bin/a.sh\nbin/b.sh",
        "(cd lib && ./run)",
    ],
)
def test_shell_syntax_needs_a_shell(command_line: str) -> None:
    assert needs_shell(command_line)


def test_without_shell_the_context_is_one_extra_argument() -> None:
    assert script_argv("bin/hello.sh 'a b' c", HOSTILE) == ["bin/hello.sh", "a b", "c", HOSTILE]


def test_with_shell_the_context_is_quoted() -> None:
    argv = script_argv("bin/a.sh | cat", HOSTILE)
    assert argv[:2] == ["/bin/sh", "-c"]
    assert argv[2].startswith("bin/a.sh | cat ")


def test_a_shell_command_line_receives_the_context_literally(tmp_path: Path) -> None:
    argv = script_argv("echo start; printf '%s\\n'", HOSTILE)
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == ["start", HOSTILE]
    assert list(tmp_path.iterdir()) == []


def test_a_plain_command_line_receives_the_context_literally(tmp_path: Path) -> None:
    argv = script_argv("printf '%s\\n'", HOSTILE)
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert done.stdout == HOSTILE + "\n"
    assert list(tmp_path.iterdir()) == []


def test_unbalanced_quotes_are_rejected_with_the_fix() -> None:
    with pytest.raises(CommandLineError, match="balance its quotes"):
        split_command_line("bin/a.sh 'oops")
    with pytest.raises(CommandLineError, match="empty"):
        split_command_line("   ")


def test_job_environment_carries_the_sharding_facts() -> None:
    context = JobContext(
        job_name="ns.job",
        task_id="t-1",
        sharding_total_count=3,
        sharding_item=2,
        sharding_parameter="c",
        job_parameter="p",
        fire_time=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        sandbox="/sb/tasks/t-1",
        app_root="/sb",
    )
    assert job_environment(context) == {
        "CLOUDJOB_JOB_NAME": "ns.job",
        "CLOUDJOB_TASK_ID": "t-1",
        "CLOUDJOB_SHARDING_ITEM": "2",
        "CLOUDJOB_SHARDING_PARAMETER": "c",
        "CLOUDJOB_SHARDING_TOTAL_COUNT": "3",
        "CLOUDJOB_JOB_PARAMETER": "p",
        "CLOUDJOB_FIRE_TIME": "2024-01-02T03:04:05+00:00",
        "CLOUDJOB_TRIGGERED": "0",
        "CLOUDJOB_TASK_SANDBOX": "/sb/tasks/t-1",
        "CLOUDJOB_APP_ROOT": "/sb",
    }
