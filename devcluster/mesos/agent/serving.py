"""The HTTP side of one emulated agent: the v1 executor API and `GET /state`.

`POST /api/v1/executor` is checked as `Http::executor` and
`validateExecutorCall` in the Mesos agent do: content type and JSON as on the
master, "Framework cannot be found" / "Executor cannot be found" (400), calls
before SUBSCRIBE 403 "Executor is not subscribed", and an UPDATE needs a
16-byte `uuid`, `source` SOURCE_EXECUTOR, a state other than TASK_STAGING and
a matching `executor_id`. SUBSCRIBE opens the executor's event stream:
`SUBSCRIBED {executor_info, framework_info, agent_info, container_id}`, then
the updates it resends are taken (de-duplicated by uuid) and its queued tasks
are delivered (`LAUNCH`), or `SHUTDOWN` if it is terminating. Each accepted
UPDATE is answered with `ACKNOWLEDGED` once the agent has it; MESSAGE goes to
the master. Scheduler messages for the executor go down its stream. Built by
the Agent, which mounts these handlers on its server.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from devcluster.mesos import wire
from devcluster.mesos.agent.records import (
    REGISTERING,
    RUNNING,
    TERMINATING,
    AgentBooks,
    AgentFramework,
    AgentTask,
    Executor,
)
from devcluster.mesos.agent.reporting import StatusReporter
from devcluster.mesos.network import Network
from devcluster.mesos.protocol import (
    JSON,
    MESOS_VERSION,
    SOURCE_EXECUTOR,
    TASK_STAGING,
    ident,
    is_terminal,
    uuid_error,
    value,
)
from devcluster.mesos.streams import EventStream


class ExecutorApi:
    def __init__(
        self,
        books: AgentBooks,
        reporter: StatusReporter,
        network: Network,
        serving: Callable[[], bool],
    ) -> None:
        self._books = books
        self._reporter = reporter
        self._network = network
        self._serving = serving

    async def handle_executor(self, request: web.Request) -> web.StreamResponse:
        try:
            wire.check_method_and_type(request.method, request.headers.get("Content-Type"))
            body = await request.read()
            call = wire.parse_body(body, wire.EXECUTOR_CALL, "Call")
            validate_executor_call(call)
            kind = call["type"]
            if kind == "SUBSCRIBE":
                wire.check_accept(request.headers.get("Accept"))
            elif kind == "HEARTBEAT":
                return web.Response(status=202)
            if not self._serving():
                raise wire.HttpError(503, "Agent has not finished recovery")
            framework = self._books.frameworks.get(value(call["framework_id"]) or "")
            if framework is None:
                raise wire.HttpError(400, "Framework cannot be found")
            executor = framework.executors.get(value(call["executor_id"]) or "")
            if executor is None or executor.is_command:
                raise wire.HttpError(400, "Executor cannot be found")
            if executor.state == REGISTERING and kind != "SUBSCRIBE":
                raise wire.HttpError(403, "Executor is not subscribed")
            if kind == "SUBSCRIBE":
                return await self._subscribe(request, framework, executor, call)
            if kind == "UPDATE":
                self._update(framework, executor, call["update"]["status"])
                return web.Response(status=202)
            if kind == "MESSAGE":
                self._message(framework, executor, call["message"]["data"])
                return web.Response(status=202)
            return web.Response(status=501)
        except wire.HttpError as error:
            return web.Response(status=error.status, text=error.message)

    async def _subscribe(
        self, request: web.Request, framework: AgentFramework, executor: Executor, call: JSON
    ) -> web.StreamResponse:
        stream = EventStream(with_stream_id=False)
        if executor.stream is not None:
            executor.stream.close()
        executor.stream = stream
        if executor.registration_timer is not None:
            executor.registration_timer.cancel()
            executor.registration_timer = None
        subscribed = {
            "type": "SUBSCRIBED",
            "subscribed": {
                "executor_info": executor.info,
                "framework_info": framework.info,
                "agent_info": self._books.agent_info(),
                "container_id": {"value": executor.container_id},
            },
        }
        stream.send(subscribed)
        updates = self._reporter.updates
        for update in call.get("subscribe", {}).get("unacknowledged_updates", []):
            status = update.get("status") or {}
            if "uuid" in status and not updates.seen(framework.framework_id, status):
                self._update(framework, executor, status)
        if executor.state == REGISTERING:
            executor.state = RUNNING
            for task_id, task in list(executor.queued.items()):
                executor.launched[task_id] = executor.queued.pop(task_id)
                stream.send({"type": "LAUNCH", "launch": {"task": task.info}})
        elif executor.state == TERMINATING:
            stream.send({"type": "SHUTDOWN"})
        try:
            return await stream.serve(request)
        finally:
            if executor.stream is stream:
                executor.stream = None

    def _update(self, framework: AgentFramework, executor: Executor, status: JSON) -> None:
        status = dict(status)
        status["agent_id"] = ident(self._books.agent_id)
        status.setdefault("executor_id", ident(executor.executor_id))
        task_id = value(status["task_id"]) or ""
        reporter = self._reporter
        if not reporter.updates.seen(framework.framework_id, status):
            task = executor.launched.get(task_id) or executor.queued.get(task_id)
            if task is not None and is_terminal(str(status["state"])):
                reporter.terminal(executor, task, status)
            else:
                if task is not None:
                    reporter.record(task, status)
                reporter.updates.add(framework.framework_id, status)
        if executor.stream is not None:
            executor.stream.send(
                {
                    "type": "ACKNOWLEDGED",
                    "acknowledged": {"task_id": ident(task_id), "uuid": status["uuid"]},
                }
            )

    def _message(self, framework: AgentFramework, executor: Executor, data: str) -> None:
        agent_id = self._books.agent_id
        fid, eid = framework.framework_id, executor.executor_id
        self._network.to_master(agent_id, lambda m: m.executor_message(agent_id, fid, eid, data))

    def deliver_message(self, framework_id: str, executor_id: str, data: str) -> None:
        """A scheduler's MESSAGE for an executor (dropped unless it is subscribed)."""
        framework = self._books.frameworks.get(framework_id)
        executor = framework.executors.get(executor_id) if framework else None
        if executor is not None and executor.stream is not None and executor.state == RUNNING:
            executor.stream.send({"type": "MESSAGE", "message": {"data": data}})

    # ----------------------------------------------------------- read-only

    async def handle_version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": MESOS_VERSION})

    async def handle_state(self, request: web.Request) -> web.Response:
        books = self._books
        frameworks = []
        for framework in books.frameworks.values():
            executors = []
            for executor in framework.executors.values():
                executors.append(
                    {
                        "id": executor.executor_id,
                        "name": executor.info.get("name", ""),
                        "directory": str(executor.directory),
                        "container": executor.container_id,
                        "tasks": [self._task_json(t) for t in executor.launched.values()],
                        "queued_tasks": [self._task_json(t) for t in executor.queued.values()],
                        "completed_tasks": [
                            self._task_json(t) for t in executor.terminated.values()
                        ],
                    }
                )
            frameworks.append(
                {
                    "id": framework.framework_id,
                    "name": framework.info.get("name"),
                    "executors": executors,
                }
            )
        return web.json_response(
            {
                "id": books.agent_id,
                "hostname": books.hostname,
                "version": MESOS_VERSION,
                "resources": books.spec.resources().to_state(),
                "attributes": dict(books.spec.attributes),
                "frameworks": frameworks,
            }
        )

    def _task_json(self, task: AgentTask) -> JSON:
        return {
            "id": task.task_id,
            "name": task.info.get("name"),
            "framework_id": task.framework_id,
            "executor_id": "" if task.is_command else task.executor_id,
            "slave_id": self._books.agent_id,
            "state": task.state,
            "statuses": task.statuses,
        }


