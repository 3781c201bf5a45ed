"""Conversions between the served forms of one stored resource.

A real API server keeps one copy of an object and shows it at every served version. Here
that matters for Events: kopf (and kubectl's `get events`) use the core `v1` Event, newer
clients `events.k8s.io/v1`, and both see the same events. Custom resources with several
versions are shown as stored with only `apiVersion` changed (a CRD's `conversion: None`).
Pure; `storage` calls `present` on every read and `intake` on every write.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devcluster.kube.resources import EVENTS, EVENTS_K8S_IO, ResourceType

# events.k8s.io/v1 field  ↔  core v1 field
_EVENT_FIELDS = (
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
)
_SHARED_EVENT_FIELDS = (
    "metadata",
    "eventTime",
    "series",
    "reportingInstance",
    "action",
    "reason",
    "related",
    "type",
)


def _rename(obj: Mapping[str, Any], pairs: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    result = {key: obj[key] for key in _SHARED_EVENT_FIELDS if key in obj}
    for source, target in pairs:
        if source in obj:
            result[target] = obj[source]
    return result


def storage_type(rt: ResourceType) -> ResourceType:
    """The resource type whose form objects are stored in."""
    return EVENTS if rt is EVENTS_K8S_IO else rt


def present(rt: ResourceType, stored: Mapping[str, Any]) -> dict[str, Any]:
    """The stored object as `rt` shows it."""
    if rt is EVENTS_K8S_IO:
        result = _rename(stored, tuple((core, new) for new, core in _EVENT_FIELDS))
    else:
        result = dict(stored)
    result["apiVersion"] = rt.api_version
    result["kind"] = rt.kind
    return result


def intake(rt: ResourceType, body: Any) -> Any:
    """A request body in `rt`'s form converted to the stored form."""
    if rt is not EVENTS_K8S_IO or not isinstance(body, Mapping):
        return body
    if body.get("apiVersion", EVENTS_K8S_IO.api_version) != EVENTS_K8S_IO.api_version:
        return body  # let the envelope check report the mismatch
    result = _rename(body, _EVENT_FIELDS)
    result["apiVersion"] = EVENTS.api_version
    result["kind"] = EVENTS.kind
    return result
