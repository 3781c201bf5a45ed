"""Resource types the Kubernetes API emulator serves: built-ins and those CRDs define.

A `ResourceType` is one served group/version/plural with what discovery reports (kind,
scope, short names, categories, subresources), how writes behave (generation tracking,
whether PUT needs a resourceVersion), the structural schema custom resources are pruned,
defaulted and validated with, and the printer columns of `kubectl get`.
`crd_resource_types` turns a CustomResourceDefinition into the types it serves and
`crd_problems` lists what makes a CRD invalid, with the field paths a real server names.
Pure: no I/O; `storage` and `serving` use it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from devcluster.kube.errors import FieldError

CRD_GROUP = "apiextensions.k8s.io"
CRD_CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"


@dataclass(frozen=True)
class PrinterColumn:
    """One `additionalPrinterColumns` entry: a `kubectl get` column."""

    name: str
    type: str
    json_path: str
    description: str = ""
    priority: int = 0
    format: str = ""


@dataclass(frozen=True)
class ResourceType:
    """One served resource at one version."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: frozenset[str] = frozenset()
    # What makes writes custom-resource-like: generation counting and optimistic PUTs.
    tracks_generation: bool = False
    requires_resource_version: bool = False
    schema: Mapping[str, Any] | None = None
    printer_columns: tuple[PrinterColumn, ...] = ()
    # Versions of one resource share their objects; this names the shared collection.
    storage: str = field(default="")

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def status_subresource(self) -> bool:
        return "status" in self.subresources

    @property
    def collection(self) -> str:
        """The storage key, shared by all versions: `cloudjobs.cloudjob.io`, `namespaces`."""
        return self.storage or (f"{self.plural}.{self.group}" if self.group else self.plural)

    @property
    def verbs(self) -> tuple[str, ...]:
        return ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


def _columns(*triples: tuple[str, str, str]) -> tuple[PrinterColumn, ...]:
    return tuple(PrinterColumn(name, kind, path) for name, kind, path in triples)


