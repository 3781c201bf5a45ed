"""What the chart renders, run: replicas started with the image's command and exactly the
container's CLOUDJOB_* environment, against a real ZooKeeper, the local Mesos and the
real Kubernetes API server. The replicas authenticate as the chart's ServiceAccount,
bound by exactly the RBAC objects the chart renders for these values, so the API server
itself refuses anything the chart does not grant. The probes' endpoints answer as the
Deployment expects (both the leader and the standby Ready), the objects are handled, the
replicas stop within the termination grace period, and no request was refused.

Only two things differ from a pod: the endpoints listen on 127.0.0.1 and free ports
instead of 0.0.0.0, and the service-account token is given in a kubeconfig instead of
being mounted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import helm_python
import pytest

from devcluster.kube.identities import Identity, grant_chart_rbac
from devcluster.zookeeper import free_port
from tests.deploy.chart import PROJECT, Rendered, image_command, merged, render, values_file
from tests.deploy.rbac import Access
from tests.stack import FAST_FRAMEWORK, NAMESPACE, Stack
from tests.waiting import wait_for

pytestmark = pytest.mark.system

FAR_FUTURE = "0 0 0 1 1 ? 2099"


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@dataclass
class Replica:
    pod: str
    process: subprocess.Popen[bytes]
    health: int
    metrics: int
    log: Path

    def get(self, port: int, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError:
            return 0, ""

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def chart_values(stack: Stack, watched: list[str]) -> dict[str, Any]:
    return merged(
        values_file("default"),
        {
            "zookeeper": {
                "hosts": stack.zk_hosts,
                "namespace": stack.zk_namespace,
                "sessionTimeoutSeconds": 2,
            },
            "mesos": {
                "master": stack.mesos.master_address,
                "framework": {camel(key): value for key, value in FAST_FRAMEWORK.items()},
            },
            "status": {"refreshIntervalSeconds": 2, "minIntervalSeconds": 0.3},
            "kubernetes": {"watchNamespaces": watched},
        },
    )


def start(rendered: Rendered, stack: Stack, pod: str, identity: Identity) -> Replica:
    """One replica as the kubelet would start it, but on loopback."""
    env = {"PATH": os.environ["PATH"], "HOME": str(stack.workdir)}
    for entry in rendered.env:
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        else:
            assert entry["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}, entry
            env[entry["name"]] = pod
    health, metrics = free_port(), free_port()
    env.update(
        {
            "CLOUDJOB_HTTP__HOST": "127.0.0.1",
            "CLOUDJOB_HTTP__HEALTH_PORT": str(health),
            "CLOUDJOB_HTTP__METRICS_PORT": str(metrics),
            "CLOUDJOB_KUBERNETES__KUBECONFIG": str(identity.kubeconfig),
        }
    )
    command = image_command(rendered.container)
    assert command[0] == "python"
    log = stack.workdir / f"{pod}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, *command[1:]],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=PROJECT,
        )
    stack.processes.append(process)
    return Replica(pod=pod, process=process, health=health, metrics=metrics, log=log)


def role(replica: Replica, rendered: Rendered) -> str | None:
    """The role /readyz reports, if the readiness probe would pass."""
    code, body = replica.get(
        replica.health, rendered.container["readinessProbe"]["httpGet"]["path"]
    )
    return str(json.loads(body)["role"]) if code == 200 else None


def shows_leading(value: float, reply: tuple[int, str]) -> bool:
    return reply[0] == 200 and f"cloudjob_scheduler_leading {value}" in reply[1]


def handle_objects(stack: Stack) -> None:
    """A job before its app (a warning Event), the app, both Ready; then both deleted."""
    stack.script_job("report", FAR_FUTURE)
    wait_for(
        lambda: [e["reason"] for e in stack.events("CloudJob", "report")],
        lambda reasons: "AppMissing" in reasons,
        what="the AppMissing event",
    )
    stack.script_app_object()
    stack.wait_status(
        "CloudJob",
        "report",
        lambda s: any(
            c["type"] == "Scheduled" and c["status"] == "True" for c in s.get("conditions", [])
        ),
        what="the job scheduled",
    )
    for kind, name in (("CloudJob", "report"), ("CloudApp", "scripts")):
        stack.delete(kind, name)
        wait_for(partial(stack.exists, kind, name), lambda there: not there, what=f"{name} gone")


def controller_requests(stack: Stack, identity: Identity) -> set[Access]:
    """What the replicas asked the API server for, from its audit log; a request it
    refused fails the test."""
    made = set()
    for event in stack.api.audit(since=stack.audit_start, user=identity.username):
        code = event.get("responseStatus", {}).get("code")
        assert code != 403, f"the chart's RBAC forbids {event['verb']} {event['requestURI']}"
        ref = event.get("objectRef")
        if ref:
            resource = ref["resource"] + (
                f"/{ref['subresource']}" if ref.get("subresource") else ""
            )
            made.add(Access(event["verb"], ref.get("apiGroup", ""), resource, ref.get("namespace")))
    return made


@pytest.mark.slow
@pytest.mark.parametrize(
    ("watched", "replicas"), [([], 2), ([NAMESPACE], 1)], ids=["cluster-wide", "namespaced"]
)
def test_the_rendered_deployment_runs_and_needs_no_more_than_its_rbac(
    chart: helm_python.Chart, stack: Stack, watched: list[str], replicas: int
) -> None:
    rendered = render(chart, chart_values(stack, watched))
    # A release of its own: the ClusterRole of the tests' shared identity stays as it is.
    identity = grant_chart_rbac(
        stack.api, stack.workdir, release=f"run-{len(watched)}", watch_namespaces=tuple(watched)
    )
    started = [
        start(rendered, stack, f"cj-cloudjob-controller-{n}", identity) for n in range(replicas)
    ]
    try:
        # A replica is Ready as a standby as soon as it contends, then one of them leads.
        expected = ["leader"] + ["standby"] * (replicas - 1)
        wait_for(
            lambda: sorted(str(role(r, rendered)) for r in started),
            lambda roles: roles == expected,
            what=f"readiness probes passing with the roles {expected}",
        )
        for replica in started:
            liveness = rendered.container["livenessProbe"]["httpGet"]["path"]
            assert replica.get(replica.health, liveness)[0] == 200
            # The leader's gauge turns 1 once its scheduling core has started.
            leading = 1.0 if role(replica, rendered) == "leader" else 0.0
            wait_for(
                partial(replica.get, replica.metrics, "/metrics"),
                partial(shows_leading, leading),
                what=f"{replica.pod}'s metrics",
            )

        handle_objects(stack)

        grace = rendered.one("Deployment")["spec"]["template"]["spec"][
            "terminationGracePeriodSeconds"
        ]
        for replica in started:
            replica.process.send_signal(signal.SIGTERM)
        for replica in started:
            assert replica.process.wait(grace) == 0, replica.output()
    except BaseException:
        print("\n\n".join(f"--- {r.pod}\n{r.output()}" for r in started))
        raise

    made = controller_requests(stack, identity)
    scope = NAMESPACE if watched else None
    assert {
        Access("watch", "cloudjob.io", "cloudjobs", scope),
        Access("patch", "cloudjob.io", "cloudjobs", NAMESPACE),
        Access("patch", "cloudjob.io", "cloudjobs/status", NAMESPACE),
        Access("create", "", "events", NAMESPACE),
    } <= made, sorted(map(str, made))
    if watched:
        assert Access("watch", "", "namespaces") in made
