"""Handing run history records over durably: pack them with the change they describe.

`pack` turns the records of one state change into spool units (of at most
`UNIT_RECORDS` records, so a unit stays far below ZooKeeper's request limit whatever
the change: a launch of thousands of shards) and the ZooKeeper operations that write
them; the caller passes those operations to the store method making the change, so
the units are committed in the same transaction as the change or not at all. Once
the change is committed the caller calls `hand_over`, which gives the units to the
history writer (an append, never a wait). A history that is not spooled (a service
built without one) gets no operations. Used by the launch cycle, the status pipeline
and the engine's removals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from controller.history.records import HistoryRecord
from controller.history.spool import SpoolUnit, encode
from controller.mesos.history_port import RunHistory
from controller.state.layout import Layout
from controller.state.transactions import Create, Op

UNIT_RECORDS = 500


@dataclass(frozen=True)
class Packed:
    """The units of one change (none: nothing to record) and the operations that spool
    them."""

    units: tuple[SpoolUnit, ...] = ()
    ops: tuple[Op, ...] = ()


class HistoryHandoff:
    def __init__(self, history: RunHistory, layout: Layout) -> None:
        self.history = history
        self._layout = layout

    def pack(self, records: Sequence[HistoryRecord]) -> Packed:
        units = tuple(
            SpoolUnit.of(records[start : start + UNIT_RECORDS])
            for start in range(0, len(records), UNIT_RECORDS)
        )
        if not self.history.spooled:
            return Packed(units)
        ops = tuple(
            Create(self._layout.history_unit(unit.name), encode(unit.records)) for unit in units
        )
        return Packed(units, ops)

    def hand_over(self, packed: Packed) -> None:
        for unit in packed.units:
            self.history.submit(unit)