NAMESPACES = ResourceType(
    group="",
    version="v1",
    plural="namespaces",
    kind="Namespace",
    singular="namespace",
    namespaced=False,
    short_names=("ns",),
    subresources=frozenset({"status", "finalize"}),
    printer_columns=_columns(("Status", "string", ".status.phase")),
)
EVENTS = ResourceType(
    group="",
    version="v1",
    plural="events",
    kind="Event",
    singular="event",
    namespaced=True,
    short_names=("ev",),
)
EVENTS_K8S_IO = ResourceType(
    group="events.k8s.io",
    version="v1",
    plural="events",
    kind="Event",
    singular="event",
    namespaced=True,
    storage="events",  # "ev" stays with the core group for kubectl
)
LEASES = ResourceType(
    group="coordination.k8s.io",
    version="v1",
    plural="leases",
    kind="Lease",
    singular="lease",
    namespaced=True,
    printer_columns=_columns(("Holder", "string", ".spec.holderIdentity")),
)
CRDS = ResourceType(
    group=CRD_GROUP,
    version="v1",
    plural="customresourcedefinitions",
    kind="CustomResourceDefinition",
    singular="customresourcedefinition",
    namespaced=False,
    short_names=("crd", "crds"),
    categories=("api-extensions",),
    subresources=frozenset({"status"}),
    tracks_generation=True,
    printer_columns=_columns(("Created At", "string", ".metadata.creationTimestamp")),
)
BUILTINS: tuple[ResourceType, ...] = (NAMESPACES, EVENTS, EVENTS_K8S_IO, LEASES, CRDS)
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def crd_problems(crd: Mapping[str, Any]) -> list[FieldError]:
    """What a real server would reject in this CustomResourceDefinition (empty: valid)."""
    problems: list[FieldError] = []
    spec = crd.get("spec")
    if not isinstance(spec, Mapping):
        return [FieldError("spec", "FieldValueRequired", "Required value")]
    names: Mapping[str, Any] = spec.get("names") or {}
    if not isinstance(names, Mapping):
        names = {}
    group, plural = _str(spec.get("group")), _str(names.get("plural"))
    kind = _str(names.get("kind"))
    for path, value in (
        ("spec.group", group),
        ("spec.names.plural", plural),
        ("spec.names.kind", kind),
    ):
        if not value:
            problems.append(FieldError(path, "FieldValueRequired", "Required value"))
    if plural and not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", plural):
        problems.append(
            FieldError(
                "spec.names.plural",
                "FieldValueInvalid",
                f'Invalid value: "{plural}": must be a lowercase DNS label',
            )
        )
    name = _str(crd.get("metadata", {}).get("name"))
    if group and plural and name != f"{plural}.{group}":
        problems.append(
            FieldError(
                "metadata.name",
                "FieldValueInvalid",
                f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group',
            )
        )
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        problems.append(
            FieldError(
                "spec.scope",
                "FieldValueNotSupported",
                f'Unsupported value: "{spec.get("scope")}": '
                'supported values: "Cluster", "Namespaced"',
            )
        )
    versions = spec.get("versions")
    if not isinstance(versions, Sequence) or not versions:
        problems.append(
            FieldError(
                "spec.versions",
                "FieldValueRequired",
                "Required value: must have exactly one version marked as storage version",
            )
        )
        return problems
    storage_count = 0
    for index, version in enumerate(versions):
        where = f"spec.versions[{index}]"
        if not isinstance(version, Mapping) or not _str(version.get("name")):
            problems.append(FieldError(f"{where}.name", "FieldValueRequired", "Required value"))
            continue
        storage_count += bool(version.get("storage"))
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        if not isinstance(schema, Mapping):
            problems.append(
                FieldError(
                    f"{where}.schema.openAPIV3Schema",
                    "FieldValueRequired",
                    "Required value: schemas are required",
                )
            )
        elif schema.get("type") != "object":
            problems.append(
                FieldError(
                    f"{where}.schema.openAPIV3Schema.type",
                    "FieldValueRequired",
                    'Required value: must be "object" at the root',
                )
            )
    if storage_count != 1:
        problems.append(
            FieldError(
                "spec.versions",
                "FieldValueInvalid",
                "Invalid value: must have exactly one version marked as storage version",
            )
        )
    return problems


def crd_resource_types(crd: Mapping[str, Any]) -> list[ResourceType]:
    """The served versions of a valid CustomResourceDefinition (see `crd_problems`)."""
    spec = crd["spec"]
    names = spec["names"]
    types = []
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        subresources = frozenset(version.get("subresources") or {})
        columns = tuple(
            PrinterColumn(
                name=column["name"],
                type=column.get("type", "string"),
                json_path=column["jsonPath"],
                description=column.get("description", ""),
                priority=int(column.get("priority", 0)),
                format=column.get("format", ""),
            )
            for column in version.get("additionalPrinterColumns") or ()
        )
        types.append(
            ResourceType(
                group=spec["group"],
                version=version["name"],
                plural=names["plural"],
                kind=names["kind"],
                singular=names.get("singular") or names["kind"].lower(),
                namespaced=spec["scope"] == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=subresources,
                tracks_generation=True,
                requires_resource_version=True,
                schema=version["schema"]["openAPIV3Schema"],
                printer_columns=columns,
            )
        )
    return types


def crd_status(crd: Mapping[str, Any], now: str) -> dict[str, Any]:
    """The status a real server's CRD controllers settle on for an accepted CRD."""
    spec = crd["spec"]
    names = dict(spec["names"])
    names.setdefault("singular", names["kind"].lower())
    names.setdefault("listKind", names["kind"] + "List")
    storage = [version["name"] for version in spec["versions"] if version.get("storage")]
    return {
        "acceptedNames": names,
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
                "lastTransitionTime": now,
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
                "lastTransitionTime": now,
            },
        ],
        "storedVersions": storage,
    }
