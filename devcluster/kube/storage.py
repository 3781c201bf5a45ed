"""The in-memory object store behind the Kubernetes API emulator, with a real server's
bookkeeping: one cluster-wide `resourceVersion` counter (like etcd's revision) stamped on
every write, a bounded log of changes that watches resume from (too old: 410 Gone), the
`CustomResourceDefinition` objects as the source of the served custom resource types, and
the two garbage collectors a real control plane runs for us: a deleted namespace empties
itself then goes, a deleted CRD deletes its objects then goes.

All methods are synchronous and must be called from the one event loop the server runs in;
`tick` is an asyncio event set (and replaced) on every change, which watches wait on.
`serving` maps HTTP requests onto these methods.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import random
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from devcluster.kube import errors, lifecycle, patching
from devcluster.kube.conversions import intake, present, storage_type
from devcluster.kube.errors import FieldError
from devcluster.kube.resources import (
    BUILTINS,
    CRD_CLEANUP_FINALIZER,
    CRDS,
    INITIAL_NAMESPACES,
    NAMESPACES,
    ResourceType,
    crd_problems,
    crd_resource_types,
    crd_status,
)

Predicate = Callable[[Mapping[str, Any]], bool]
Key = tuple[str, str]  # (namespace or "", name)
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def _everything(_: Mapping[str, Any]) -> bool:
    return True


def rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Change:
    """One committed write, as watches replay it."""

    resource_version: int
    collection: str
    type: str  # ADDED, MODIFIED, DELETED
    obj: Mapping[str, Any]
    previous: Mapping[str, Any] | None = None  # the state a MODIFIED change replaced


class Storage:
    """Objects of every served resource, and the served resource types themselves."""

    def __init__(
        self,
        *,
        history: int = 10_000,
        clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
        extra_types: Iterable[ResourceType] = (),
    ) -> None:
        self._clock = clock
        self._random = random.Random()
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._crd_types: dict[str, list[tuple[str, str, str]]] = {}
        self._objects: dict[str, dict[Key, dict[str, Any]]] = collections.defaultdict(dict)
        self._log: collections.deque[Change] = collections.deque(maxlen=history)
        self._forgotten = 0
        self._reaping = False
        self.resource_version = 0
        self.tick = asyncio.Event()
        for rt in (*BUILTINS, *extra_types):
            self._types[rt.group, rt.version, rt.plural] = rt
        for name in INITIAL_NAMESPACES:
            self.create(NAMESPACES, None, {"metadata": {"name": name}})

    # Resource types -------------------------------------------------------------------

    def types(self) -> list[ResourceType]:
        return sorted(self._types.values(), key=lambda rt: (rt.group, rt.version, rt.plural))

    def resource_type(self, group: str, version: str, plural: str) -> ResourceType:
        try:
            return self._types[group, version, plural]
        except KeyError:
            raise errors.unknown_resource() from None

    def _register_crd(self, crd: Mapping[str, Any]) -> None:
        self._unregister_crd(crd["metadata"]["name"])
        keys = []
        for rt in crd_resource_types(crd):
            keys.append((rt.group, rt.version, rt.plural))
            self._types[keys[-1]] = rt
        self._crd_types[crd["metadata"]["name"]] = keys

    def _unregister_crd(self, name: str) -> None:
        for key in self._crd_types.pop(name, []):
            self._types.pop(key, None)

    def _check_crd(self, crd: Mapping[str, Any]) -> None:
        problems = crd_problems(crd)
        spec = crd.get("spec") or {}
        plural = (spec.get("names") or {}).get("plural")
        owned = self._crd_types.get(crd["metadata"]["name"], [])
        taken = [
            key
            for key in self._types
            if key[0] == spec.get("group") and key[2] == plural and key not in owned
        ]
        if taken and not problems:
            problems.append(
                FieldError(
                    "spec.names.plural",
                    "FieldValueInvalid",
                    f'Invalid value: "{plural}": is already served',
                )
            )
        if problems:
            raise errors.invalid(CRDS.kind, CRDS.group, crd["metadata"]["name"], problems)

    # Bookkeeping ------------------------------------------------------------------------

    def _stamp(self) -> lifecycle.Stamp:
        suffix = "".join(self._random.choice(_SUFFIX_ALPHABET) for _ in range(5))
        return lifecycle.Stamp(now=rfc3339(self._clock()), uid=str(uuid.uuid4()), suffix=suffix)

    @staticmethod
    def _key(rt: ResourceType, namespace: str | None, name: str) -> Key:
        return (namespace or "") if rt.namespaced else "", name

    def _commit(self, rt: ResourceType, kind: str, obj: Mapping[str, Any]) -> dict[str, Any]:
        self.resource_version += 1
        stored = dict(obj)
        stored["metadata"] = dict(obj["metadata"], resourceVersion=str(self.resource_version))
        key = self._key(rt, stored["metadata"].get("namespace"), stored["metadata"]["name"])
        previous = self._objects[rt.collection].get(key) if kind == "MODIFIED" else None
        if kind == "DELETED":
            self._objects[rt.collection].pop(key, None)
        else:
            self._objects[rt.collection][key] = stored
        if self._log.maxlen is not None and len(self._log) == self._log.maxlen:
            self._forgotten = self._log[0].resource_version
        self._log.append(Change(self.resource_version, rt.collection, kind, stored, previous))
        tick, self.tick = self.tick, asyncio.Event()
        tick.set()
        return stored

    def _stored(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self._objects[rt.collection].get(self._key(rt, namespace, name))
        if obj is None:
            raise errors.not_found(rt.plural, rt.group, name)
        return obj

    # Reads ------------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        return present(rt, self._stored(storage_type(rt), namespace, name))

    def list_objects(
        self, rt: ResourceType, namespace: str | None, predicate: Predicate = _everything
    ) -> tuple[list[dict[str, Any]], int]:
        """The matching objects (sorted by namespace and name) and the current version."""
        objects = self._objects[storage_type(rt).collection]
        items = [
            present(rt, obj)
            for key, obj in sorted(objects.items())
            if (namespace is None or key[0] == namespace) and predicate(obj)
        ]
        return items, self.resource_version

    def changes_after(self, rt: ResourceType, since: int) -> list[Change]:
        """Committed changes to `rt`'s objects newer than `since`; 410 if forgotten."""
        if since < self._forgotten:
            raise errors.gone(since, self._forgotten + 1)
        collection = storage_type(rt).collection
        return [
            change
            for change in self._log
            if change.resource_version > since and change.collection == collection
        ]

    # Writes -----------------------------------------------------------------------------

    def create(
        self,
        rt: ResourceType,
        namespace: str | None,
        body: Any,
        *,
        dry_run: bool = False,
        strict: bool = False,
    ) -> dict[str, Any]:
        srt = storage_type(rt)
        if srt.namespaced:
            owner = self._objects[NAMESPACES.collection].get(("", namespace or ""))
            if owner is None:
                raise errors.not_found(NAMESPACES.plural, "", namespace or "")
            if owner["metadata"].get("deletionTimestamp"):
                raise errors.forbidden(
                    f"{rt.plural} is forbidden: unable to create new content in namespace "
                    f"{namespace} because it is being terminated"
                )
        stamp = self._stamp()
        obj = lifecycle.for_create(
            srt, intake(rt, body), namespace=namespace, stamp=stamp, strict=strict
        )
        meta = obj["metadata"]
        if self._key(srt, namespace, meta["name"]) in self._objects[srt.collection]:
            raise errors.already_exists(rt.plural, rt.group, meta["name"])
        if srt is CRDS:
            self._check_crd(obj)
            meta["finalizers"] = [*meta.get("finalizers", []), CRD_CLEANUP_FINALIZER]
            obj["status"] = crd_status(obj, stamp.now)
        if dry_run:
            return present(rt, obj)
        stored = self._commit(srt, "ADDED", obj)
        if srt is CRDS:
            self._register_crd(stored)
        self._reap()
        return present(rt, stored)

    def replace(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        strict: bool = False,
    ) -> dict[str, Any]:
        srt = storage_type(rt)
        old = self._stored(srt, namespace, name)
        new = lifecycle.for_update(
            srt, old, intake(rt, body), subresource=subresource, is_put=True, strict=strict
        )
        return self._update(rt, old, new, dry_run=dry_run)

    def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        patch_type: str,
        patch: Any,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        strict: bool = False,
    ) -> dict[str, Any]:
        """Apply a `merge` (RFC 7386) or `json` (RFC 6902) patch, then update as by PUT."""
        srt = storage_type(rt)
        old = self._stored(srt, namespace, name)
        current = present(rt, old)
        if patch_type == "merge":
            if not isinstance(patch, dict):
                raise errors.bad_request("a merge patch must be a JSON object")
            patched = patching.merge_patch(current, patch)
        else:
            if not isinstance(patch, list):
                raise errors.bad_request("a JSON patch must be a JSON array of operations")
            try:
                patched = patching.json_patch(current, patch)
            except patching.PatchError as error:
                raise errors.unprocessable(str(error)) from None
        lifecycle.check_patchable(rt, patched)
        new = lifecycle.for_update(
            srt, old, intake(rt, patched), subresource=subresource, is_put=False, strict=strict
        )
        return self._update(rt, old, new, dry_run=dry_run)

    def _update(
        self, rt: ResourceType, old: dict[str, Any], new: dict[str, Any], *, dry_run: bool
    ) -> dict[str, Any]:
        srt = storage_type(rt)
        if srt is CRDS:
            self._check_crd(new)
        if new == old:
            return present(rt, old)  # a no-op write changes nothing, not even the version
        if dry_run:
            return present(rt, new)
        if lifecycle.is_released(new):
            stored = self._remove(srt, new)
        else:
            stored = self._commit(srt, "MODIFIED", new)
            if srt is CRDS:
                self._register_crd(stored)
        self._reap()
        return present(rt, stored)

    def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        srt = storage_type(rt)
        old = self._stored(srt, namespace, name)
        lifecycle.check_preconditions(rt, old, options or {})
        if dry_run:
            return present(rt, lifecycle.for_delete(old, now=self._stamp().now)[1])
        stored = self._delete(srt, old)
        self._reap()
        return present(rt, stored)

    def delete_collection(
        self, rt: ResourceType, namespace: str | None, predicate: Predicate = _everything
    ) -> list[dict[str, Any]]:
        srt = storage_type(rt)
        doomed = [
            obj
            for key, obj in sorted(self._objects[srt.collection].items())
            if (namespace is None or key[0] == namespace) and predicate(obj)
        ]
        gone = [present(rt, self._delete(srt, obj)) for obj in doomed]
        self._reap()
        return gone

    def _delete(self, srt: ResourceType, old: dict[str, Any]) -> dict[str, Any]:
        action, new = lifecycle.for_delete(old, now=self._stamp().now)
        if action == "remove":
            return self._remove(srt, new)
        if action == "mark":
            return self._commit(srt, "MODIFIED", new)
        return old

    def _remove(self, srt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        stored = self._commit(srt, "DELETED", obj)
        if srt is CRDS:
            self._unregister_crd(stored["metadata"]["name"])
        return stored

    # Garbage collection -----------------------------------------------------------------

    def _reap(self) -> None:
        """Empty deleted namespaces and CRDs, and let them go once empty."""
        if self._reaping:
            return
        self._reaping = True
        try:
            while self._reap_namespaces() or self._reap_crds():
                pass
        finally:
            self._reaping = False

    def _reap_namespaces(self) -> bool:
        progressed = False
        for (_, name), namespace in list(self._objects[NAMESPACES.collection].items()):
            if not namespace["metadata"].get("deletionTimestamp"):
                continue
            contents = [
                (rt, obj)
                for rt in self._collections()
                if rt.namespaced
                for key, obj in list(self._objects[rt.collection].items())
                if key[0] == name
            ]
            for rt, obj in contents:
                if not obj["metadata"].get("deletionTimestamp"):
                    self._delete(rt, obj)
                    progressed = True
            if not contents and (namespace.get("spec") or {}).get("finalizers"):
                released = dict(namespace, spec={"finalizers": []})
                if lifecycle.is_released(released):
                    self._remove(NAMESPACES, released)
                else:
                    self._commit(NAMESPACES, "MODIFIED", released)
                progressed = True
        return progressed

    def _reap_crds(self) -> bool:
        progressed = False
        for crd in list(self._objects[CRDS.collection].values()):
            meta = crd["metadata"]
            if not meta.get("deletionTimestamp") or CRD_CLEANUP_FINALIZER not in meta.get(
                "finalizers", []
            ):
                continue
            served = [
                rt
                for rt in self._types.values()
                if (rt.group, rt.version, rt.plural) in self._crd_types.get(meta["name"], [])
            ]
            contents = [
                (rt, obj)
                for rt in served[:1]
                for obj in list(self._objects[rt.collection].values())
            ]
            for rt, obj in contents:
                if not obj["metadata"].get("deletionTimestamp"):
                    self._delete(rt, obj)
                    progressed = True
            if not contents:
                held = [item for item in meta["finalizers"] if item != CRD_CLEANUP_FINALIZER]
                released = dict(crd, metadata=dict(meta, finalizers=held))
                if lifecycle.is_released(released):
                    self._remove(CRDS, released)
                else:
                    self._commit(CRDS, "MODIFIED", released)
                progressed = True
        return progressed

    def _collections(self) -> list[ResourceType]:
        """One type per stored collection (the first served version)."""
        seen: dict[str, ResourceType] = {}
        for rt in self._types.values():
            seen.setdefault(storage_type(rt).collection, storage_type(rt))
        return list(seen.values())
