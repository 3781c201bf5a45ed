"""Errors of the Kubernetes test world: `ApiError` is a request the API server refused (in
the shape of its `Status` body); `KubeUnavailable` is a control plane that could not be
found or started."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ApiError(Exception):
    """A failed API request: HTTP `code`, machine `reason`, human `message`, `details`."""

    def __init__(
        self, code: int, reason: str, message: str, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.details: dict[str, Any] = dict(details or {})


class KubeUnavailable(RuntimeError):
    """The Kubernetes binaries are missing, or etcd / the API server did not start."""
