"""What users do with kubectl, done with the real kubectl against the real API server:
apply the CRDs and the example manifests; get, describe, explain, annotate and delete by
plural, singular, short name and category; and the API server's own answers to bad
manifests (the CRDs' schema and CEL rules), as a person reads them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster.kube import ControlPlane
from tests.kubeworld import fresh_namespace
from tests.stack import NAMESPACE, Stack, job_manifest
from tests.waiting import wait_for

pytestmark = pytest.mark.system

PROJECT = Path(__file__).resolve().parents[2]
EXAMPLES = PROJECT / "examples" / "manifests"
FAR_FUTURE = "0 0 0 1 1 ? 2099"

Kubectl = Callable[..., str]


@pytest.fixture
def kubectl(kube_cluster: ControlPlane) -> Kubectl:
    def run(*args: str, stdin: str | None = None) -> str:
        done = kube_cluster.kubectl(*args, input=stdin, check=False)
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done.stdout

    return run


def refusal(cluster: ControlPlane, manifest: dict[str, Any]) -> str:
    """What `kubectl apply` prints when the API server refuses `manifest`."""
    done = cluster.kubectl(
        "apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(manifest), check=False
    )
    assert done.returncode != 0, f"the API server accepted {manifest}"
    return done.stderr


def test_crds_and_examples_apply_and_every_name_resolves(
    kube_cluster: ControlPlane, kubectl: Kubectl
) -> None:
    crds = kubectl("apply", "-f", str(PROJECT / "crds"))
    assert "customresourcedefinition.apiextensions.k8s.io/cloudjobs.cloudjob.io" in crds
    assert "customresourcedefinition.apiextensions.k8s.io/cloudapps.cloudjob.io" in crds
    namespace = fresh_namespace(kube_cluster)
    applied = kubectl("apply", "-n", namespace, "-f", str(EXAMPLES))
    jobs = [
        doc["metadata"]["name"]
        for doc in yaml.safe_load_all((EXAMPLES / "jobs.yaml").read_text())
        if doc
    ]
    for job in jobs:
        assert f"cloudjob.cloudjob.io/{job} created" in applied, applied
    assert "cloudapp.cloudjob.io/demo-app created" in applied

    for form in ("cloudjob", "cloudjobs", "cjob", "cjobs", "cloudjobs.cloudjob.io"):
        found = kubectl("get", form, "hello-script", "-n", namespace, "-o", "name")
        assert found.strip() == "cloudjob.cloudjob.io/hello-script", form
    for form in ("cloudapp", "cloudapps", "capp", "capps", "cloudapps.cloudjob.io"):
        found = kubectl("get", form, "demo-app", "-n", namespace, "-o", "name")
        assert found.strip() == "cloudapp.cloudjob.io/demo-app", form
    everything = kubectl("get", "cloudjob-all", "-n", namespace, "-o", "name").split()
    assert sorted(everything) == sorted(
        ["cloudapp.cloudjob.io/demo-app"] + [f"cloudjob.cloudjob.io/{job}" for job in jobs]
    )

    described = kubectl("describe", "cloudjob", "hello-script", "-n", namespace)
    assert "Name:         hello-script" in described
    assert "Cron:" in described and "*/10 * * * * ?" in described
    explained = kubectl("explain", "cloudjob.spec.shardingItemParameters")
    assert "Parameter of each shard item" in explained
    assert "Quartz" in kubectl("explain", "cjob.spec.cron")

    kubectl("annotate", "cloudjob", "hello-script", "-n", namespace, "cloudjob.io/trigger=42")
    annotation = kubectl(
        "get",
        "cjob",
        "hello-script",
        "-n",
        namespace,
        "-o",
        "jsonpath={.metadata.annotations.cloudjob\\.io/trigger}",
    )
    assert annotation == "42"

    forms = iter(("cloudjob", "cjob", "cloudjobs", "cloudjobs.cloudjob.io"))
    for job in jobs:
        deleted = kubectl("delete", next(forms), job, "-n", namespace)
        assert f'cloudjob.cloudjob.io "{job}" deleted' in deleted
    kubectl("delete", "capp", "demo-app", "-n", namespace)
    assert kubectl("get", "cloudjob-all", "-n", namespace, "-o", "name").strip() == ""


def test_trigger_with_kubectl_annotate_runs_once(stack: Stack) -> None:
    stack.start_controller()
    stack.script_app_object()
    stack.script_job("manual", FAR_FUTURE)
    stack.wait_status("CloudJob", "manual", lambda s: s.get("state") == "Scheduled")
    stack.api.kubectl(
        "annotate", "cloudjob", "manual", "-n", NAMESPACE, "cloudjob.io/trigger=1700000000"
    )
    runs = wait_for(lambda: stack.runs.of("manual"), lambda r: len(r) == 3, what="one run")
    assert sorted(run["sharding_item"] for run in runs) == [0, 1, 2]


GOOD = job_manifest("bad", "demo-app", "0 * * * * ?", script={"commandLine": "bin/hello.sh"})


def spec_with(**changes: Any) -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load(yaml.safe_dump(GOOD))
    for key, value in changes.items():
        if value is None:
            manifest["spec"].pop(key, None)
        else:
            manifest["spec"][key] = value
    return manifest


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"python": {"callable": "demo_jobs.simple:run"}},
            "set exactly one of spec.script (a command line), spec.python",
        ),
        ({"script": None}, "set exactly one of spec.script (a command line), spec.python"),
        (
            {"shardingItemParameters": {"0": "a", "3": "d"}},
            "spec.shardingItemParameters: Invalid value: every key of "
            "spec.shardingItemParameters must be a shard item",
        ),
        ({"shardingItemParameters": {"01": "a"}}, "must be a shard item: an integer"),
        ({"shardingItemParameters": {"x": "a"}}, "must be a shard item: an integer"),
        ({"cpuCount": 0}, "spec.cpuCount: Invalid value: 0: must be at least 0.001"),
        ({"cpuCount": 0.0001}, "spec.cpuCount in body should be greater than or equal to 0.001"),
        ({"shardingTotalCount": "3"}, "spec.shardingTotalCount: Invalid value"),
        ({"cron": "tomorrow"}, "spec.cron: Invalid value"),
        ({"executionType": "ONCE"}, 'spec.executionType: Unsupported value: "ONCE"'),
    ],
    ids=[
        "two-kinds",
        "no-kind",
        "shard-beyond-count",
        "shard-leading-zero",
        "shard-not-a-number",
        "zero-cpu",
        "tiny-cpu",
        "string-count",
        "cron-shape",
        "unknown-execution-type",
    ],
)
def test_the_api_server_refuses_a_bad_job_naming_the_field(
    kube_cluster: ControlPlane, changes: dict[str, Any], expected: str
) -> None:
    assert expected in refusal(kube_cluster, spec_with(**changes))


def test_the_api_server_accepts_every_job_kind_and_full_shard_parameters(
    kube_cluster: ControlPlane,
) -> None:
    kinds = {
        "script": {"commandLine": "bin/hello.sh"},
        "python": {"callable": "demo_jobs.simple:run"},
        "dataflow": {"source": "demo_jobs.dataflow:Numbers"},
    }
    for kind, body in kinds.items():
        manifest = spec_with(script=None)
        manifest["spec"][kind] = body
        manifest["spec"]["shardingItemParameters"] = {"0": "a", "1": "b", "2": "c"}
        done = kube_cluster.kubectl(
            "apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(manifest), check=False
        )
        assert done.returncode == 0, (kind, done.stderr)