def validate_executor_call(call: JSON) -> None:
    """Raises the 400 `validateExecutorCall` gives a malformed executor call."""

    def fail(message: str) -> wire.HttpError:
        return wire.HttpError(400, f"Failed to validate Executor::Call: {message}")

    kind = call.get("type")
    if kind is None:
        raise fail("Expecting 'type' to be present")
    if kind == "SUBSCRIBE" and "subscribe" not in call:
        raise fail("Expecting 'subscribe' to be present")
    if kind == "MESSAGE" and "message" not in call:
        raise fail("Expecting 'message' to be present")
    if kind != "UPDATE":
        return
    if "update" not in call:
        raise fail("Expecting 'update' to be present")
    status = call["update"]["status"]
    executor_id = value(call["executor_id"])
    framework_id = value(call["framework_id"])
    if "uuid" not in status:
        raise fail("Expecting 'uuid' to be present")
    problem = uuid_error(status["uuid"])
    if problem is not None:
        raise fail(problem)
    if "executor_id" in status and value(status["executor_id"]) != executor_id:
        raise fail(
            f"ExecutorID in Call: {executor_id} does not match ExecutorID in TaskStatus: "
            f"{value(status['executor_id'])}"
        )
    if status.get("source") != SOURCE_EXECUTOR:
        raise fail(
            f"Received Call from executor {executor_id} of framework {framework_id} "
            "with invalid source, expecting 'SOURCE_EXECUTOR'"
        )
    if status.get("state") == TASK_STAGING:
        raise fail(
            f"Received TASK_STAGING from executor {executor_id} of framework {framework_id} "
            "which is not allowed"
        )
