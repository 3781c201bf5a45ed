"""Handing run history records over durably: pack them with the change they describe.

`pack` turns the records of one state change into a spool unit and the ZooKeeper
operation that writes it; the caller passes that operation to the store method making
the change, so the unit is committed in the same transaction as the change or not at
all. Once the change is committed the caller calls `hand_over`, which gives the unit
to the history writer (an append, never a wait). A history that is not spooled (a
service built without one) gets no operation. Used by the launch cycle, the status
pipeline and the engine's removals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from controller.history.records import HistoryRecord
from controller.history.spool import SpoolUnit, encode
from controller.mesos.history_port import RunHistory
from controller.state.layout import Layout
from controller.state.transactions import Create, Op


@dataclass(frozen=True)
class Packed:
    """A unit (None: nothing to record) and the operations that spool it."""

    unit: SpoolUnit | None = None
    ops: tuple[Op, ...] = ()


class HistoryHandoff:
    def __init__(self, history: RunHistory, layout: Layout) -> None:
        self.history = history
        self._layout = layout

    def pack(self, records: Sequence[HistoryRecord]) -> Packed:
        if not records:
            return Packed()
        unit = SpoolUnit.of(records)
        if not self.history.spooled:
            return Packed(unit)
        return Packed(unit, (Create(self._layout.history_unit(unit.name), encode(records)),))

    def hand_over(self, packed: Packed) -> None:
        if packed.unit is not None:
            self.history.submit(packed.unit)
