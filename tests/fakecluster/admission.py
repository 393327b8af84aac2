"""Configurable denying admission: the answer of a validating webhook that refuses.

kube-apiserver turns a webhook's ``allowed: false`` into the Status built by
staging/src/k8s.io/apiserver/pkg/admission/plugin/webhook/errors/statuserror.go (ToStatusErr):
the code the webhook gave (403 when it gave none), reason Forbidden unless it gave one, and
the message ``<resource>.<group> "<name>" is forbidden: admission webhook "<webhook>" denied
the request: <message>`` (``Internal error occurred: …`` for a 500).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ApiError
from .resources import ResourceType


@dataclass(frozen=True, eq=False)
class DenyRule:
    resource: str  # "jobs", "jobs.batch", "pods", "pipelines.k8sco.io"
    match: Callable[[dict[str, Any]], bool] | None
    message: str
    code: int
    name: str  # the webhook's name
    operations: tuple[str, ...]  # CREATE, UPDATE, DELETE

    def applies(self, rt: ResourceType, operation: str, obj: dict[str, Any]) -> bool:
        plural, _, group = self.resource.partition(".")
        if plural != rt.plural or (group and group != rt.group):
            return False
        if operation not in self.operations:
            return False
        return self.match is None or bool(self.match(obj))

    def error(self, rt: ResourceType, name: str) -> ApiError:
        code = self.code or 403
        denied = f'admission webhook "{self.name}" denied the request'
        text = f"{denied}: {self.message}" if self.message else f"{denied} without explanation"
        name = name or "Unknown"
        if code == 500:
            return ApiError(
                code,
                "InternalError",
                f"Internal error occurred: {text}",
                {"causes": [{"message": text}]},
            )
        # ToStatusErr replicates apierrors.NewForbidden: details.kind is the resource.
        details = {"name": name, "group": rt.group, "kind": rt.plural}
        return ApiError(code, "Forbidden", f'{rt.qualified} "{name}" is forbidden: {text}', details)


def check(rules: list[DenyRule], rt: ResourceType, operation: str, obj: dict[str, Any]) -> None:
    """Raise the first denying rule's error (webhooks run in order; the first "no" wins)."""
    for rule in list(rules):
        if rule.applies(rt, operation, obj):
            raise rule.error(rt, (obj.get("metadata") or {}).get("name") or "")
