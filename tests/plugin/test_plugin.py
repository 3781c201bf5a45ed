"""`kubectl cloudjob` end to end: the real kubectl runs the installed plugin against the
whole local stack (ZooKeeper, the local Mesos, the real API server, a controller with
its run history), reaching the history API through the API server's service proxy
(the chart's Service) and straight at its URL. What the plugin lists is exactly what
the API returns; `trigger` sets the annotation and a run follows; the queues and the
statistics render; a reader with only the documented RBAC can use it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from controller.app import ControllerThread
from controller.settings import HttpSettings
from devcluster.kube import ApiError
from tests.kubeworld import fresh_namespace
from tests.plugin.world import Plugin, api_get, outbound_address, serve_through_proxy
from tests.stack import NAMESPACE, Stack, leading
from tests.waiting import wait_for

pytestmark = pytest.mark.system

# Fires on 29 February only: the runs of this test are its triggers'.
LEAP_DAY = "0 0 0 29 2 ?"
FAILING_SHARD_1 = "sh -c 'test \"$CLOUDJOB_SHARDING_ITEM\" != 1 || exit 3'"


def start_reachable_controller(stack: Stack, address: str) -> tuple[ControllerThread, str]:
    """A replica listening on `address` (the service proxy's way in); its API's URL."""
    settings = stack.settings("replica-1").model_copy(
        update={"http": HttpSettings(host=address, health_port=0, metrics_port=0)}
    )
    replica = ControllerThread(settings)
    replica.start()
    stack.replicas.append(replica)
    wait_for(lambda: leading(replica), bool, what="the replica leading")
    return replica, f"http://{address}:{replica.controller.endpoints.health_port}"


def rows(table: str) -> list[list[str]]:
    """A plain table's rows, split on the three-space column gaps."""
    return [re.split(r"\s{3,}", line.strip()) for line in table.splitlines() if line.strip()]


def reader_kubeconfig(stack: Stack, controller_namespace: str, service: str) -> Path:
    """A user with only what docs/kubectl-plugin.md asks for: the proxy to the
    controller's API Service, and reading and patching CloudJobs."""
    admin = stack.kube
    roles = [
        (controller_namespace, [
            {
                "apiGroups": [""],
                "resources": ["services/proxy"],
                "resourceNames": [f"{service}:api"],
                "verbs": ["get"],
            }
        ]),
        (NAMESPACE, [
            {
                "apiGroups": ["cloudjob.io"],
                "resources": ["cloudjobs"],
                "verbs": ["get", "patch"],
            }
        ]),
    ]  # fmt: skip
    for namespace, rules in roles:
        admin.create(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "cloudjob-reader", "namespace": namespace},
                "rules": rules,
            }
        )
        admin.create(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "cloudjob-reader", "namespace": namespace},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "cloudjob-reader",
                },
                "subjects": [
                    {"kind": "ServiceAccount", "name": "reader", "namespace": controller_namespace}
                ],
            }
        )
    token = stack.api.service_account_token(controller_namespace, "reader")
    return stack.api.write_kubeconfig(
        stack.workdir / "reader.kubeconfig", token, user="reader", namespace=NAMESPACE
    )


def drop_reader_role(stack: Stack) -> None:
    for kind in ("RoleBinding", "Role"):
        try:
            stack.kube.delete("rbac.authorization.k8s.io/v1", kind, "cloudjob-reader", NAMESPACE)
        except ApiError as error:
            if error.code != 404:
                raise


def test_the_plugin_lists_triggers_and_shows_what_the_api_has(stack: Stack) -> None:
    address = outbound_address()
    _, base = start_reachable_controller(stack, address)
    controller_namespace = fresh_namespace(stack.api, "ctl")
    try:
        port = int(base.rsplit(":", 1)[1])
        service = serve_through_proxy(stack.api, controller_namespace, address, port)
        scenario(stack, base, controller_namespace, service)
    finally:
        stack.kube.delete("v1", "Namespace", controller_namespace)
        drop_reader_role(stack)


