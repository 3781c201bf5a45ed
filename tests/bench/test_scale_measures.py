"""Unit tests of the scale benchmark's pure half (bench/scale_measures.py): the fire times
it expects (checked against the controller's own cron parser), reading and counting the
runs the jobs record, percentiles, reading /proc, and the single-apply probes (a cron
that never fires in a run, their names, when they are made and what became of them)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bench.scale_measures import (
    PROBE_CRON,
    RunRecord,
    cpu_seconds,
    cron_of,
    delays,
    fire_run_outcomes,
    fire_times,
    first_after,
    json_key,
    misfires,
    offset_of,
    parse_run_line,
    percentile,
    probe_name,
    probe_outcome,
    probe_times,
    rss_mib,
    scheduled_at,
    spread,
    tally,
    unsuccessful,
)
from controller.cron import parse_cron, validate_cron

pytestmark = pytest.mark.unit

START = datetime(2026, 3, 1, 12, 0, 7, 400_000, tzinfo=UTC).timestamp()


@pytest.mark.parametrize("index", [0, 3, 9, 10, 27])
def test_fire_times_are_those_of_the_jobs_quartz_cron(index: int) -> None:
    schedule = parse_cron(cron_of(index))
    expected: list[int] = []
    at = datetime.fromtimestamp(START, UTC) - timedelta(microseconds=1)
    while (fire := schedule.next_fire(at)) is not None and fire.timestamp() < START + 95:
        expected.append(round(fire.timestamp()))
        at = fire
    assert fire_times(offset_of(index), START, START + 95) == expected
    assert len(expected) in (3, 4)


def test_the_jobs_spread_evenly_over_ten_offsets() -> None:
    offsets = [offset_of(index) for index in range(1000)]
    assert sorted(set(offsets)) == list(range(10))
    assert {offsets.count(offset) for offset in range(10)} == {100}
    assert cron_of(13) == "3/30 * * * * ?"


def test_a_window_is_half_open() -> None:
    assert fire_times(0, 30, 90) == [30, 60]
    assert fire_times(5, 35, 36) == [35]
    assert fire_times(5, 35.5, 65) == []


def line(job: str, fire: str | None, started: float = 1.5, task: str = "t") -> str:
    context = {"job_name": job, "task_id": task, "sharding_item": 0, "fire_time": fire}
    return f"{started} {json.dumps(context)}"


def test_a_recorded_line_reads_back_with_its_fire_time_in_epoch_seconds() -> None:
    record = parse_run_line(line("default.a", "2026-03-01T12:00:30Z", 1772366430.25))
    assert record == RunRecord(
        job="default.a", shard=0, task_id="t", fire=1772366430.0, started=1772366430.25
    )


@pytest.mark.parametrize("text", ["", "1.5", '1.5 {"job_na', "x {}", '1.5 {"other": 1}'])
def test_a_torn_or_foreign_line_is_no_record(text: str) -> None:
    assert parse_run_line(text) is None


def test_a_run_without_a_fire_time_reads_back_without_one() -> None:
    record = parse_run_line(line("default.a", None))
    assert record is not None and record.fire is None


def run(job: str, fire: float | None) -> RunRecord:
    return RunRecord(job=job, shard=0, task_id=f"{job}-{fire}", fire=fire, started=0.0)


def test_tally_counts_expected_ran_lost_doubled_and_stray_runs() -> None:
    offsets = {"a": 0, "b": 5}
    # Window [0, 60): a fires at 0 and 30, b at 5 and 35.
    records = [
        run("a", 0),
        run("a", 30),
        run("a", 30),
        run("a", 30),
        run("b", 5),
        run("b", 7),  # no fire of b
        run("c", 5),  # no such job
        run("b", 65),  # outside the window
        run("a", None),
    ]
    counted = tally(records, offsets, 0, 60)
    assert (counted.expected, counted.ran, counted.doubled, counted.stray) == (4, 3, 2, 2)
    assert counted.lost == 1
    assert counted.by_period == (2, 1)


def test_percentiles_are_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([3.0], 0.99) == 3.0
    assert spread([]) is None
    assert spread([2.0, 1.0]) == {"n": 2, "p50": 1.0, "p99": 2.0, "max": 2.0}


def test_delays_join_stamps_to_fires_by_task() -> None:
    fires = {"x": 10.0, "y": 20.0, "z": 30.0}
    stamps = {"x": 10.5, "z": 31.0, "w": 0.0}
    assert delays(fires, stamps) == [0.5, 1.0]
    assert delays(fires, stamps, after=15.0) == [1.0]
    assert first_after([1.0, 5.0, 3.0], 2.0) == 3.0
    assert first_after([1.0], 2.0) is None


def test_the_runs_of_cron_fires_are_summed_by_outcome_over_the_replicas() -> None:
    leader = {
        'cloudjob_cron_fire_runs_total{outcome="added"}': 3.0,
        'cloudjob_cron_fire_runs_total{outcome="launched-at-fire"}': 40.0,
        'cloudjob_cron_fire_runs_total{outcome="set-to-one"}': 0.0,
        "cloudjob_cron_fires_total": 9.0,
        'cloudjob_task_outcomes_total{outcome="succeeded"}': 43.0,
    }
    killed_leader = {'cloudjob_cron_fire_runs_total{outcome="added"}': 5.0}
    assert fire_run_outcomes([leader, killed_leader]) == {"launched-at-fire": 40, "added": 8}
    assert list(fire_run_outcomes([leader])) == ["launched-at-fire", "added"]
    assert fire_run_outcomes([{}]) == {}


def test_unsuccessful_runs_are_counted_by_state_and_the_start_of_their_message() -> None:
    too_big = "Total resources cpus 0.1; mem 16 required by task and its executor is more"
    rows = [
        ("TASK_ERROR", too_big + " than available mem 1536"),
        ("TASK_ERROR", too_big + " than available mem 1024"),
        ("TASK_FAILED", "exit  status\n 1"),
        (None, None),
    ]
    counted = unsuccessful(rows, width=len(too_big) + 1)
    assert counted == {
        f"TASK_ERROR: {too_big}…": 2,
        "TASK_FAILED: exit status 1": 1,
        "no state": 1,
    }


def test_proc_texts_give_cpu_seconds_and_rss() -> None:
    stat = "1234 (python -m x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 7 8 20 0 3 0"
    assert cpu_seconds(stat, 100) == 3.0
    assert rss_mib("Name:\tpython\nVmRSS:\t  204800 kB\nThreads: 3\n") == 200.0
    assert rss_mib("Name:\tzombie\n") == 0.0


def test_scheduled_means_the_condition_is_true() -> None:
    def job(status: str) -> dict[str, object]:
        return {"status": {"conditions": [{"type": "Scheduled", "status": status}]}}

    assert scheduled_at(job("True"))
    assert not scheduled_at(job("False"))
    assert not scheduled_at({"status": {}})
    assert not scheduled_at({})


def test_labels_become_json_keys() -> None:
    assert json_key("fire→ACCEPT") == "fire_to_accept"
    assert json_key("runs expected / ran / doubled") == "runs_expected_ran_doubled"
    assert json_key("kill -9 → new leader elected") == "kill_9_to_new_leader_elected"


def test_the_controllers_skipped_fires_are_read_from_its_log() -> None:
    log = "\n".join(
        [
            "2026-03-01 12:00:40,1 WARNING [c] controller.producer: cron 3/30 * * * * ? [UTC] "
            "misfired at 2026-03-01T12:00:33+00:00 (noticed 2026-03-01T12:00:40+00:00); "
            "skipping to the next fire",
            "2026-03-01 12:00:41,1 INFO [c] controller.mesos.engine: something else",
            "2026-03-01 12:01:40,1 WARNING [c] controller.producer: cron 4/30 * * * * ? [UTC] "
            "misfired at 2026-03-01T12:01:34+00:00 (noticed 2026-03-01T12:01:40+00:00); "
            "skipping to the next fire",
        ]
    )
    start = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC).timestamp()
    assert misfires(log, start, start + 60) == [("3/30 * * * * ?", start + 3)]


def test_a_probe_is_a_valid_job_that_fires_only_in_2099() -> None:
    assert validate_cron(PROBE_CRON) is None
    schedule = parse_cron(PROBE_CRON)
    assert schedule.next_fire(datetime.fromtimestamp(START, UTC)) == datetime(
        2099, 1, 1, tzinfo=UTC
    )
    assert schedule.next_fire(datetime(2099, 1, 1, tzinfo=UTC)) is None


def test_probes_are_named_apart_from_the_workload() -> None:
    assert probe_name(3) == "apply-probe-003"
    assert not probe_name(3).startswith("scale-")
    assert len({probe_name(index) for index in range(100)}) == 100


def test_probes_spread_evenly_inside_the_window() -> None:
    assert probe_times(100.0, 130.0, 3) == [105.0, 115.0, 125.0]
    assert probe_times(0.0, 120.0, 1) == [60.0]
    assert probe_times(0.0, 120.0, 0) == []


def test_a_probes_outcome_counts_every_probe_once() -> None:
    created = {"apply-probe-000": 10.0, "apply-probe-001": 20.0, "apply-probe-002": 30.0}
    seen = {"apply-probe-000": 10.5, "apply-probe-002": 32.0, "scale-00000": 1.0}
    outcome = probe_outcome(5, created, 1, seen)
    assert outcome == {
        "probes": 5,
        "created": 3,
        "refused": 1,
        "not_created": 1,
        "scheduled": 2,
        "not_scheduled": 1,
        "n": 2,
        "p50": 0.5,
        "p99": 2.0,
        "max": 2.0,
    }
    nothing = probe_outcome(2, {}, 0, seen)
    assert nothing["not_created"] == 2
    assert "p99" not in nothing
