"""What `kubectl get cloudjobs` and `kubectl get cloudapps` show (the CRDs' printer
columns, rendered by the real kubectl against the real API server): the State and Last
Schedule columns are filled for jobs run by their cron and for jobs only triggered, and
no cell of `-o wide` renders as `<invalid>` (kubectl's rendering of a future time in a
`date` column)."""

from __future__ import annotations

import re

import pytest

from tests.stack import NAMESPACE, Stack
from tests.waiting import wait_for

pytestmark = pytest.mark.system

FAR_FUTURE = "0 0 0 1 1 ? 2099"


def table(stack: Stack, plural: str, wide: bool = False) -> dict[str, dict[str, str]]:
    """Name → {column: cell} as `kubectl get <plural> [-o wide]` prints it."""
    args = ["get", plural, "-n", NAMESPACE] + (["-o", "wide"] if wide else [])
    lines = stack.api.kubectl(*args).stdout.splitlines()
    if not lines:
        return {}
    header = lines[0]
    # kubectl pads columns with three spaces or more and each cell starts where its
    # header starts; a header may have single spaces inside ("LAST SCHEDULE").
    starts = [m.start() for m in re.finditer(r"\S+(?: \S+)*", header)]
    names = [header[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
    rows = {}
    for line in lines[1:]:
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        row = dict(zip(names, cells, strict=True))
        rows[row["NAME"]] = row
    return rows


def test_state_and_last_schedule_columns_are_filled_for_cron_and_triggered_jobs(
    stack: Stack,
) -> None:
    stack.start_controller()
    stack.script_app_object()
    stack.script_job("cron", "*/2 * * * * ?")
    stack.script_job("manual", FAR_FUTURE)
    stack.wait_status("CloudJob", "manual", lambda s: s.get("state") == "Scheduled")
    stack.annotate("CloudJob", "manual", **{"cloudjob.io/trigger": "1"})
    wait_for(lambda: stack.runs.of("manual"), lambda r: len(r) == 3, what="the triggered run")

    rows = wait_for(
        lambda: table(stack, "cloudjobs"),
        lambda found: (
            set(found) == {"cron", "manual"}
            and all(row["STATE"] != "<none>" for row in found.values())
            and all(re.fullmatch(r"\d+[smh]", row["LAST SCHEDULE"]) for row in found.values())
        ),
        what="State and Last Schedule of both jobs",
    )
    assert rows["manual"]["STATE"] in ("Scheduled", "Running", "Pending")
    assert rows["cron"]["APP"] == "scripts"
    assert re.fullmatch(r"\d+s", rows["cron"]["LAST SCHEDULE"]), rows["cron"]
    wide = wait_for(
        lambda: table(stack, "cloudjobs", wide=True),
        lambda found: found["manual"]["SUCCEEDED"] == "3",
        what="the triggered run counted",
    )
    assert "<invalid>" not in {cell for row in wide.values() for cell in row.values()}, wide
    # The next fire is a moment in the future: shown as the time itself.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", wide["cron"]["NEXT SCHEDULE"])
    apps = wait_for(
        lambda: table(stack, "cloudapps"),
        lambda found: found.get("scripts", {}).get("READY") == "True",
        what="the app's Ready column",
    )
    assert apps["scripts"]["DISABLED"] in ("false", "<none>", "")
