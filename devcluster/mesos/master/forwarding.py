"""Events from the emulated master to schedulers, through the delivery faults.

Every event the master sends a framework goes through `EventForwarder.send`,
which drops it when the framework has no open stream (Mesos does not queue
events for a disconnected scheduler). Status updates go through `forward`:
the state is mapped to TASK_LOST for frameworks without PARTITION_AWARE, and
the `Faults` switches may delay, duplicate or reorder the UPDATE event. Used by
every module of the master package that tells a scheduler something.
"""

from __future__ import annotations

import asyncio

from devcluster.mesos.faults import Faults
from devcluster.mesos.master.records import Framework
from devcluster.mesos.protocol import JSON, ident, state_for
from devcluster.mesos.streams import EventStream


class EventForwarder:
    def __init__(self, loop: asyncio.AbstractEventLoop, faults: Faults) -> None:
        self._loop = loop
        self._faults = faults

    def send(self, framework: Framework, event: JSON) -> None:
        if framework.connected:
            assert framework.stream is not None
            framework.stream.send(event)

    def rescind(self, framework: Framework, offer_id: str) -> None:
        self.send(framework, {"type": "RESCIND", "rescind": {"offer_id": ident(offer_id)}})

    def forward(self, framework: Framework, status: JSON) -> None:
        """Send an UPDATE event through the configured delivery faults."""
        status = dict(status)
        status["state"] = state_for(str(status["state"]), framework.partition_aware)
        event = {"type": "UPDATE", "update": {"status": status}}
        if self._faults.update_delay > 0:
            stream = framework.stream
            self._loop.call_later(
                self._faults.update_delay, self._deliver_update, framework, stream, event
            )
        else:
            self._deliver_update(framework, framework.stream, event)

    def _deliver_update(
        self, framework: Framework, stream: EventStream | None, event: JSON
    ) -> None:
        if stream is None or framework.stream is not stream or not framework.connected:
            return
        if self._faults.reorder_updates:
            if framework.held_update is None:
                framework.held_update = event
                framework.held_timer = self._loop.call_later(
                    self._faults.reorder_window, self._release_held, framework, stream
                )
                return
            self._emit_update(framework, event)
            self._release_held(framework, stream)
            return
        self._emit_update(framework, event)

    def _release_held(self, framework: Framework, stream: EventStream) -> None:
        held, framework.held_update = framework.held_update, None
        if framework.held_timer is not None:
            framework.held_timer.cancel()
            framework.held_timer = None
        if held is not None and framework.stream is stream:
            self._emit_update(framework, held)

    def _emit_update(self, framework: Framework, event: JSON) -> None:
        self.send(framework, event)
        if self._faults.duplicate_updates:
            self.send(framework, event)
