"""Framework subscriptions of the emulated master: streams, failover, removal.

A SUBSCRIBE opens the framework's event stream: `SUBSCRIBED`, then a
`HEARTBEAT` every `heartbeat_interval`. Without `framework_info.id` the
framework gets a new id; with one it resumes (fails over) that framework, and
a stream still open is told `ERROR "Framework failed over"` and closed. An
invalid FrameworkInfo or the id of a removed framework is refused with one
`ERROR` event on a 200 stream. When the stream closes the framework's offers
are withdrawn and its `failover_timeout` starts; on expiry, or on TEARDOWN,
the framework is removed: its live tasks are recorded TASK_KILLED
(REASON_FRAMEWORK_REMOVED), agents shut it down, and it is never let back.
Behaviour follows `Master::subscribe`, `_subscribe`, `failoverFramework` and
`removeFramework` in the Mesos master. Built and called by the Master.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable

from aiohttp import web

from devcluster.mesos.config import EmulatorConfig
from devcluster.mesos.faults import Faults
from devcluster.mesos.master.allocating import Allocator
from devcluster.mesos.master.forwarding import EventForwarder
from devcluster.mesos.master.records import Framework, MasterBooks, record_status
from devcluster.mesos.network import Network
from devcluster.mesos.protocol import (
    JSON,
    REASON_FRAMEWORK_REMOVED,
    SOURCE_MASTER,
    TASK_KILLED,
    ident,
    is_terminal,
    make_status,
    value,
)
from devcluster.mesos.streams import EventStream
from devcluster.mesos.validation import validate_framework_info

log = logging.getLogger(__name__)


class Subscriptions:
    def __init__(
        self,
        books: MasterBooks,
        events: EventForwarder,
        allocator: Allocator,
        network: Network,
        config: EmulatorConfig,
        faults: Faults,
        loop: asyncio.AbstractEventLoop,
        master_id: str,
        master_info: Callable[[], JSON],
        running: Callable[[], bool],
    ) -> None:
        self._books = books
        self._events = events
        self._allocator = allocator
        self._network = network
        self._config = config
        self._faults = faults
        self._loop = loop
        self._master_id = master_id
        self._master_info = master_info
        self._running = running
        self._framework_ids = itertools.count()

    async def serve(self, request: web.Request, info: JSON, suppressed: bool) -> web.StreamResponse:
        """Answer a SUBSCRIBE call with the framework's event stream."""
        stream = EventStream(with_stream_id=True, chunk_size=self._faults.stream_chunk_size)
        framework = self._subscribe(stream, info, suppressed)
        try:
            return await stream.serve(request)
        finally:
            if framework is not None:
                self._stream_closed(framework, stream)

    def _subscribe(self, stream: EventStream, info: JSON, suppressed: bool) -> Framework | None:
        def refuse(message: str) -> None:
            log.info("refusing subscription of framework '%s': %s", info.get("name"), message)
            stream.send({"type": "ERROR", "error": {"message": message}})
            stream.close()

        books = self._books
        problem = validate_framework_info(info)
        if problem is not None:
            refuse(problem)
            return None
        framework_id = value(info.get("id"))
        if framework_id and framework_id in books.completed_frameworks:
            refuse("Framework has been removed")
            return None
        now = time.time()
        if not framework_id:
            framework_id = f"{self._master_id}-{next(self._framework_ids):04d}"
            framework = Framework(framework_id, {**info, "id": ident(framework_id)}, now)
            books.frameworks[framework_id] = framework
        else:
            framework = books.frameworks.get(framework_id) or Framework(framework_id, info, now)
            books.frameworks[framework_id] = framework
            if framework.connected:
                assert framework.stream is not None
                framework.stream.send(
                    {"type": "ERROR", "error": {"message": "Framework failed over"}}
                )
                framework.stream.close()
            framework.info = {**info, "id": ident(framework_id)}
        if framework.failover_timer is not None:
            framework.failover_timer.cancel()
            framework.failover_timer = None
        if framework.heartbeat is not None:
            framework.heartbeat.cancel()
        books.withdraw_offers(framework)
        books.registry.subscriptions.append((now, framework_id, str(info.get("hostname", ""))))
        framework.stream = stream
        framework.active = True
        # A (re-)subscription states the suppressed roles afresh (Call.Subscribe's
        # suppressed_roles): an earlier SUPPRESS does not outlive it.
        framework.suppressed = suppressed
        framework.recovered = False
        framework.unregistered_time = None
        stream.send(
            {
                "type": "SUBSCRIBED",
                "subscribed": {
                    "framework_id": ident(framework_id),
                    "heartbeat_interval_seconds": self._config.heartbeat_interval,
                    "master_info": self._master_info(),
                },
            }
        )
        framework.heartbeat = self._loop.create_task(self._heartbeats(stream))
        framework_info = framework.info
        for agent_id in books.agents:
            self._network.to_agent(agent_id, lambda a: a.update_framework(framework_info))
        self._allocator.allocate_soon()
        return framework

    async def _heartbeats(self, stream: EventStream) -> None:
        while not stream.closed:
            await asyncio.sleep(self._config.heartbeat_interval)
            stream.send({"type": "HEARTBEAT"})

    def _stream_closed(self, framework: Framework, stream: EventStream) -> None:
        if framework.stream is not stream or not self._running():
            return
        framework.stream = None
        framework.active = False
        framework.unregistered_time = time.time()
        if framework.heartbeat is not None:
            framework.heartbeat.cancel()
            framework.heartbeat = None
        if framework.framework_id not in self._books.frameworks:
            return
        self._books.withdraw_offers(framework)
        framework_id = framework.framework_id
        framework.failover_timer = self._loop.call_later(
            framework.failover_timeout, self._failover_expired, framework_id
        )

    def _failover_expired(self, framework_id: str) -> None:
        framework = self._books.frameworks.get(framework_id)
        if framework is not None and not framework.connected:
            log.info("framework %s did not fail over in time; removing it", framework_id)
            self.remove_framework(framework)

    def teardown(self, framework: Framework, call: JSON) -> None:
        self.remove_framework(framework)

    def remove_framework(self, framework: Framework) -> None:
        books = self._books
        framework_id = framework.framework_id
        message = f"Framework {framework_id} removed"
        for task in list(framework.tasks.values()):
            if not is_terminal(task.state):
                status = make_status(
                    task_id=task.task_id,
                    state=TASK_KILLED,
                    source=SOURCE_MASTER,
                    agent_id=task.agent_id,
                    reason=REASON_FRAMEWORK_REMOVED,
                    message=message,
                )
                record_status(task, status)
            books.remove_task(framework, task)
        for task in framework.unreachable_tasks.values():
            framework.completed_tasks.append(task)
        framework.unreachable_tasks.clear()
        books.withdraw_offers(framework)
        for agent in books.agents.values():
            agent.executors.pop(framework_id, None)
            agent.tasks.pop(framework_id, None)
            self._network.to_agent(agent.agent_id, lambda a: a.shutdown_framework(framework_id))
        framework.executors.clear()
        for timer in (framework.failover_timer, framework.held_timer):
            if timer is not None:
                timer.cancel()
        if framework.heartbeat is not None:
            framework.heartbeat.cancel()
        framework.active = False
        framework.unregistered_time = time.time()
        stream, framework.stream = framework.stream, None
        if stream is not None:
            stream.close()
        books.frameworks.pop(framework_id, None)
        books.completed_frameworks[framework_id] = framework

    def crash(self) -> None:
        """The master dies: every stream drops and no timer of a framework fires."""
        for framework in self._books.frameworks.values():
            if framework.failover_timer is not None:
                framework.failover_timer.cancel()
            if framework.heartbeat is not None:
                framework.heartbeat.cancel()
            if framework.held_timer is not None:
                framework.held_timer.cancel()
            if framework.stream is not None:
                framework.stream.abort()
