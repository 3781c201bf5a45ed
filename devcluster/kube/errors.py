"""API errors of the Kubernetes API emulator, in the `Status` shape a real API server sends.

The pure modules of `devcluster.kube` raise `ApiError`; `serving` renders it as a JSON
`Status` body with the same HTTP code, reason and message wording a real server uses, so
clients (kopf, the `kubernetes` package, kubectl) map it to the error type they would see
against a real cluster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class ApiError(Exception):
    """A failed API request: HTTP `code`, machine `reason`, human `message`, `details`."""

    def __init__(
        self, code: int, reason: str, message: str, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def status(self) -> dict[str, Any]:
        """The `v1 Status` body of this error."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def qualified(plural: str, group: str) -> str:
    """`cloudjobs.cloudjob.io` or `namespaces`: how a real server names a resource in errors."""
    return f"{plural}.{group}" if group else plural


def not_found(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f'{qualified(plural, group)} "{name}" not found',
        {"name": name, "group": group, "kind": plural},
    )


def unknown_resource() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def already_exists(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{qualified(plural, group)} "{name}" already exists',
        {"name": name, "group": group, "kind": plural},
    )


def conflict(plural: str, group: str, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(plural, group)} "{name}": {why}',
        {"name": name, "group": group, "kind": plural},
    )


def stale(plural: str, group: str, name: str) -> ApiError:
    """The optimistic-concurrency failure for a write that carried an old resourceVersion."""
    return conflict(
        plural,
        group,
        name,
        "the object has been modified; please apply your changes to the latest version "
        "and try again",
    )


class FieldError:
    """One invalid field, as in a real server's `details.causes`."""

    __slots__ = ("field", "message", "reason")

    def __init__(self, field: str, reason: str, message: str) -> None:
        self.field = field
        self.reason = reason
        self.message = message

    def __repr__(self) -> str:
        return f"FieldError({self.field!r}, {self.reason!r}, {self.message!r})"

    def text(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


def invalid(kind: str, group: str, name: str, causes: Sequence[FieldError]) -> ApiError:
    """422 Invalid: `CloudJob.cloudjob.io "x" is invalid: spec.cron: Required value`."""
    texts = [cause.text() for cause in causes]
    joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    return ApiError(
        422,
        "Invalid",
        f'{qualified(kind, group)} "{name}" is invalid: {joined}',
        {
            "name": name,
            "group": group,
            "kind": kind,
            "causes": [
                {"reason": cause.reason, "message": cause.message, "field": cause.field}
                for cause in causes
            ],
        },
    )


def unprocessable(message: str) -> ApiError:
    """422 without a field: what a real server sends when a JSON patch cannot be applied."""
    return ApiError(422, "UnprocessableEntity", message)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def forbidden(message: str) -> ApiError:
    return ApiError(403, "Forbidden", message)


def method_not_allowed(message: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - "
        f"accepted media types include: application/json, application/merge-patch+json, "
        f'application/json-patch+json (got "{content_type}")',
    )


def gone(requested: int, oldest: int) -> ApiError:
    return ApiError(410, "Expired", f"too old resource version: {requested} ({oldest})")