def scenario(stack: Stack, base: str, controller_namespace: str, service: str) -> None:
    admin = Plugin(stack.api, stack.api.admin_kubeconfig)
    stack.script_app_object()
    stack.script_job("report", LEAP_DAY, script={"commandLine": FAILING_SHARD_1})
    stack.wait_status("CloudJob", "report", lambda s: s.get("state") == "Scheduled")

    # trigger: the annotation, on the context's namespace, and a run of every shard.
    said = admin.ok("trigger", "report")
    value = re.findall(r"cloudjob\.io/trigger=(\S+)\)", said)[0]
    assert said.startswith("cloudjobs.cloudjob.io/report triggered"), said
    annotations = stack.get("CloudJob", "report")["metadata"]["annotations"]
    assert annotations["cloudjob.io/trigger"] == value
    ended = wait_for(
        lambda: api_get(base, f"/runs?namespace={NAMESPACE}&job=report")["items"],
        lambda items: len(items) == 3 and all(item["outcome"] for item in items),
        timeout=60,
        what="three shard runs of the trigger ended in the history",
    )
    stack.wait_status(
        "CloudJob", "report", lambda s: s.get("lastTrigger") == value, what="lastTrigger"
    )

    # runs, through the service proxy (the chart's Service, found by its label).
    assert admin.json("runs", "report") == {"items": ended}
    assert yaml.safe_load(admin.ok("runs", "report", "-o", "yaml")) == {"items": ended}
    table = rows(admin.ok("runs", "report"))
    assert table[0] == ["SHARD", "OUTCOME", "HOST", "STARTED", "DURATION", "MESSAGE"]
    assert [(r[0], r[1], r[2]) for r in table[1:]] == [
        (str(run["shard"]), run["outcome"].capitalize(), run["hostname"]) for run in ended
    ]
    failed = rows(admin.ok("runs", "report", "--outcome", "failed", "--no-headers"))
    assert len(failed) == 1
    assert failed[0][:2] == ["1", "Failed"]
    assert failed[0][-1] == "Command exited with status 3"
    assert admin.json("runs", "report", "--limit", "2") == {"items": ended[:2]}

    # The same straight at the API's URL (what scripts/dev exports), and -n.
    assert admin.json("runs", "report", CLOUDJOB_API=base) == {"items": ended}
    assert admin.json("runs", "report", "-n", NAMESPACE, "--server", base) == {"items": ended}
    named = f"{controller_namespace}/{service}"
    assert admin.json("runs", "report", "--service", named) == {"items": ended}

    # queue: a run that cannot be placed waits in the ready queue; one runs meanwhile.
    release = stack.workdir / "release-sleeper"
    stack.script_job(
        "sleeper",
        LEAP_DAY,
        shardingTotalCount=1,
        script={"commandLine": f"sh -c 'while [ ! -e {release} ]; do sleep 0.2; done'"},
    )
    stack.script_job("huge", LEAP_DAY, shardingTotalCount=1, cpuCount=4.0)
    for name in ("sleeper", "huge"):
        stack.wait_status("CloudJob", name, lambda s: s.get("state") == "Scheduled")
        admin.ok("trigger", name)
    queues = wait_for(
        lambda: api_get(base, "/queues"),
        lambda q: (
            [r["state"] for r in q["running"]] == ["TASK_RUNNING"]
            and [r["job"] for r in q["ready"]] == ["huge"]
        ),
        what="sleeper running and huge waiting in the ready queue",
    )
    assert admin.json("queue") == queues
    shown = rows(admin.ok("queue"))
    assert shown[0] == ["QUEUE", "NAMESPACE", "JOB", "RUNS", "FIRE TIMES"]
    assert shown[1][:4] == ["ready", NAMESPACE, "huge", "1"]
    assert shown[2] == ["QUEUE", "NAMESPACE", "JOB", "SHARD", "STATE", "HOST", "AGE"]
    host = queues["running"][0]["hostname"]
    assert shown[3][:6] == ["running", NAMESPACE, "sleeper", "0", "TASK_RUNNING", host]
    elsewhere = admin.run("queue", "-n", controller_namespace)
    assert (elsewhere.returncode, elsewhere.stdout) == (0, "")
    assert elsewhere.stderr == "No runs are queued or running.\n"

    # stats: the day's results are the three runs; one task runs; three jobs.
    statistics = admin.json("stats")
    assert statistics["results"]["lastDay"] == {"succeeded": 2, "failed": 1, "killed": 0}
    assert statistics["runningTasks"] == 1
    assert statistics["jobs"] == api_get(base, "/statistics")["jobs"]
    assert statistics["jobs"]["total"] == 3
    windows = {r[0]: r[1:] for r in rows(admin.ok("stats"))}
    assert windows["last day"] == ["2", "1", "0"]
    assert windows["1"][0] == "3" and "TRANSIENT=3" in windows["1"]
    # The three runs may have ended either side of a minute's turn.
    minutes = rows(admin.ok("stats", "--interval", "minute", "--no-headers"))
    assert [sum(int(m[i]) for m in minutes) for i in (1, 2, 3)] == [2, 1, 0]
    release.touch()

    # A reader with only the documented RBAC (no cluster-wide list of Services).
    reader = Plugin(stack.api, reader_kubeconfig(stack, controller_namespace, service))
    assert reader.json("runs", "report", "--service", named) == {"items": ended}
    unfound = reader.run("runs", "report")
    assert unfound.returncode == 1
    assert "cannot list Services to find the controller (403" in unfound.stderr
    assert "--service NAMESPACE/NAME[:PORT]" in unfound.stderr
    reader.ok("trigger", "report", "--value", "by-reader")
    wait_for(
        lambda: stack.status("CloudJob", "report").get("lastTrigger"),
        lambda seen: seen == "by-reader",
        what="the reader's trigger handled",
    )
    wait_for(
        lambda: api_get(base, f"/runs?namespace={NAMESPACE}&job=report")["items"],
        lambda items: len(items) == 6 and all(item["outcome"] for item in items),
        timeout=60,
        what="the reader's run ended in the history",
    )
    # The namespace is the context's unless -n says otherwise.
    elsewhere = Plugin(
        stack.api,
        stack.api.write_kubeconfig(
            stack.workdir / "elsewhere.kubeconfig",
            stack.api.admin_token,
            user="elsewhere",
            namespace=controller_namespace,
        ),
    )
    assert elsewhere.json("runs", "report", "-n", NAMESPACE, "--context", "elsewhere") == {
        "items": admin.json("runs", "report")["items"]
    }
    expect_errors(admin, reader, elsewhere, base, named)


