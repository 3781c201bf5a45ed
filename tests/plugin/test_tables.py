"""kubectl-shaped tables and value formats of the plugin (controller/plugin/tables.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from controller.plugin.tables import (
    Table,
    between,
    cell,
    human_duration,
    pairs,
    render,
    render_all,
    shortened,
    timestamp,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def test_columns_are_padded_to_their_widest_cell_three_spaces_apart() -> None:
    table = Table(("shard", "host"), (("0", "agent-1"), ("10", "h")))
    assert render(table) == "SHARD   HOST\n0       agent-1\n10      h\n"


def test_no_headers_leaves_out_the_header_line_and_its_width() -> None:
    table = Table(("a long header", "x"), (("1", "2"),))
    assert render(table, headers=False) == "1   2\n"


def test_a_table_without_rows_renders_nothing() -> None:
    assert render(Table(("a",), ())) == ""


def test_tables_are_separated_by_one_blank_line_and_empty_ones_left_out() -> None:
    one = Table(("a",), (("1",),))
    empty = Table(("b",), ())
    two = Table(("c",), (("3",),))
    assert render_all([one, empty, two]) == "A\n1\n\nC\n3\n"
    assert render_all([empty]) == ""


def test_a_row_of_the_wrong_width_is_refused() -> None:
    with pytest.raises(ValueError, match="2 cells for 1"):
        Table(("a",), (("1", "2"),))


def test_cells_show_none_for_missing_values_and_keep_to_one_line() -> None:
    assert cell(None) == "<none>"
    assert cell("") == "<none>"
    assert cell(0) == "0"
    assert cell("failed\n  stderr:  boom\t!") == "failed stderr: boom !"
    assert shortened("abcdef", 4) == "abc…"
    assert shortened("abcd", 4) == "abcd"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (-3, "0s"),
        (0.04, "0.0s"),
        (1.25, "1.2s"),
        (9.94, "9.9s"),
        (10, "10s"),
        (119.9, "119s"),
        (120, "2m"),
        (192, "3m12s"),
        (599, "9m59s"),
        (600, "10m"),
        (179 * 60 + 59, "179m"),
        (3 * 3600, "3h"),
        (5 * 3600 + 7 * 60, "5h7m"),
        (8 * 3600 + 59 * 60, "8h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (3 * 86400 + 4 * 3600, "3d4h"),
        (8 * 86400, "8d"),
        (729 * 86400, "729d"),
        (2 * 365 * 86400, "2y"),
        (2 * 365 * 86400 + 10 * 86400, "2y10d"),
        (9 * 365 * 86400 + 86400, "9y"),
    ],
)
def test_durations_are_kubectls_short_form(seconds: float, shown: str) -> None:
    assert human_duration(seconds) == shown


def test_times_are_shown_in_utc_to_the_second() -> None:
    assert timestamp("2026-03-01T13:00:05.123456+01:00") == "2026-03-01T12:00:05Z"
    assert timestamp("2026-03-01T12:00:05") == "2026-03-01T12:00:05Z"
    assert timestamp(None) == "<none>"


def test_a_duration_runs_to_now_while_there_is_no_end() -> None:
    assert between("2026-03-01T11:59:00+00:00", "2026-03-01T11:59:02.5+00:00", NOW) == "2.5s"
    assert between("2026-03-01T11:50:00+00:00", None, NOW) == "10m"
    assert between(None, None, NOW) == "<none>"


def test_counts_are_shown_as_sorted_pairs() -> None:
    assert pairs({"TRANSIENT": 3, "DAEMON": 1}) == "DAEMON=1,TRANSIENT=3"
    assert pairs({}) == "<none>"
