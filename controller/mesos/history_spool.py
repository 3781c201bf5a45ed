"""The run history's spool in ZooKeeper: `ZkSpool`, the `Spool` the writer reads and
deletes through.

Units are created by the state store's own transactions (`history_handoff` packs
them), below `Layout.history_spool`, which every store load creates. `read` lists
them in the order ZooKeeper created them (their creation zxid: one order across all
leaders, whatever their clocks) for a new leader to adopt; `delete` removes the units
the writer has committed or dropped, in one pipelined round trip. Built by
`SchedulingService` over its kazoo client; called from the writer's worker threads.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from controller.history.spool import SpoolError, SpoolUnit, decode
from controller.state.layout import Layout

log = logging.getLogger(__name__)


class ZkSpool:
    def __init__(self, client: KazooClient, layout: Layout, timeout: float = 15.0) -> None:
        self._client = client
        self.layout = layout
        self._timeout = timeout

    def read(self) -> list[SpoolUnit]:
        try:
            names = self._client.get_children(self.layout.history_spool)
        except NoNodeError:
            return []
        pending = [(name, self._client.get_async(self.layout.history_unit(name))) for name in names]
        found: list[tuple[int, SpoolUnit]] = []
        for name, result in pending:
            try:
                raw, stat = result.get(timeout=self._timeout)
            except NoNodeError:
                continue
            try:
                records = decode(raw)
            except SpoolError as error:
                log.warning("spooled history unit %s is unreadable, dropping it: %s", name, error)
                records = ()
            found.append((stat.czxid, SpoolUnit(name, records)))
        return [unit for _, unit in sorted(found, key=lambda item: item[0])]

    def delete(self, names: Sequence[str]) -> None:
        pending = [self._client.delete_async(self.layout.history_unit(name)) for name in names]
        for result in pending:
            try:
                result.get(timeout=self._timeout)
            except NoNodeError:
                continue
