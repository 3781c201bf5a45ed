"""Seeded CloudApp/CloudJob manifests for the fuzzed-spec test: valid ones, borderline
ones (limits, unusual but legal forms) and invalid ones (each a single mutation of a
valid spec), every one labelled with what the system must do with it.

`Expect.REFUSED`: the API server's schema refuses it. `Expect.REPORTED`: it is accepted
and the controller reports it (a condition naming the field). `Expect.SCHEDULED`: it is
accepted and scheduled. `Expect.EITHER`: refused, reported or scheduled are all right —
the label the test cannot know without re-implementing a validator (a pruned unknown
field, a URL that only the fetcher judges); what must hold for those is that the
outcome is one of the three and explained.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controller.resources import API_VERSION

SINK_APP = "fuzz-sink"


class Expect(enum.Enum):
    REFUSED = "refused"
    REPORTED = "reported"
    SCHEDULED = "scheduled"
    EITHER = "either"


@dataclass(frozen=True)
class Fuzzed:
    kind: str
    name: str
    manifest: dict[str, Any]
    expect: Expect
    # What was done to the valid spec, to say which case failed.
    mutation: str
    # For REPORTED: the field the report must name.
    field: str = ""


ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata"]
VALID_CRONS = [
    "0 0 0 1 1 ? 2099",
    "0 */5 * * * ?",
    "*/10 * * * * ?",
    "0 15 10 ? * MON-FRI",
    "0 0 12 L * ?",
    "0 0 12 15W * ?",
    "0 0 12 ? * 6#3",
    "*/5 * * * *",
    "30 2 * * 0",
    "  0 0 3 * * ?  ",
    "0 0,15,30,45 * * * ?",
    "0 0 0 29 2 ? 2028",
]


def _job_spec(rng: random.Random) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "appName": SINK_APP,
        "cron": rng.choice(VALID_CRONS),
        "timeZone": rng.choice(ZONES),
        "shardingTotalCount": rng.randint(1, 4),
        "cpuCount": rng.choice([0.001, 0.1, 0.5, 1, 2.5]),
        "memoryMB": rng.choice([1, 16, 128, 1024]),
        "executionType": rng.choice(["TRANSIENT", "TRANSIENT", "DAEMON"]),
        "misfire": rng.random() < 0.5,
        "failover": rng.random() < 0.5,
        "placementStrategy": rng.choice(["binpack", "spread"]),
    }
    kind = rng.choice(["script", "python", "dataflow"])
    if kind == "script":
        spec["script"] = {"commandLine": rng.choice(["bin/run.sh", "sh -c 'echo \"$0\"'"])}
    elif kind == "python":
        spec["python"] = {"callable": "demo_jobs.simple:run"}
    else:
        spec["dataflow"] = {"source": "demo_jobs.dataflow:Numbers", "streaming": False}
    if rng.random() < 0.3:
        spec["shardingItemParameters"] = {
            str(i): f"p{i}" for i in range(spec["shardingTotalCount"])
        }
    return spec


def _app_spec(rng: random.Random) -> dict[str, Any]:
    return {
        "appURL": rng.choice(["http://repo.example/app.tar.gz", "file:///opt/apps/a.tgz"]),
        "bootstrapScript": "bin/start",
        "cpuCount": rng.choice([0.001, 0.5, 1]),
        "memoryMB": rng.choice([1, 64, 128]),
        "appCacheEnable": rng.random() < 0.5,
        "eventTraceSamplingCount": rng.choice([0, 1, 10]),
    }


def _without(field: str) -> Callable[[dict[str, Any]], None]:
    return lambda spec: spec.pop(field, None)


def _setting(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(spec: dict[str, Any]) -> None:
        spec[field] = value

    return mutate


def _only_kind(kind: str | None, value: Any = None) -> Callable[[dict[str, Any]], None]:
    def mutate(spec: dict[str, Any]) -> None:
        for other in ("script", "python", "dataflow"):
            spec.pop(other, None)
        if kind is not None:
            spec[kind] = value

    return mutate


def _two_kinds(spec: dict[str, Any]) -> None:
    spec["script"] = {"commandLine": "bin/run.sh"}
    spec["python"] = {"callable": "demo_jobs.simple:run"}


def _shard_keys(*keys: str) -> Callable[[dict[str, Any]], None]:
    def mutate(spec: dict[str, Any]) -> None:
        spec["shardingTotalCount"] = 2
        spec["shardingItemParameters"] = dict.fromkeys(keys, "x")

    return mutate


Mutation = tuple[str, Callable[[dict[str, Any]], None], Expect, str]

JOB_MUTATIONS: list[Mutation] = [
    # Refused by the schema.
    *[
        (f"no {f}", _without(f), Expect.REFUSED, "")
        for f in ("appName", "cron", "shardingTotalCount", "cpuCount", "memoryMB")
    ],
    ("shards as text", _setting("shardingTotalCount", "three"), Expect.REFUSED, ""),
    ("zero shards", _setting("shardingTotalCount", 0), Expect.REFUSED, ""),
    ("negative shards", _setting("shardingTotalCount", -1), Expect.REFUSED, ""),
    ("too many shards", _setting("shardingTotalCount", 10001), Expect.REFUSED, ""),
    ("fractional shards", _setting("shardingTotalCount", 1.5), Expect.REFUSED, ""),
    ("zero cpus", _setting("cpuCount", 0), Expect.REFUSED, ""),
    ("a ten-thousandth cpu", _setting("cpuCount", 0.0001), Expect.REFUSED, ""),
    ("cpus as text", _setting("cpuCount", "1"), Expect.REFUSED, ""),
    ("too many cpus", _setting("cpuCount", 2048), Expect.REFUSED, ""),
    ("zero memory", _setting("memoryMB", 0), Expect.REFUSED, ""),
    ("too much memory", _setting("memoryMB", 5_000_000), Expect.REFUSED, ""),
    ("unknown execution type", _setting("executionType", "CRON"), Expect.REFUSED, ""),
    ("unknown placement", _setting("placementStrategy", "random"), Expect.REFUSED, ""),
    ("misfire as text", _setting("misfire", "yes"), Expect.REFUSED, ""),
    ("empty cron", _setting("cron", ""), Expect.REFUSED, ""),
    ("cron in words", _setting("cron", "every minute"), Expect.REFUSED, ""),
    ("cron of three fields", _setting("cron", "* * *"), Expect.REFUSED, ""),
    ("cron of nine fields", _setting("cron", "0 0 0 1 1 ? 2099 1 1"), Expect.REFUSED, ""),
    ("overlong cron", _setting("cron", "0 " + "1," * 130 + "2 * * * ?"), Expect.REFUSED, ""),
    ("upper-case app name", _setting("appName", "Bad_App"), Expect.REFUSED, ""),
    ("app name with a leading dash", _setting("appName", "-x"), Expect.REFUSED, ""),
    ("overlong app name", _setting("appName", "a" * 64), Expect.REFUSED, ""),
    ("bad time zone characters", _setting("timeZone", "Europe Berlin"), Expect.REFUSED, ""),
    ("no job kind", _only_kind(None), Expect.REFUSED, ""),
    ("two job kinds", _two_kinds, Expect.REFUSED, ""),
    ("empty command line", _only_kind("script", {"commandLine": ""}), Expect.REFUSED, ""),
    ("script without a command", _only_kind("script", {}), Expect.REFUSED, ""),
    ("callable without a colon", _only_kind("python", {"callable": "mod"}), Expect.REFUSED, ""),
    ("source with a dash", _only_kind("dataflow", {"source": "a-b:C"}), Expect.REFUSED, ""),
    ("shard key out of range", _shard_keys("0", "2"), Expect.REFUSED, ""),
    ("shard key with a zero", _shard_keys("01"), Expect.REFUSED, ""),
    ("negative shard key", _shard_keys("-1"), Expect.REFUSED, ""),
    ("shard key in words", _shard_keys("first"), Expect.REFUSED, ""),
    ("overlong job parameter", _setting("jobParameter", "x" * 4097), Expect.REFUSED, ""),
    ("empty spec", lambda spec: spec.clear(), Expect.REFUSED, ""),
    # Accepted by the schema, reported by the controller on the field.
    ("hour 25", _setting("cron", "0 0 25 * * ?"), Expect.REPORTED, "spec.cron"),
    ("never fires", _setting("cron", "0 0 0 31 2 ?"), Expect.REPORTED, "spec.cron"),
    ("second 61", _setting("cron", "61 * * * * ?"), Expect.REPORTED, "spec.cron"),
    ("day of week 9", _setting("cron", "0 0 0 ? * 9"), Expect.REPORTED, "spec.cron"),
    ("unknown month", _setting("cron", "0 0 0 1 FOO ?"), Expect.REPORTED, "spec.cron"),
    ("a past year only", _setting("cron", "0 0 0 1 1 ? 2001"), Expect.REPORTED, "spec.cron"),
    ("step of zero", _setting("cron", "0/0 * * * * ?"), Expect.REPORTED, "spec.cron"),
    ("unknown zone", _setting("timeZone", "Mars/Olympus"), Expect.REPORTED, "spec.timeZone"),
    (
        "unbalanced quote",
        _only_kind("script", {"commandLine": "echo 'open"}),
        Expect.REPORTED,
        "spec.script.commandLine",
    ),
    ("a missing app", _setting("appName", "ghost-app"), Expect.REPORTED, "spec.appName"),
    # Borderline: at a limit or an unusual legal form.
    ("most shards", _setting("shardingTotalCount", 10000), Expect.SCHEDULED, ""),
    ("least cpus", _setting("cpuCount", 0.001), Expect.SCHEDULED, ""),
    ("most cpus", _setting("cpuCount", 1024), Expect.SCHEDULED, ""),
    ("least memory", _setting("memoryMB", 1), Expect.SCHEDULED, ""),
    ("longest job parameter", _setting("jobParameter", "é" * 4096), Expect.SCHEDULED, ""),
    ("unicode description", _setting("description", "日本語 ✓ \u0000x"), Expect.EITHER, ""),
    ("longest app name", _setting("appName", "a" * 63), Expect.REPORTED, "spec.appName"),
    ("an unknown field", _setting("retries", 3), Expect.EITHER, ""),
    ("integral cpus", _setting("cpuCount", 3), Expect.SCHEDULED, ""),
]

APP_MUTATIONS: list[Mutation] = [
    ("no appURL", _without("appURL"), Expect.REFUSED, ""),
    ("no bootstrap script", _without("bootstrapScript"), Expect.REFUSED, ""),
    ("empty appURL", _setting("appURL", ""), Expect.REFUSED, ""),
    ("zero cpus", _setting("cpuCount", 0), Expect.REFUSED, ""),
    ("negative sampling", _setting("eventTraceSamplingCount", -1), Expect.REFUSED, ""),
    ("sampling as text", _setting("eventTraceSamplingCount", "all"), Expect.REFUSED, ""),
    ("too much memory", _setting("memoryMB", 5_000_000), Expect.REFUSED, ""),
    ("cache flag as text", _setting("appCacheEnable", "on"), Expect.REFUSED, ""),
    ("a URL that is not one", _setting("appURL", "::not a url::"), Expect.EITHER, ""),
    ("least cpus", _setting("cpuCount", 0.001), Expect.SCHEDULED, ""),
    ("longest appURL", _setting("appURL", "http://h/" + "a" * 4087), Expect.SCHEDULED, ""),
]

# Object names that Kubernetes allows for most kinds but the CRDs do not (the
# controller keys objects by `<namespace>.<name>` and embeds names in Mesos ids).
NAMES: list[tuple[str, Expect, str]] = [
    ("with.dot", Expect.REFUSED, ""),
    ("x" * 64, Expect.REFUSED, ""),
]


def manifest(kind: str, name: str, spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }


def generate(seed: int, count: int) -> list[Fuzzed]:
    """`count` manifests: about a third valid, the rest single mutations, a few odd
    names. Names are unique (`fz-<n>` plus the odd ones)."""
    rng = random.Random(seed)
    cases: list[Fuzzed] = []
    for n in range(count):
        is_job = rng.random() < 0.7
        kind = "CloudJob" if is_job else "CloudApp"
        spec = _job_spec(rng) if is_job else _app_spec(rng)
        name = f"fz-{n}"
        roll = rng.random()
        if roll < 0.3:
            cases.append(Fuzzed(kind, name, manifest(kind, name, spec), Expect.SCHEDULED, "valid"))
            continue
        if roll < 0.33:
            suffix, expect, field = rng.choice(NAMES)
            odd = f"{name}-{suffix}"[:64] if len(suffix) > 60 else f"{name}-{suffix}"
            cases.append(Fuzzed(kind, odd, manifest(kind, odd, spec), expect, "odd name", field))
            continue
        label, mutate, expect, field = rng.choice(JOB_MUTATIONS if is_job else APP_MUTATIONS)
        mutate(spec)
        cases.append(Fuzzed(kind, name, manifest(kind, name, spec), expect, label, field))
    return cases
