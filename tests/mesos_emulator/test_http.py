"""Local Mesos conformance over raw HTTP: what pymesos never sends (bad headers,
malformed calls, stream ids), RecordIO framing independent of chunk boundaries,
and the agent's executor API checks."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import socket
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from devcluster.mesos import LocalMesos
from devcluster.mesos.standby import StandbyMaster
from devcluster.mesos.wire import RecordIODecoder
from tests.mesos_emulator.conftest import (
    Framework,
    command_task,
    executor_info,
    executor_task,
    http_post,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

SUBSCRIBE = {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "root", "name": "raw"}}}
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


def post(
    cluster: LocalMesos, body: Any, headers: dict[str, str] | None = None, method: str = "POST"
) -> tuple[int, str]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return http_post(cluster.master_url + "/api/v1/scheduler", raw, headers or JSON_HEADERS, method)


class RawSubscription:
    """A SUBSCRIBE over a plain socket; decodes chunked transfer and RecordIO by hand."""

    def __init__(
        self,
        cluster: LocalMesos,
        call: dict[str, Any] = SUBSCRIBE,
        address: str | None = None,
        path: str = "/api/v1/scheduler",
    ) -> None:
        address = address or cluster.master_address
        host, port = address.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        body = json.dumps(call).encode()
        request = (
            f"POST {path} HTTP/1.1\r\nHost: {address}\r\n"
            "Content-Type: application/json\r\nAccept: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        self.sock.sendall(request)
        self.buffer = b""
        self.chunk_sizes: list[int] = []
        self.decoder = RecordIODecoder()
        head = self._read_until(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {
            k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if line)
        }

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("connection closed")
            self.buffer += data
        head, self.buffer = self.buffer.split(marker, 1)
        return head

    def _read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("connection closed")
            self.buffer += data
        out, self.buffer = self.buffer[:size], self.buffer[size:]
        return out

    def next_events(self) -> list[dict[str, Any]]:
        """Read chunks until a whole record is decoded, feeding the decoder byte by byte."""
        while True:
            size = int(self._read_until(b"\r\n").split(b";")[0], 16)
            if size == 0:
                raise EOFError("stream ended")
            chunk = self._read_exactly(size)
            self._read_exactly(2)
            self.chunk_sizes.append(size)
            events: list[dict[str, Any]] = []
            for index in range(len(chunk)):
                events.extend(self.decoder.feed(chunk[index : index + 1]))
            if events:
                return events

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize(
    ("headers", "status", "text"),
    [
        ({"Accept": "application/json"}, 400, "Expecting 'Content-Type' to be present"),
        (
            {"Content-Type": "text/plain"},
            415,
            "Expecting 'Content-Type' of application/json or application/x-protobuf",
        ),
        ({"Content-Type": "application/json; charset=utf-8"}, 415, "Expecting 'Content-Type'"),
        ({"Content-Type": "application/x-protobuf"}, 415, "JSON only"),
        (
            {"Content-Type": "application/json", "Accept": "text/html"},
            406,
            "Expecting 'Accept' to allow",
        ),
        (
            {"Content-Type": "application/json", "Mesos-Stream-Id": str(uuid.uuid4())},
            400,
            "Subscribe calls should not include the 'Mesos-Stream-Id' header",
        ),
    ],
)
def test_subscribe_header_checks(
    cluster: LocalMesos, headers: dict[str, str], status: int, text: str
) -> None:
    code, body = post(cluster, SUBSCRIBE, headers)
    assert code == status
    assert text in body


def test_non_post_is_405(cluster: LocalMesos) -> None:
    code, body = http_post(cluster.master_url + "/api/v1/scheduler", b"", {}, method="GET")
    assert code == 405
    assert "Expecting one of { 'POST' }, but received 'GET'" in body


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b"{not json", "Failed to parse body into JSON"),
        (b"[1, 2]", "Failed to convert JSON into Call protobuf: Expecting a JSON object"),
        (
            {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"name": "x"}}},
            "Missing required fields: subscribe.framework_info.user",
        ),
        ({"type": "BOGUS"}, "Failed to find enum for 'BOGUS'"),
        (
            {"subscribe": {"framework_info": {"user": "u", "name": "n"}}},
            "Expecting 'type' to be present",
        ),
        ({"type": "SUBSCRIBE"}, "Expecting 'subscribe' to be present"),
        ({"type": "TEARDOWN"}, "Expecting 'framework_id' to be present"),
        (
            {
                "type": "SUBSCRIBE",
                "framework_id": {"value": "a"},
                "subscribe": {"framework_info": {"user": "u", "name": "n"}},
            },
            "'framework_id' differs from 'subscribe.framework_info.id'",
        ),
        ({"type": "TEARDOWN", "framework_id": {"value": "nope"}}, "Framework cannot be found"),
        ({"type": "ACCEPT", "framework_id": {"value": "nope"}}, "Expecting 'accept' to be present"),
    ],
)
def test_malformed_calls_are_400(cluster: LocalMesos, body: Any, text: str) -> None:
    code, message = post(cluster, body)
    assert code == 400
    assert text in message


def test_calls_need_the_current_stream_id(cluster: LocalMesos, framework: Framework) -> None:
    call = {"type": "REVIVE", "framework_id": {"value": framework.framework_id}}
    code, body = post(cluster, call, {"Content-Type": "application/json"})
    assert (code, body) == (
        400,
        "All non-subscribe calls should include the 'Mesos-Stream-Id' header",
    )
    code, body = post(
        cluster, call, {"Content-Type": "application/json", "Mesos-Stream-Id": "stale"}
    )
    assert code == 400
    assert "didn't match the stream ID currently associated" in body
    assert framework.raw_call({"type": "REVIVE"})[0] == 202
    assert framework.raw_call({"type": "REVIVE", "some_future_field": {"x": 1}})[0] == 202, (
        "unknown keys are ignored"
    )
    assert framework.raw_call({"type": "UNKNOWN"})[0] == 501
    code, body = framework.raw_call(
        {
            "type": "ACKNOWLEDGE",
            "acknowledge": {"agent_id": {"value": "a"}, "task_id": {"value": "t"}, "uuid": "AAAA"},
        }
    )
    assert (code, body) == (400, "Failed to validate scheduler::Call: Not a valid UUID")


def test_accepted_calls_are_recorded_with_the_hostname_of_their_subscription(
    cluster: LocalMesos, framework: Framework
) -> None:
    def revives() -> list[tuple[float, str, str, str]]:
        return [call for call in cluster.calls() if call[3] == "REVIVE"]

    before = len(revives())
    call = {"type": "REVIVE", "framework_id": {"value": framework.framework_id}}
    stale = {"Content-Type": "application/json", "Mesos-Stream-Id": "stale"}
    assert post(cluster, call, stale)[0] == 400
    assert framework.raw_call({"type": "REVIVE"})[0] == 202
    recorded = revives()
    assert len(recorded) == before + 1, "a refused call is not recorded"
    _, framework_id, hostname, _ = recorded[-1]
    assert framework_id == framework.framework_id
    assert hostname == cluster.subscriptions()[-1][2]


def test_disconnected_framework_gets_403(
    cluster: LocalMesos, make_framework: Callable[..., Framework]
) -> None:
    fw = make_framework(cluster)
    framework_id = fw.wait_subscribed()
    stream_id = str(fw.driver.stream_id)
    fw.stop()
    wait_for(lambda: not cluster.state()["frameworks"][0]["connected"], what="the disconnect")
    code, body = post(
        cluster,
        {"type": "REVIVE", "framework_id": {"value": framework_id}},
        {"Content-Type": "application/json", "Mesos-Stream-Id": stream_id},
    )
    assert (code, body) == (403, "Framework is not subscribed")


def test_subscription_stream_framing(cluster: LocalMesos) -> None:
    stream = RawSubscription(cluster)
    try:
        assert stream.status == 200
        assert stream.headers["transfer-encoding"] == "chunked"
        assert stream.headers["content-type"] == "application/json"
        uuid.UUID(stream.headers["mesos-stream-id"])
        [subscribed] = stream.next_events()
        assert subscribed["type"] == "SUBSCRIBED"
        assert subscribed["subscribed"]["heartbeat_interval_seconds"] == 0.5
        assert subscribed["subscribed"]["master_info"]["address"]["port"] == int(
            cluster.master_address.split(":")[1]
        )
        kinds: set[str] = set()
        while not {"OFFERS", "HEARTBEAT"} <= kinds:
            kinds.update(event["type"] for event in stream.next_events())
    finally:
        stream.close()


def test_records_split_across_chunks(
    cluster: LocalMesos, make_framework: Callable[..., Framework]
) -> None:
    cluster.split_stream_records(7)
    stream = RawSubscription(cluster)
    try:
        events = stream.next_events()
        assert events[0]["type"] == "SUBSCRIBED"
        assert max(stream.chunk_sizes) == 7 and len(stream.chunk_sizes) > 1
    finally:
        stream.close()
    # pymesos reassembles records across chunk boundaries too.
    fw = make_framework(cluster)
    fw.wait_subscribed()
    offer = fw.next_offer()
    fw.launch(offer, [command_task("t1", offer["agent_id"]["value"], "true")])
    fw.wait_state("t1", "TASK_FINISHED")


def test_refused_subscription_is_a_stream_with_one_error(cluster: LocalMesos) -> None:
    call = {
        "type": "SUBSCRIBE",
        "framework_id": {"value": "bad/id"},
        "subscribe": {"framework_info": {"user": "u", "name": "n", "id": {"value": "bad/id"}}},
    }
    stream = RawSubscription(cluster, call)
    try:
        assert stream.status == 200
        [error] = stream.next_events()
        assert error == {
            "type": "ERROR",
            "error": {"message": "'bad/id' contains invalid characters"},
        }
        with pytest.raises(EOFError):
            stream.next_events()
    finally:
        stream.close()


def executor_post(
    endpoint: str, body: Any, content_type: str = "application/json"
) -> tuple[int, str]:
    raw = json.dumps(body).encode()
    return http_post(f"http://{endpoint}/api/v1/executor", raw, {"Content-Type": content_type})


def test_executor_api_validation(cluster: LocalMesos, framework: Framework) -> None:
    agent = cluster.agents[0]
    offer = framework.next_offer()
    framework.launch(offer, [executor_task("e1", agent.agent_id, {"mode": "run"})])
    framework.wait_state("e1", "TASK_RUNNING")
    ids = {"framework_id": {"value": framework.framework_id}, "executor_id": {"value": "ex1"}}
    good_uuid = base64.b64encode(uuid.uuid4().bytes).decode()

    def update(**status: Any) -> tuple[int, str]:
        full = {
            "task_id": {"value": "e1"},
            "state": "TASK_RUNNING",
            "source": "SOURCE_EXECUTOR",
            "uuid": good_uuid,
        }
        full.update(status)
        return executor_post(agent.endpoint, {**ids, "type": "UPDATE", "update": {"status": full}})

    assert (
        executor_post(
            agent.endpoint, {**ids, "type": "MESSAGE", "message": {"data": ""}}, "text/plain"
        )[0]
        == 415
    )
    code, body = update(uuid=base64.b64encode(b"tiny").decode())
    assert (code, body) == (400, "Failed to validate Executor::Call: Not a valid UUID")
    code, body = update(source="SOURCE_MASTER")
    assert code == 400 and "with invalid source, expecting 'SOURCE_EXECUTOR'" in body
    code, body = update(state="TASK_STAGING")
    assert code == 400 and "Received TASK_STAGING from executor ex1" in body
    code, body = update(executor_id={"value": "other"})
    assert code == 400 and "does not match ExecutorID in TaskStatus" in body
    status = {"task_id": {"value": "e1"}, "state": "TASK_RUNNING", "source": "SOURCE_EXECUTOR"}
    code, body = executor_post(
        agent.endpoint, {**ids, "type": "UPDATE", "update": {"status": status}}
    )
    assert (code, body) == (
        400,
        "Failed to validate Executor::Call: Expecting 'uuid' to be present",
    )
    code, body = executor_post(
        agent.endpoint,
        {
            "framework_id": {"value": "nope"},
            "executor_id": {"value": "ex1"},
            "type": "MESSAGE",
            "message": {"data": ""},
        },
    )
    assert (code, body) == (400, "Framework cannot be found")
    code, body = executor_post(
        agent.endpoint,
        {**ids, "executor_id": {"value": "nope"}, "type": "MESSAGE", "message": {"data": ""}},
    )
    assert (code, body) == (400, "Executor cannot be found")
    code, body = executor_post(
        agent.endpoint,
        {**ids, "type": "MESSAGE", "message": {"data": base64.b64encode(b"raw").decode()}},
    )
    assert code == 202
    [message] = framework.wait(lambda: framework.events("message"), "the executor MESSAGE")
    assert base64.b64decode(message["data"]) == b"raw"


def test_executor_calls_before_subscribing_are_403(
    make_cluster: Callable[..., LocalMesos], make_framework: Callable[..., Framework]
) -> None:
    cluster = make_cluster(executor_registration_timeout=30.0)
    fw = make_framework(cluster)
    fw.wait_subscribed()
    offer = fw.next_offer()
    agent = cluster.agents[0]
    fw.launch(
        offer,
        [executor_task("e1", agent.agent_id, {}, executor_info(command={"value": "sleep 60"}))],
    )
    ids = {"framework_id": {"value": fw.framework_id}, "executor_id": {"value": "ex1"}}
    call = {**ids, "type": "MESSAGE", "message": {"data": ""}}

    def answer_once_launched() -> tuple[int, str] | None:
        # 400 "Executor cannot be found" until the agent has created the executor.
        reply = executor_post(agent.endpoint, call)
        return None if reply[0] == 400 else reply

    code, body = wait_for(answer_once_launched, what="the executor to be launched")
    assert (code, body) == (403, "Executor is not subscribed")


def test_agent_state_endpoint(cluster: LocalMesos) -> None:
    agent = cluster.agents[0]
    connection = http.client.HTTPConnection(*agent.endpoint.split(":"), timeout=10)
    connection.request("GET", "/state")
    state = json.loads(connection.getresponse().read())
    assert state["id"] == agent.agent_id
    assert state["hostname"] == agent.hostname


async def test_standby_without_a_leader_answers_503() -> None:
    standby = StandbyMaster(lambda: None)
    await standby.start()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"http://{standby.address}/api/v1/scheduler",
                data=json.dumps(SUBSCRIBE),
                headers={"Content-Type": "application/json"},
                allow_redirects=False,
            ) as response,
        ):
            assert response.status == 503
            assert await response.text() == "No leader elected"
    finally:
        await standby.stop()


def test_executor_protocol_over_raw_http(
    make_cluster: Callable[..., LocalMesos], make_framework: Callable[..., Framework]
) -> None:
    """Play the executor by hand: SUBSCRIBED, queued LAUNCH, ACKNOWLEDGED, MESSAGE, KILL."""
    cluster = make_cluster(executor_registration_timeout=30.0)
    fw = make_framework(cluster)
    fw.wait_subscribed()
    agent = cluster.agents[0]
    offer = fw.next_offer()
    placeholder = executor_info(command={"value": "sleep 60"})
    fw.launch(offer, [executor_task("e1", agent.agent_id, {"mode": "run"}, placeholder)])
    ids = {"framework_id": {"value": fw.framework_id}, "executor_id": {"value": "ex1"}}
    subscribe = {
        **ids,
        "type": "SUBSCRIBE",
        "subscribe": {"unacknowledged_tasks": [], "unacknowledged_updates": []},
    }

    def subscribed() -> RawSubscription | None:
        stream = RawSubscription(cluster, subscribe, agent.endpoint, "/api/v1/executor")
        if stream.status == 200:
            return stream
        stream.close()
        return None

    stream = wait_for(subscribed, what="the agent to know the executor")
    try:
        assert "mesos-stream-id" not in stream.headers
        events = stream.next_events()
        while len(events) < 2:
            events += stream.next_events()
        first, launch = events[0], events[1]
        assert first["type"] == "SUBSCRIBED"
        info = first["subscribed"]
        assert info["executor_info"]["executor_id"] == {"value": "ex1"}
        assert info["executor_info"]["framework_id"] == {"value": fw.framework_id}
        assert info["framework_info"]["id"] == {"value": fw.framework_id}
        assert info["agent_info"]["id"] == {"value": agent.agent_id}
        assert info["container_id"]["value"]
        assert launch["type"] == "LAUNCH"
        assert launch["launch"]["task"]["task_id"] == {"value": "e1"}

        status_uuid = base64.b64encode(uuid.uuid4().bytes).decode()
        status = {
            "task_id": {"value": "e1"},
            "state": "TASK_RUNNING",
            "source": "SOURCE_EXECUTOR",
            "uuid": status_uuid,
            "message": "hand-made",
            "data": base64.b64encode(b"\x00binary").decode(),
        }
        assert (
            executor_post(agent.endpoint, {**ids, "type": "UPDATE", "update": {"status": status}})[
                0
            ]
            == 202
        )
        [acked] = stream.next_events()
        assert acked == {
            "type": "ACKNOWLEDGED",
            "acknowledged": {"task_id": {"value": "e1"}, "uuid": status_uuid},
        }
        running = fw.wait_state("e1", "TASK_RUNNING")
        assert running["uuid"] == status_uuid
        assert running["message"] == "hand-made"
        assert base64.b64decode(running["data"]) == b"\x00binary"
        assert running["agent_id"] == {"value": agent.agent_id}
        assert running["executor_id"] == {"value": "ex1"}

        fw.driver.sendFrameworkMessage(
            {"value": "ex1"}, {"value": agent.agent_id}, base64.b64encode(b"hi").decode()
        )
        assert stream.next_events() == [
            {"type": "MESSAGE", "message": {"data": base64.b64encode(b"hi").decode()}}
        ]
        fw.driver.killTask({"value": "e1"})
        assert stream.next_events() == [{"type": "KILL", "kill": {"task_id": {"value": "e1"}}}]
        status, _ = fw.raw_call(
            {
                "type": "SHUTDOWN",
                "shutdown": {
                    "executor_id": {"value": "ex1"},
                    "agent_id": {"value": agent.agent_id},
                },
            }
        )
        assert status == 202
        assert stream.next_events() == [{"type": "SHUTDOWN"}]
    finally:
        stream.close()


def test_executor_resubscribes_with_its_unacknowledged_updates(
    make_cluster: Callable[..., LocalMesos], make_framework: Callable[..., Framework]
) -> None:
    """A re-SUBSCRIBE carries what the agent may have missed, as `Call.Update`s."""
    cluster = make_cluster(executor_registration_timeout=30.0)
    fw = make_framework(cluster)
    fw.wait_subscribed()
    agent = cluster.agents[0]
    offer = fw.next_offer()
    placeholder = executor_info(command={"value": "sleep 60"})
    fw.launch(offer, [executor_task("e1", agent.agent_id, {"mode": "run"}, placeholder)])
    ids = {"framework_id": {"value": fw.framework_id}, "executor_id": {"value": "ex1"}}

    def subscribe(updates: list[dict[str, Any]]) -> RawSubscription | None:
        call = {
            **ids,
            "type": "SUBSCRIBE",
            "subscribe": {"unacknowledged_tasks": [], "unacknowledged_updates": updates},
        }
        stream = RawSubscription(cluster, call, agent.endpoint, "/api/v1/executor")
        if stream.status == 200:
            return stream
        stream.close()
        return None

    first = wait_for(lambda: subscribe([]), what="the agent to know the executor")
    first.close()  # the connection drops before the update got through
    status_uuid = base64.b64encode(uuid.uuid4().bytes).decode()
    status = {
        "task_id": {"value": "e1"},
        "state": "TASK_RUNNING",
        "source": "SOURCE_EXECUTOR",
        "uuid": status_uuid,
    }
    again = subscribe([{"status": status}])
    assert again is not None
    try:
        events = again.next_events()
        while len(events) < 2:
            events += again.next_events()
        assert [e["type"] for e in events] == ["SUBSCRIBED", "ACKNOWLEDGED"]
        assert fw.wait_state("e1", "TASK_RUNNING")["uuid"] == status_uuid
    finally:
        again.close()


@pytest.mark.parametrize("server", ["master", "agent"])
def test_stop_drops_requests_in_flight(
    make_cluster: Callable[..., LocalMesos], server: str
) -> None:
    """A stopping cluster is a crash: it does not wait for clients to finish requests
    (a client still sending, or one arriving meanwhile, would hold it for a minute)."""
    cluster = make_cluster()
    address = cluster.master_address if server == "master" else cluster.agents[0].endpoint
    path = "/api/v1/scheduler" if server == "master" else "/api/v1/executor"
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n"
            "Content-Length: 100\r\n\r\n{".encode()
        )
        # The server is reading the body when it is stopped.
        wait_for(
            lambda: cluster.run_on_loop(
                lambda: sum(1 for t in asyncio.all_tasks() if "_handle_request" in repr(t))
            ),
            what="the request to be in progress",
        )
        cluster.stop()
        assert sock.recv(1024) == b"", "the connection was dropped"
