"""The run ledger: the jobs' own script appends records that parse back, concurrent
runs never interleave, and a line that is not a record is refused."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from devcluster.campaign.ledger import JOB_SCRIPT, Run, parse_line, read_ledger

pytestmark = pytest.mark.integration

CONTEXT = (
    '{"job_name":"ns.job","task_id":"ns.job@-@1@-@READY@-@agent-S2@-@uuid",'
    '"sharding_total_count":2,"sharding_item":1,"sharding_parameter":"","job_parameter":"",'
    '"fire_time":"2026-12-06T05:56:00Z"}'
)


def test_the_job_script_appends_one_record_per_run_that_parses_back(tmp_path: Path) -> None:
    script, ledger = tmp_path / "job.sh", tmp_path / "ledger.jsonl"
    script.write_text(JOB_SCRIPT)
    runs = [
        threading.Thread(
            target=subprocess.run,
            args=(["sh", str(script), str(ledger), CONTEXT],),
            kwargs={"check": True, "cwd": tmp_path, "timeout": 30},
        )
        for _ in range(8)
    ]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join(60)
    recorded = read_ledger(ledger)
    assert len(recorded) == 8
    first = recorded[0]
    assert (first.job, first.shard, first.agent) == ("ns.job", 1, "agent-S2")
    assert first.fire_time == 1796536560.0
    assert first.start < first.end


def test_an_absent_ledger_holds_no_runs_and_a_torn_line_is_refused(tmp_path: Path) -> None:
    assert read_ledger(tmp_path / "none.jsonl") == []
    with pytest.raises(ValueError, match="not a ledger record"):
        parse_line('{"context": {"job_name": "x"}}')


def test_a_task_id_of_another_shape_has_no_agent() -> None:
    assert Run("j", None, 0, "not-a-task-id", 1.0, 2.0).agent == "?"
