"""What `kubectl get cloudjobs` and `kubectl get cloudapps` show (the CRDs' printer
columns, served by the API emulator as kubectl asks for them): the State and Last
Schedule columns are filled for jobs run by their cron and for jobs only triggered."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from tests.e2e.stack import NAMESPACE, Stack, wait_for

FAR_FUTURE = "0 0 0 1 1 ? 2099"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def table(stack: Stack, plural: str, wide: bool = False) -> dict[str, dict[str, Any]]:
    """Name → {column: cell} of `kubectl get <plural> [-o wide]`."""
    path = f"/apis/cloudjob.io/v1alpha1/namespaces/{NAMESPACE}/{plural}"
    request = urllib.request.Request(stack.api.url + path, headers={"Accept": TABLE})
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.loads(response.read())
    columns = [c["name"] for c in answer["columnDefinitions"] if wide or c.get("priority", 0) == 0]
    every = [c["name"] for c in answer["columnDefinitions"]]
    rows = {}
    for row in answer["rows"]:
        cells = dict(zip(every, row["cells"], strict=True))
        rows[cells["Name"]] = {name: cells[name] for name in columns}
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
            all(row["State"] and row["Last Schedule"] for row in found.values())
            and set(found) == {"cron", "manual"}
        ),
        what="State and Last Schedule of both jobs",
    )
    assert rows["manual"]["State"] in ("Scheduled", "Running", "Pending")
    assert rows["cron"]["App"] == "scripts"
    wide = wait_for(
        lambda: table(stack, "cloudjobs", wide=True),
        lambda found: found["manual"]["Succeeded"] == 3,
        what="the triggered run counted",
    )
    assert wide["cron"]["Next Schedule"]
    apps = wait_for(
        lambda: table(stack, "cloudapps"),
        lambda found: found.get("scripts", {}).get("Ready") == "True",
        what="the app's Ready column",
    )
    assert apps["scripts"]["Disabled"] in (False, None, "<none>", "")
