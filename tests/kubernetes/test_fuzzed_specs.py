"""Fuzzed specs through the real API server: generated CloudApp/CloudJob manifests
(valid, borderline, invalid; `tests/kubernetes/fuzzing.py`) are each refused with a
message naming the field, or accepted and then either scheduled or reported with a
condition naming the field. Meanwhile the controller keeps serving a job that runs
every second, and ZooKeeper never holds a job the controller's own validation refuses.

The count is `CLOUDJOB_FUZZ_COUNT` (300 in the test command; 1000 is the full set), the
seed `CLOUDJOB_FUZZ_SEED`: a failure names the seed and the case, and the same seed
makes the same manifests.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

import pytest

from controller.definitions import JobDefinition
from controller.reconcilers.specs import InvalidSpec, parse_job
from controller.resources import API_VERSION
from devcluster.kube import ApiError
from tests.kubernetes.fuzzing import SINK_APP, Expect, generate, manifest
from tests.stack import NAMESPACE, Stack
from tests.waiting import wait_for

pytestmark = pytest.mark.system

COUNT = int(os.environ.get("CLOUDJOB_FUZZ_COUNT", "300"))
SEED = int(os.environ.get("CLOUDJOB_FUZZ_SEED", "20261206"))
EVERY_SECOND = "* * * * * ?"


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == type_), {})


def settled(obj: dict[str, Any]) -> bool:
    """The controller has described this generation of the object."""
    status = obj.get("status") or {}
    return status.get("observedGeneration") == obj["metadata"]["generation"] and bool(
        condition(obj, "Ready")
    )


def outcome(kind: str, obj: dict[str, Any]) -> tuple[Expect, str]:
    """What the controller made of an accepted object, and the message that says so."""
    ready = condition(obj, "Ready")
    if kind == "CloudApp":
        if ready.get("reason") == "InvalidSpec":
            return Expect.REPORTED, ready["message"]
        return Expect.SCHEDULED, ready.get("message", "")
    if ready.get("reason") == "Expired":
        return Expect.REPORTED, ready["message"]
    if condition(obj, "Scheduled").get("status") == "True":
        return Expect.SCHEDULED, ""
    if ready.get("reason") == "AppMissing":
        return Expect.REPORTED, condition(obj, "AppAvailable").get("message", "")
    if ready.get("reason") == "InvalidSpec":
        return Expect.REPORTED, ready["message"]
    return Expect.EITHER, f"unexplained: {ready}"


def names_a_field(message: str) -> bool:
    return any(part in message for part in ("spec.", "metadata.name", "spec:"))


def stored_job_problems(stack: Stack) -> dict[str, str]:
    """Every job definition in ZooKeeper that the controller's validation refuses."""
    problems: dict[str, str] = {}
    for key in stack.zk_children("config/job"):
        raw = stack.zk.get(f"/{stack.zk_namespace}/config/job/{key}")[0]
        try:
            definition = JobDefinition.decode(raw)
            spec = json.loads(definition.spec.model_dump_json(by_alias=True))
            parse_job(definition.namespace, definition.name, spec)
        except (InvalidSpec, ValueError) as error:
            problems[key] = str(error)
    return problems


def test_fuzzed_manifests_are_refused_reported_or_scheduled_and_nothing_else_breaks(
    stack: Stack,
) -> None:
    cases = generate(SEED, COUNT)
    stack.start_controller()
    stack.script_app_object()
    stack.script_job("canary", EVERY_SECOND)
    # The sink app's executor needs more than any agent has: fuzzed jobs are scheduled
    # but never launched.
    sink = {"appURL": "http://sink.invalid/a", "bootstrapScript": "b", "cpuCount": 1000}
    stack.kube.create({**manifest("CloudApp", SINK_APP, sink), "metadata": {"name": SINK_APP}})
    wait_for(lambda: stack.runs.of("canary"), bool, what="the canary's first run")

    refused: dict[str, str] = {}
    for case in cases:
        body = {**case.manifest, "metadata": {**case.manifest["metadata"], "namespace": NAMESPACE}}
        try:
            stack.kube.create(body)
        except ApiError as error:
            assert error.code in (400, 422), (SEED, case, error)
            refused[case.name] = error.message
    accepted = [c for c in cases if c.name not in refused]

    def listed() -> dict[tuple[str, str], dict[str, Any]]:
        return {
            (kind, obj["metadata"]["name"]): obj
            for kind in ("CloudApp", "CloudJob")
            for obj in stack.kube.list(API_VERSION, kind, namespace=NAMESPACE)
        }

    objects = wait_for(
        listed,
        lambda seen: all(settled(seen[(c.kind, c.name)]) for c in accepted),
        what=f"every accepted object of seed {SEED} described by the controller",
        timeout=300,
    )

    findings: list[str] = []
    for case in cases:
        where = f"seed {SEED} {case.kind} {case.name} ({case.mutation})"
        if case.name in refused:
            message = refused[case.name]
            if case.expect not in (Expect.REFUSED, Expect.EITHER):
                findings.append(f"{where}: refused, expected {case.expect.value}: {message}")
            elif not names_a_field(message):
                findings.append(f"{where}: refused without naming a field: {message}")
            continue
        got, message = outcome(case.kind, objects[(case.kind, case.name)])
        if got is Expect.EITHER:
            findings.append(f"{where}: {message}")
        elif case.expect not in (got, Expect.EITHER):
            findings.append(f"{where}: {got.value}, expected {case.expect.value}: {message}")
        elif got is Expect.REPORTED and not (
            (case.field or "spec") in message and names_a_field(message)
        ):
            findings.append(f"{where}: reported without naming {case.field}: {message}")
    assert not findings, "\n".join(findings)
    assert stored_job_problems(stack) == {}
    # Held in ZooKeeper exactly when reported Scheduled.
    stored = set(stack.zk_children("config/job"))
    for case in accepted:
        if case.kind == "CloudJob":
            obj = objects[(case.kind, case.name)]
            held = condition(obj, "Scheduled").get("status") == "True"
            assert (f"{NAMESPACE}.{case.name}" in stored) == held, (SEED, case, obj["status"])

    # The controller still serves: the canary keeps running after all of this.
    before = len(stack.runs.fires("canary"))
    wait_for(
        lambda: len(stack.runs.fires("canary")),
        lambda fires: fires >= before + 3,
        what="the canary to keep running",
    )
    assert all(replica.alive for replica in stack.replicas)
    tally = Counter(
        "refused" if c.name in refused else outcome(c.kind, objects[(c.kind, c.name)])[0].value
        for c in cases
    )
    print(f"seed {SEED}: {len(cases)} manifests: {dict(tally)}")
