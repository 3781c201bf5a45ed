"""Pure write rules of the Kubernetes API emulator: what a create, update or delete makes of
an object, as a real API server's registry strategies decide it.

- create: `apiVersion`/`kind` filled from the URL (mismatch: 400), namespace checked,
  `generateName` expanded, names validated (422), server-owned metadata replaced (`uid`,
  `creationTimestamp`, `generation` 1 for custom resources), `status` dropped when the
  status subresource exists, the CRD schema applied (prune, default, validate: 422).
- update (PUT, or a patch applied to the current object): a stale `resourceVersion` is a
  409; the main resource keeps the old `status` and the status subresource changes nothing
  but `status`; `uid`, `creationTimestamp`, `deletionTimestamp` and `generation` stay
  server-owned; `generation` grows only when something outside `metadata` (and `status`,
  when it is a subresource) changed; no finalizer may be added once deletion started.
- delete: with finalizers (or a namespace's `spec.finalizers`) the object is only marked
  (`deletionTimestamp`); without, it goes.
The storage assigns `resourceVersion` and decides whether an update changed anything.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from devcluster.kube import errors, schemas
from devcluster.kube.errors import FieldError
from devcluster.kube.resources import NAMESPACES, ResourceType

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_SERVER_OWNED = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "resourceVersion",
    "managedFields",
)


@dataclass(frozen=True)
class Stamp:
    """What the server contributes to one write: the time, a fresh uid, a name suffix."""

    now: str
    uid: str
    suffix: str


def _meta(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def finalizers(obj: Mapping[str, Any]) -> list[str]:
    """What still holds the object back from going: its finalizers (and a namespace's)."""
    held = list(_meta(obj).get("finalizers") or [])
    if obj.get("kind") == NAMESPACES.kind and obj.get("apiVersion") == NAMESPACES.api_version:
        held += list((obj.get("spec") or {}).get("finalizers") or [])
    return held


def _check_envelope(rt: ResourceType, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise errors.bad_request(f"the body must be a JSON object, not {type(body).__name__}")
    if body.get("apiVersion", rt.api_version) != rt.api_version:
        raise errors.bad_request(
            f"the API version in the data ({body['apiVersion']}) does not match the expected "
            f"API version ({rt.api_version})"
        )
    if body.get("kind", rt.kind) != rt.kind:
        raise errors.bad_request(
            f"the kind in the data ({body['kind']}) does not match the expected kind ({rt.kind})"
        )
    if "metadata" in body and not isinstance(body["metadata"], dict):
        raise errors.bad_request("metadata must be a JSON object")
    result = dict(body, apiVersion=rt.api_version, kind=rt.kind)
    result["metadata"] = dict(_meta(body))
    return result


def _metadata_problems(rt: ResourceType, meta: Mapping[str, Any]) -> list[FieldError]:
    problems = []
    name = meta.get("name", "")
    pattern, what = (
        (_DNS_LABEL, "RFC 1123 label")
        if rt.plural == NAMESPACES.plural and rt.group == ""
        else (_DNS_SUBDOMAIN, "RFC 1123 subdomain")
    )
    if not isinstance(name, str) or not pattern.fullmatch(name) or len(name) > 253:
        problems.append(
            FieldError(
                "metadata.name",
                "FieldValueInvalid",
                f'Invalid value: "{name}": a lowercase {what} must consist of lower case '
                "alphanumeric characters, '-' or '.', and must start and end with an "
                "alphanumeric character",
            )
        )
    for section in ("labels", "annotations"):
        values = meta.get(section)
        if values is None:
            continue
        if not isinstance(values, dict) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in values.items()
        ):
            problems.append(
                FieldError(
                    f"metadata.{section}",
                    "FieldValueInvalid",
                    "Invalid value: must be a map of strings to strings",
                )
            )
            continue
        if section == "labels":
            problems += [
                FieldError(
                    f"metadata.labels.{key}",
                    "FieldValueInvalid",
                    f'Invalid value: "{value}": a valid label must be an empty string '
                    "or consist of alphanumeric characters, '-', '_' or '.', and must "
                    "start and end with an alphanumeric character (at most 63)",
                )
                for key, value in values.items()
                if len(value) > 63 or not _LABEL_VALUE.fullmatch(value)
            ]
    held = meta.get("finalizers")
    if held is not None and not (
        isinstance(held, list) and all(isinstance(item, str) for item in held)
    ):
        problems.append(
            FieldError(
                "metadata.finalizers",
                "FieldValueInvalid",
                "Invalid value: must be a list of strings",
            )
        )
    return problems


def _admit(rt: ResourceType, obj: dict[str, Any], *, strict: bool) -> dict[str, Any]:
    """Apply the schema (prune, default) and validate; raise 422 on anything invalid."""
    name = str(_meta(obj).get("name", ""))
    problems = _metadata_problems(rt, _meta(obj))
    if rt.schema is not None:
        obj, dropped = schemas.prune(obj, rt.schema)
        if strict and dropped:
            problems += [
                FieldError(path, "FieldValueInvalid", f'unknown field "{path}"') for path in dropped
            ]
        obj = schemas.apply_defaults(obj, rt.schema)
        problems += schemas.validate(obj, rt.schema)
    if problems:
        raise errors.invalid(rt.kind, rt.group, name, problems)
    return obj


def for_create(
    rt: ResourceType, body: Any, *, namespace: str | None, stamp: Stamp, strict: bool = False
) -> dict[str, Any]:
    """The object a create request stores (without `resourceVersion`)."""
    obj = _check_envelope(rt, body)
    meta = obj["metadata"]
    if rt.namespaced:
        if meta.get("namespace", namespace) != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    if not meta.get("name"):
        prefix = meta.get("generateName")
        if not prefix:
            raise errors.invalid(
                rt.kind,
                rt.group,
                "",
                [
                    FieldError(
                        "metadata.name",
                        "FieldValueRequired",
                        "Required value: name or generateName is required",
                    )
                ],
            )
        meta["name"] = f"{prefix}{stamp.suffix}"
    for key in _SERVER_OWNED:
        meta.pop(key, None)
    meta["uid"] = stamp.uid
    meta["creationTimestamp"] = stamp.now
    if rt.tracks_generation:
        meta["generation"] = 1
    if rt.status_subresource:
        obj.pop("status", None)
    if rt.plural == NAMESPACES.plural and rt.group == "":
        obj["spec"] = {"finalizers": ["kubernetes"]}
        obj["status"] = {"phase": "Active"}
    return _admit(rt, obj, strict=strict)


def _spec_part(rt: ResourceType, obj: Mapping[str, Any]) -> dict[str, Any]:
    ignored = {"metadata", "apiVersion", "kind"} | ({"status"} if rt.status_subresource else set())
    return {key: value for key, value in obj.items() if key not in ignored}


def for_update(
    rt: ResourceType,
    old: Mapping[str, Any],
    body: Any,
    *,
    subresource: str | None,
    is_put: bool,
    strict: bool = False,
) -> dict[str, Any]:
    """The object an update (PUT, or a patch already applied to `old`) stores.

    Raises 409 for a stale `resourceVersion`, 400 for a renamed object, 422 for invalid
    content or a finalizer added during deletion.
    """
    new = _check_envelope(rt, body)
    old_meta, new_meta = _meta(old), new["metadata"]
    name = old_meta["name"]
    if new_meta.get("name", name) != name:
        raise errors.bad_request(
            f"the name of the object ({new_meta['name']}) does not match the name on the URL "
            f"({name})"
        )
    if rt.namespaced and new_meta.get("namespace", old_meta.get("namespace")) != old_meta.get(
        "namespace"
    ):
        raise errors.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    sent_version = new_meta.get("resourceVersion")
    if sent_version is None and is_put and rt.requires_resource_version:
        raise errors.invalid(
            rt.kind,
            rt.group,
            name,
            [
                FieldError(
                    "metadata.resourceVersion",
                    "FieldValueInvalid",
                    "Invalid value: 0x0: must be specified for an update",
                )
            ],
        )
    if sent_version is not None and sent_version != old_meta.get("resourceVersion"):
        raise errors.stale(rt.plural, rt.group, name)

    if subresource == "status":
        result = copy.deepcopy(dict(old))
        if "status" in new:
            result["status"] = new["status"]
        else:
            result.pop("status", None)
    else:
        result = new
        if rt.status_subresource:
            if "status" in old:
                result["status"] = old["status"]
            else:
                result.pop("status", None)
        meta = result["metadata"]
        for key in _SERVER_OWNED:
            meta.pop(key, None)
            if key in old_meta:
                meta[key] = old_meta[key]
        meta["name"] = name
        if rt.namespaced:
            meta["namespace"] = old_meta.get("namespace")
        added = [
            item
            for item in meta.get("finalizers") or []
            if item not in (old_meta.get("finalizers") or [])
        ]
        if old_meta.get("deletionTimestamp") and added:
            raise errors.invalid(
                rt.kind,
                rt.group,
                name,
                [
                    FieldError(
                        "metadata.finalizers",
                        "FieldValueForbidden",
                        "Forbidden: no new finalizers can be added if the object is being "
                        f"deleted, found new finalizers {added}",
                    )
                ],
            )
    if rt.plural == NAMESPACES.plural and rt.group == "" and "spec" in old:
        result["spec"] = old["spec"]  # only the `finalize` subresource (not served) changes it
    result = _admit(rt, result, strict=strict)
    if rt.tracks_generation and _spec_part(rt, result) != _spec_part(rt, old):
        result["metadata"]["generation"] = int(old_meta.get("generation", 0)) + 1
    return result


def check_preconditions(
    rt: ResourceType, obj: Mapping[str, Any], options: Mapping[str, Any]
) -> None:
    """A DeleteOptions `preconditions` mismatch is a 409, as on a real server."""
    wanted = options.get("preconditions") or {}
    meta = _meta(obj)
    for key in ("uid", "resourceVersion"):
        if wanted.get(key) is not None and wanted[key] != meta.get(key):
            raise errors.conflict(
                rt.plural,
                rt.group,
                meta.get("name", ""),
                f"Precondition failed: {key} in precondition: {wanted[key]}, {key} in object "
                f"meta: {meta.get(key)}",
            )


def for_delete(
    obj: Mapping[str, Any], *, now: str
) -> tuple[Literal["remove", "mark", "keep"], dict[str, Any]]:
    """Whether a delete removes the object, marks it for deletion, or finds it already marked."""
    result = copy.deepcopy(dict(obj))
    if not finalizers(obj):
        return "remove", result
    meta = result["metadata"]
    if meta.get("deletionTimestamp"):
        return "keep", result
    meta["deletionTimestamp"] = now
    meta["deletionGracePeriodSeconds"] = 0
    if result.get("kind") == NAMESPACES.kind and result.get("apiVersion") == "v1":
        result["status"] = dict(result.get("status") or {}, phase="Terminating")
    return "mark", result


def is_released(obj: Mapping[str, Any]) -> bool:
    """Marked for deletion and nothing holds it any more: it must go now."""
    return bool(_meta(obj).get("deletionTimestamp")) and not finalizers(obj)


def check_patchable(rt: ResourceType, obj: Any) -> None:
    """A patch must leave a JSON object behind (a real server answers 422 otherwise)."""
    if not isinstance(obj, dict):
        raise errors.unprocessable(f"the patch turned the {rt.kind} into a non-object")
