"""Kubernetes ``Status`` errors: raised by the registry, written by the server.

Every failure a client can see is an :class:`ApiError`; the constructors below build
the exact reason, message and details that kube-apiserver sends (k8s-jobs.md §4).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .resources import ResourceType


class ApiError(Exception):
    """An HTTP error answered with a ``Status`` body."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


@dataclass(frozen=True)
class FieldError:
    """One entry of a 422 ``Invalid`` answer, formatted as apimachinery's field.Error."""

    type: str  # "Required value", "Invalid value", "Unsupported value", "Forbidden", ...
    field: str
    detail: str = ""
    value: Any = None
    has_value: bool = False

    @classmethod
    def invalid(cls, path: str, value: Any, detail: str) -> FieldError:
        return cls("Invalid value", path, detail, value, True)

    @classmethod
    def required(cls, path: str, detail: str = "") -> FieldError:
        return cls("Required value", path, detail)

    @classmethod
    def forbidden(cls, path: str, detail: str) -> FieldError:
        return cls("Forbidden", path, detail)

    @classmethod
    def unsupported(cls, path: str, value: Any, supported: list[str]) -> FieldError:
        detail = "supported values: " + ", ".join(json.dumps(s) for s in supported)
        return cls("Unsupported value", path, detail, value, True)

    def body(self) -> str:
        text = self.type
        if self.has_value:
            text += ": " + _go_value(self.value)
        if self.detail:
            text += ": " + self.detail
        return text

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"

    @property
    def cause_reason(self) -> str:
        return {
            "Required value": "FieldValueRequired",
            "Invalid value": "FieldValueInvalid",
            "Unsupported value": "FieldValueNotSupported",
            "Forbidden": "FieldValueForbidden",
            "Duplicate value": "FieldValueDuplicate",
            "Too long": "FieldValueTooLong",
        }.get(self.type, "FieldValueInvalid")


def _go_value(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float) or value is None:
        return "null" if value is None else str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def not_found(rt: ResourceType, name: str) -> ApiError:
    details = {"name": name, "group": rt.group, "kind": rt.plural}
    return ApiError(404, "NotFound", f'{rt.qualified} "{name}" not found', details)


def namespace_not_found(name: str) -> ApiError:
    details = {"name": name, "kind": "namespaces"}
    return ApiError(404, "NotFound", f'namespaces "{name}" not found', details)


def unknown_resource() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def already_exists(rt: ResourceType, name: str) -> ApiError:
    details = {"name": name, "group": rt.group, "kind": rt.plural}
    return ApiError(409, "AlreadyExists", f'{rt.qualified} "{name}" already exists', details)


def conflict(rt: ResourceType, name: str, problem: str | None = None) -> ApiError:
    problem = problem or (
        "the object has been modified; please apply your changes to the latest version "
        "and try again"
    )
    details = {"name": name, "group": rt.group, "kind": rt.plural}
    message = f'Operation cannot be fulfilled on {rt.qualified} "{name}": {problem}'
    return ApiError(409, "Conflict", message, details)


def invalid(rt: ResourceType, name: str, errors: list[FieldError]) -> ApiError:
    unique: list[FieldError] = []
    for err in errors:  # apimachinery's ToAggregate drops duplicate messages
        if str(err) not in {str(u) for u in unique}:
            unique.append(err)
    text = str(unique[0]) if len(unique) == 1 else "[" + ", ".join(map(str, unique)) + "]"
    details = {
        "name": name,
        "group": rt.group,
        "kind": rt.kind,
        "causes": [
            {"reason": e.cause_reason, "message": e.body(), "field": e.field} for e in unique
        ],
    }
    return ApiError(422, "Invalid", f'{rt.qualified_kind} "{name}" is invalid: {text}', details)


def unprocessable(message: str) -> ApiError:
    return ApiError(422, "Invalid", message, {"causes": [{"message": message}]})


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def forbidden(rt: ResourceType, name: str, problem: str) -> ApiError:
    """apierrors.NewForbidden: ``<resource>.<group> ["<name>" ]is forbidden: <problem>``."""
    details = {"name": name, "group": rt.group, "kind": rt.plural}
    if not name:
        del details["name"]
        return ApiError(403, "Forbidden", f"{rt.qualified} is forbidden: {problem}", details)
    return ApiError(403, "Forbidden", f'{rt.qualified} "{name}" is forbidden: {problem}', details)


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def method_not_allowed(method: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", f"the server does not allow this method ({method})")


def unsupported_media_type(content_type: str, accepted: list[str]) -> ApiError:
    message = (
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{', '.join(accepted)}"
    )
    if content_type:
        message = f'{message} (got "{content_type}")'
    return ApiError(415, "UnsupportedMediaType", message)


def too_many_requests(retry_after: int) -> ApiError:
    return ApiError(
        429,
        "TooManyRequests",
        "Too many requests, please try again later.",
        {"retryAfterSeconds": retry_after},
        {"Retry-After": str(retry_after)},
    )


def internal(message: str) -> ApiError:
    return ApiError(
        500,
        "InternalError",
        f"Internal error occurred: {message}",
        {"causes": [{"message": message}]},
    )