def expect_errors(admin: Plugin, reader: Plugin, elsewhere: Plugin, base: str, named: str) -> None:
    def failed(plugin: Plugin, *args: str, **env: str) -> str:
        done = plugin.run(*args, **env)
        assert done.returncode == 1, (args, done)
        assert done.stdout == ""
        return done.stderr

    missing = 'error: cloudjobs.cloudjob.io "nosuch" not found in namespace "default"\n'
    assert failed(admin, "runs", "nosuch") == missing
    assert failed(admin, "trigger", "nosuch") == missing
    assert failed(admin, "runs", "nosuch", "--server", base) == missing
    other = named.split("/")[0]
    assert failed(elsewhere, "trigger", "report") == (
        f'error: cloudjobs.cloudjob.io "report" not found in namespace "{other}"\n'
    )
    gone = failed(admin, "runs", "report", "--service", f"{other}/nosuch")
    assert f"no controller answers behind the Service {other}/nosuch:api" in gone
    assert f"kubectl -n {other} get service nosuch" in gone
    refused = failed(reader, "queue", "--service", f"{other}/nosuch")
    assert "Reading the history API needs 'get' on services/proxy" in refused
    dead = "http://127.0.0.1:9"
    unreachable = failed(admin, "queue", CLOUDJOB_API=dead)
    assert unreachable.startswith(f"error: cannot reach the history API at {dead} (")
    assert "scripts/dev" in unreachable and "--server" in unreachable
