"""Resource arithmetic for the emulated cluster (pure).

`Resources` holds scalar resources (cpus, mem, disk, gpus, ...) and port
ranges. It converts from and to the `Resource` JSON of Mesos's v1 mesos.proto
(`{"name", "type", "scalar"|"ranges", "role"}`) and to the flat map the master's
`/state` endpoint shows (`{"cpus": 1.0, "ports": "[31000-31005]"}`). The master
uses it for offers and task validation, the agents for accounting.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from devcluster.mesos.protocol import JSON

# Mesos compares scalars with a fixed-point precision of three decimals.
_EPSILON = 0.0005

Ranges = tuple[tuple[int, int], ...]


def _normalise(ranges: Iterable[tuple[int, int]]) -> Ranges:
    merged: list[list[int]] = []
    for begin, end in sorted(ranges):
        if merged and begin <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([begin, end])
    return tuple((b, e) for b, e in merged)


def _subtract_ranges(have: Ranges, remove: Ranges) -> Ranges:
    result = list(have)
    for r_begin, r_end in remove:
        next_result: list[tuple[int, int]] = []
        for begin, end in result:
            if r_end < begin or r_begin > end:
                next_result.append((begin, end))
                continue
            if begin < r_begin:
                next_result.append((begin, r_begin - 1))
            if r_end < end:
                next_result.append((r_end + 1, end))
        result = next_result
    return _normalise(result)


def _ranges_contain(have: Ranges, want: Ranges) -> bool:
    return all(any(b <= w_begin and w_end <= e for b, e in have) for w_begin, w_end in want)


class ResourceError(ValueError):
    """A Resource JSON object that Mesos would reject."""


@dataclass(frozen=True)
class Resources:
    scalars: dict[str, float] = field(default_factory=dict)
    ports: Ranges = ()

    @staticmethod
    def parse(items: Any) -> Resources:
        """Resource JSON list -> Resources; raises ResourceError naming the problem."""
        if not items:
            return Resources()
        scalars: dict[str, float] = {}
        ports: list[tuple[int, int]] = []
        for item in items:
            name = item.get("name")
            kind = item.get("type", "SCALAR" if "scalar" in item else "RANGES")
            if kind == "SCALAR":
                amount = float((item.get("scalar") or {}).get("value", 0.0))
                if amount < 0:
                    raise ResourceError(f"Invalid scalar resource {name}: negative value")
                scalars[name] = scalars.get(name, 0.0) + amount
            elif kind == "RANGES" and name == "ports":
                for entry in (item.get("ranges") or {}).get("range", []):
                    begin, end = int(entry["begin"]), int(entry["end"])
                    if begin > end:
                        raise ResourceError(f"Invalid ranges resource {name}: {begin} > {end}")
                    ports.append((begin, end))
            else:
                raise ResourceError(
                    f"Resource '{name}' of type {kind} is not supported by this emulator "
                    "(scalars and 'ports' ranges only)"
                )
        return Resources(scalars, _normalise(ports))

    def is_empty(self) -> bool:
        return not self.ports and all(v < _EPSILON for v in self.scalars.values())

    def __add__(self, other: Resources) -> Resources:
        scalars = dict(self.scalars)
        for name, amount in other.scalars.items():
            scalars[name] = scalars.get(name, 0.0) + amount
        return Resources(scalars, _normalise(self.ports + other.ports))

    def __sub__(self, other: Resources) -> Resources:
        scalars = dict(self.scalars)
        for name, amount in other.scalars.items():
            left = scalars.get(name, 0.0) - amount
            scalars[name] = max(0.0, round(left, 6))
        return Resources(scalars, _subtract_ranges(self.ports, other.ports))

    def contains(self, other: Resources) -> bool:
        for name, amount in other.scalars.items():
            if amount > self.scalars.get(name, 0.0) + _EPSILON:
                return False
        return _ranges_contain(self.ports, other.ports)

    def to_json(self, role: str = "*", allocation_role: str | None = None) -> list[JSON]:
        items: list[JSON] = []
        for name in sorted(self.scalars):
            amount = self.scalars[name]
            if amount < _EPSILON:
                continue
            items.append(
                {
                    "name": name,
                    "type": "SCALAR",
                    "scalar": {"value": round(amount, 3)},
                    "role": role,
                }
            )
        if self.ports:
            items.append(
                {
                    "name": "ports",
                    "type": "RANGES",
                    "ranges": {"range": [{"begin": b, "end": e} for b, e in self.ports]},
                    "role": role,
                }
            )
        if allocation_role is not None:
            for item in items:
                item["allocation_info"] = {"role": allocation_role}
        return items

    def to_state(self) -> JSON:
        flat: JSON = {"cpus": 0.0, "mem": 0.0, "disk": 0.0, "gpus": 0.0}
        for name, amount in self.scalars.items():
            flat[name] = round(amount, 3)
        if self.ports:
            flat["ports"] = "[" + ", ".join(f"{b}-{e}" for b, e in self.ports) + "]"
        return flat

    def describe(self) -> str:
        parts = [f"{name}(*):{round(v, 3):g}" for name, v in sorted(self.scalars.items()) if v]
        if self.ports:
            parts.append("ports(*):[" + ", ".join(f"{b}-{e}" for b, e in self.ports) + "]")
        return "; ".join(parts) if parts else "{}"
