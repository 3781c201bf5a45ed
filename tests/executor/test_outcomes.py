"""How a run's end becomes the message the framework sees."""

from __future__ import annotations

import pytest

from controller.executor.outcomes import MAX_DETAIL, RunOutcome, outcome_of, start_failure

pytestmark = pytest.mark.unit


def test_success() -> None:
    assert outcome_of(0, None, "noise") == RunOutcome(True, "exit status 0")


def test_exit_status_with_the_stderr_tail() -> None:
    assert outcome_of(3, None, "line one\nbad thing\n") == RunOutcome(
        False, "exit status 3; stderr: line one bad thing"
    )
    assert outcome_of(3, None, "") == RunOutcome(False, "exit status 3")


def test_exception_text_wins_over_stderr() -> None:
    assert outcome_of(1, "ValueError: boom", "Traceback ...") == RunOutcome(
        False, "ValueError: boom"
    )


def test_signals_are_named() -> None:
    assert outcome_of(-9, None, "").detail == "terminated by signal SIGKILL"
    assert outcome_of(-200, None, "").detail == "terminated by signal 200"


def test_long_details_are_clipped() -> None:
    assert len(outcome_of(1, "E" * 5000, "").detail) == MAX_DETAIL


def test_a_program_that_cannot_start() -> None:
    error = FileNotFoundError(2, "No such file or directory")
    assert start_failure("bin/nope.sh", error) == RunOutcome(
        False, "cannot start 'bin/nope.sh': No such file or directory"
    )
