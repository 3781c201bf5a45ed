"""Unit tests of the emulator's pure parts: RecordIO, content negotiation, IDs,
resources, task and executor-call validation, reconciliation answers, command
lines, container membership and the command line's port ranges."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devcluster.mesos.__main__ import port_ranges
from devcluster.mesos.agent.launching import apply_environment, command_argv
from devcluster.mesos.agent.serving import validate_executor_call
from devcluster.mesos.config import AgentSpec, format_duration
from devcluster.mesos.containers import ProcessEntry, container_members, parse_stat
from devcluster.mesos.protocol import JSON, new_uuid, state_for, uuid_error, validate_id
from devcluster.mesos.reconcile import ClusterView, KnownTask, reconcile
from devcluster.mesos.resources import Resources
from devcluster.mesos.validation import OfferRef, TaskContext, validate_offers, validate_task
from devcluster.mesos.wire import HttpError, RecordIODecoder, accepts, encode_record

pytestmark = pytest.mark.unit

events = st.lists(
    st.dictionaries(
        st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=20)), max_size=4
    ),
    min_size=1,
    max_size=6,
)


@given(events, st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=50))
def test_recordio_decoding_ignores_chunk_boundaries(
    records: list[dict[str, object]], cuts: list[int]
) -> None:
    stream = b"".join(encode_record(r) for r in records)
    decoder = RecordIODecoder()
    decoded: list[dict[str, object]] = []
    position = 0
    for size in cuts * (len(stream) // max(1, sum(cuts)) + 1):
        decoded.extend(decoder.feed(stream[position : position + size]))
        position += size
        if position >= len(stream):
            break
    decoded.extend(decoder.feed(stream[position:]))
    assert decoded == records


def test_record_length_counts_bytes_not_characters() -> None:
    record = encode_record({"message": "héllo"})
    length, body = record.split(b"\n", 1)
    assert int(length) == len(body)
    assert json.loads(body) == {"message": "héllo"}


def test_accept_header_negotiation() -> None:
    assert accepts(None, "application/json")
    assert accepts("", "application/json")
    assert accepts("*/*", "application/json")
    assert accepts("application/*", "application/json")
    assert accepts("text/html, application/json;q=0.5", "application/json")
    assert not accepts("application/json;q=0", "application/json")
    assert not accepts("text/html", "application/json")


def test_id_rules() -> None:
    assert validate_id("job-1.2_x") is None
    assert validate_id("") == "ID must not be empty"
    assert validate_id("a" * 255) is None
    assert validate_id("a" * 256) == "ID must not be greater than 255 characters"
    assert validate_id("é" * 127) is None  # 254 bytes
    assert validate_id("é" * 128) == "ID must not be greater than 255 characters"  # 256 bytes
    assert validate_id("..") == "'..' is disallowed"
    assert validate_id("a\\b") == "'a\\b' contains invalid characters"
    assert validate_id("tab\there") is not None


def test_uuid_rules() -> None:
    assert uuid_error("jhadf73jhakdlfha723adf") is not None
    assert uuid_error("!!!") == "Failed to base64 decode bytes field"
    assert uuid_error("AAAAAAAAQACAAAAAAAAAAA==") is None


def test_partition_awareness_mapping() -> None:
    assert state_for("TASK_UNREACHABLE", partition_aware=True) == "TASK_UNREACHABLE"
    for state in (
        "TASK_UNREACHABLE",
        "TASK_DROPPED",
        "TASK_GONE",
        "TASK_GONE_BY_OPERATOR",
        "TASK_UNKNOWN",
    ):
        assert state_for(state, partition_aware=False) == "TASK_LOST"
    assert state_for("TASK_RUNNING", partition_aware=False) == "TASK_RUNNING"


def test_resource_arithmetic_with_ports() -> None:
    agent = AgentSpec(cpus=2, mem=100, disk=0, ports=[(31000, 31009)]).resources()
    task = Resources.parse(
        [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}},
            {
                "name": "ports",
                "type": "RANGES",
                "ranges": {"range": [{"begin": 31002, "end": 31003}]},
            },
        ]
    )
    left = agent - task
    assert left.scalars["cpus"] == 1.5
    assert left.ports == ((31000, 31001), (31004, 31009))
    assert agent.contains(task)
    assert not left.contains(task)
    assert (left + task).ports == agent.ports
    assert left.to_state()["ports"] == "[31000-31001, 31004-31009]"


def test_format_duration_matches_stout() -> None:
    assert format_duration(5) == "5secs"
    assert format_duration(60) == "1mins"
    assert format_duration(900) == "15mins"
    assert format_duration(0.25) == "250ms"


def _context(**overrides: object) -> TaskContext:
    values: dict[str, object] = {
        "framework_id": "fw",
        "agent_id": "a1",
        "known_task_ids": set(),
        "unreachable_task_ids": set(),
        "executors_on_agent": {},
    }
    values.update(overrides)
    return TaskContext(**values)  # type: ignore[arg-type]


def _task(**overrides: object) -> dict[str, object]:
    task: dict[str, object] = {
        "task_id": {"value": "t1"},
        "agent_id": {"value": "a1"},
        "name": "t1",
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}}],
        "command": {"value": "true"},
    }
    task.update(overrides)
    return task


def test_task_validation_messages() -> None:
    available = Resources({"cpus": 2.0})
    assert validate_task(_task(), _context(), available)[0] is None
    assert (
        validate_task(_task(), _context(known_task_ids={"t1"}), available)[0]
        == "Task has duplicate ID: t1"
    )
    assert validate_task(_task(), _context(unreachable_task_ids={"t1"}), available)[0] == (
        "Task reuses the ID of an unreachable task: t1"
    )
    executor = {
        "executor_id": {"value": "e"},
        "command": {"value": "x"},
        "framework_id": {"value": "other"},
    }
    both = _task(executor=executor)
    assert "at least one (but not both)" in str(validate_task(both, _context(), available)[0])
    no_command = _task(executor={"executor_id": {"value": "e"}})
    del no_command["command"]
    assert (
        validate_task(no_command, _context(), available)[0] == "'ExecutorInfo.command' must be set"
    )
    wrong_framework = _task(executor=executor)
    del wrong_framework["command"]
    assert validate_task(wrong_framework, _context(), available)[0] == (
        "ExecutorInfo has an invalid FrameworkID (Actual: other vs Expected: fw)"
    )
    too_big = _task(resources=[{"name": "cpus", "type": "SCALAR", "scalar": {"value": 3}}])
    assert "is more than available" in str(validate_task(too_big, _context(), available)[0])


def test_offer_validation_messages() -> None:
    offers = {
        "o1": OfferRef("o1", "fw", "a1"),
        "o2": OfferRef("o2", "fw", "a2"),
        "o3": OfferRef("o3", "other", "a1"),
    }
    assert validate_offers([], offers, "fw") == "No offers specified"
    assert validate_offers(["o1", "o1"], offers, "fw") == "Duplicate offer o1 in offer list"
    assert validate_offers(["zz"], offers, "fw") == "Offer zz is no longer valid"
    assert (
        validate_offers(["o3"], offers, "fw")
        == "Offer o3 has invalid framework other while framework fw is expected"
    )
    assert "must belong to one single agent" in str(validate_offers(["o1", "o2"], offers, "fw"))
    assert validate_offers(["o1"], offers, "fw") is None


def test_reconciliation_cases() -> None:
    view = ClusterView(
        tasks={"known": KnownTask("a1", "TASK_RUNNING", None)},
        registered_agents={"a1"},
        recovering_agents=set(),
        unreachable_agents={"a2": 1.5},
        gone_agents={"a3"},
    )
    states = [
        (s["task_id"]["value"], s["state"])
        for s in reconcile(
            [("known", None), ("x", "a1"), ("y", "a2"), ("z", "a3"), ("w", "a9"), ("v", None)],
            view,
            True,
        )
    ]
    assert states == [
        ("known", "TASK_RUNNING"),
        ("x", "TASK_GONE"),
        ("y", "TASK_UNREACHABLE"),
        ("z", "TASK_GONE_BY_OPERATOR"),
        ("w", "TASK_UNKNOWN"),
        ("v", "TASK_UNKNOWN"),
    ]
    legacy = [s["state"] for s in reconcile([("x", "a1"), ("y", "a2")], view, False)]
    assert legacy == ["TASK_LOST", "TASK_LOST"]
    implicit = reconcile([], view, True)
    assert [(s["task_id"]["value"], s["reason"], "uuid" in s) for s in implicit] == [
        ("known", "REASON_RECONCILIATION", False)
    ]
    recovering = ClusterView(view.tasks, {"a1"}, {"a4"}, {}, set())
    assert (
        reconcile([("x", "a4"), ("y", None), ("known", None)], recovering, True)[0]["task_id"][
            "value"
        ]
        == "known"
    )


def entry(pid: int, ppid: int, pgrp: int, session: int, zombie: bool = False) -> ProcessEntry:
    return ProcessEntry(pid=pid, ppid=ppid, pgrp=pgrp, session=session, zombie=zombie)


AGENT_SESSION = 10


def test_container_members_follow_children_groups_and_sessions() -> None:
    table = [
        entry(10, 1, 10, AGENT_SESSION),  # the agent itself
        entry(100, 10, 100, 100),  # the executor, leader of its session
        entry(101, 100, 101, 100),  # a job in a process group of its own
        entry(102, 101, 101, 100),  # the job's child
        entry(103, 1, 101, 100),  # an orphan of the job: still in the job's group
        entry(104, 100, 104, 104),  # a child that made a session of its own
        entry(105, 104, 104, 104),  # ... and its child
        entry(106, 1, 106, 100),  # an orphan in a group of its own, still in the session
        entry(200, 10, 200, 200),  # another container
        entry(201, 200, 201, 200),
        entry(300, 1, 300, 300),  # an unrelated daemon
    ]
    assert container_members(100, table, AGENT_SESSION) == {100, 101, 102, 103, 104, 105, 106}
    assert container_members(200, table, AGENT_SESSION) == {200, 201}


def test_container_members_after_the_leader_exited() -> None:
    # The leader is a zombie; its session id still names the container.
    table = [
        entry(100, 10, 100, 100, zombie=True),
        entry(101, 1, 101, 100),
        entry(102, 101, 102, 102),
        entry(103, 1, 103, 103),  # left the session and lost its parent: out of reach
    ]
    assert container_members(100, table, AGENT_SESSION) == {100, 101, 102}


def test_container_members_never_include_the_agents_session() -> None:
    table = [entry(10, 1, 10, AGENT_SESSION), entry(100, 10, 100, 100), entry(11, 100, 10, 10)]
    assert container_members(100, table, AGENT_SESSION) == {100}


def test_parse_stat_reads_names_with_spaces_and_parentheses() -> None:
    text = b"4242 (a (weird) name) S 1 4240 4239 0 -1 4194560 97 0 0 0"
    assert parse_stat(4242, text) == entry(4242, 1, 4240, 4239)
    assert parse_stat(7, b"7 (x) Z 1 7 7 0").zombie


def test_command_lines_follow_command_info_shell() -> None:
    assert command_argv({"value": "echo $HOME"}) == (["/bin/sh", "-c", "echo $HOME"], None)
    assert command_argv({"shell": False, "value": "/bin/printf", "arguments": ["p", "%s"]}) == (
        ["p", "%s"],
        "/bin/printf",
    )
    assert command_argv({"shell": False, "value": "true"}) == (["true"], "true")


def test_only_plain_environment_values_are_set() -> None:
    env = {"PATH": "/bin", "KEEP": "1"}
    apply_environment(
        env,
        {
            "environment": {
                "variables": [
                    {"name": "PATH", "value": "/opt/bin"},
                    {"name": "EMPTY"},
                    {"name": "SECRET", "type": "SECRET", "secret": {}},
                ]
            }
        },
    )
    assert env == {"PATH": "/opt/bin", "KEEP": "1", "EMPTY": ""}


def _update_call(**status: object) -> JSON:
    base: JSON = {
        "task_id": {"value": "t"},
        "state": "TASK_RUNNING",
        "source": "SOURCE_EXECUTOR",
        "uuid": new_uuid(),
    }
    return {
        "type": "UPDATE",
        "framework_id": {"value": "f"},
        "executor_id": {"value": "e"},
        "update": {"status": {**base, **status}},
    }


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({}, "Expecting 'type' to be present"),
        ({"type": "SUBSCRIBE"}, "Expecting 'subscribe' to be present"),
        ({"type": "MESSAGE"}, "Expecting 'message' to be present"),
        ({"type": "UPDATE"}, "Expecting 'update' to be present"),
        (
            _update_call(executor_id={"value": "other"}),
            "ExecutorID in Call: e does not match ExecutorID in TaskStatus: other",
        ),
        (
            _update_call(source="SOURCE_AGENT"),
            "Received Call from executor e of framework f with invalid source, "
            "expecting 'SOURCE_EXECUTOR'",
        ),
        (
            _update_call(state="TASK_STAGING"),
            "Received TASK_STAGING from executor e of framework f which is not allowed",
        ),
    ],
)
def test_malformed_executor_calls_are_refused(call: JSON, message: str) -> None:
    with pytest.raises(HttpError) as refused:
        validate_executor_call(call)
    assert refused.value == HttpError(400, f"Failed to validate Executor::Call: {message}")


def test_well_formed_executor_calls_pass() -> None:
    validate_executor_call(_update_call())
    validate_executor_call({"type": "HEARTBEAT"})


@pytest.mark.parametrize("agents", [1, 2, 34, 35, 50, 500])
def test_port_ranges_are_disjoint_and_valid_for_any_number_of_agents(agents: int) -> None:
    ranges = port_ranges(agents)
    assert len(ranges) == agents
    assert all(0 < begin <= end < 65536 for begin, end in ranges)
    assert all(end < following for (_, end), (following, _) in itertools.pairwise(ranges))
    assert ranges[0][0] == 31000
    widths = {end - begin + 1 for begin, end in ranges}
    # As many agents as fit keep a thousand ports each; more share the space evenly.
    assert widths == ({1000} if agents <= 34 else {(65536 - 31000) // agents})
