"""How long a finished Pipeline is kept: the controller deletes it (and, through garbage
collection of their owner, its Jobs and pods) once that retention has passed, so finished
Jobs do not pile up against a namespace's ``count/jobs.batch`` quota.

Settings, off unless given:

- ``K8SCO_PIPELINE_TTL`` (the controller's environment; chart value ``pipelineTTL``):
  seconds after a Pipeline's ``status.completionTime`` (Succeeded, Failed or Killed);
- the Pipeline annotation ``k8sco.io/pipeline-ttl: SECONDS`` overrides it for one Pipeline
  (``""`` or ``never``: keep this one although the controller has a default).

With an S3 data store the Pipeline goes only once every one of its Jobs' logs is archived
(kube/archive.py); its data and those archives are then deleted with it (the ``k8sco.io/data``
finalizer), as Conducto deleted a pipeline's data with the pipeline. Without a store, or with
a ``pvc:`` one (whose logs are not archived), a Pipeline goes only when a retention is
configured, and its logs go with its pods.

Deleted with ``propagationPolicy: Background`` and the preconditions ``uid`` and
``resourceVersion`` of the version the controller judged finished (DeleteOptions'
Preconditions, kubernetes staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/types.go): a
rerun or a new Pipeline of that name written meanwhile gets 409, not deleted. The clock is
``status.completionTime`` (written by the controller): a restart does not start it again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from k8sco.errors import Conflict, NotFound, UsageError
from k8sco.kube.client import BACKGROUND, PIPELINES
from k8sco.render.constants import API_GROUP, PLURAL
from k8sco.render.pipeline import parse_timestamp

if TYPE_CHECKING:
    from k8sco.kube.controller import Api

ENV_PIPELINE_TTL = "K8SCO_PIPELINE_TTL"
ANNOTATION_PIPELINE_TTL = f"{API_GROUP}/pipeline-ttl"
_NEVER = ("", "never")


@dataclass(frozen=True)
class Retention:
    """A controller's retention of finished Pipelines. Only the cluster's controller has
    one (kube/process.py): the embedded controller of ``k8sco apply --controller embedded``
    runs with its user's rights and never deletes a Pipeline."""

    default_ttl: float | None = None  # K8SCO_PIPELINE_TTL; None: only annotated ones go

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Retention:
        return cls(ttl_from_env(environ))

    def expiry(self, pipeline: Mapping[str, Any]) -> float | None:
        return expiry(pipeline, self.default_ttl)


def delete_finished(cluster: Api, pipeline: Mapping[str, Any]) -> bool:
    """Delete ``pipeline`` as the controller saw it (uid and resourceVersion preconditions,
    Background propagation). Whether it was deleted: False when it is gone already or has
    changed since (409: a rerun, a new spec), to be judged again on its next event."""
    meta = pipeline.get("metadata") or {}
    body = {
        **BACKGROUND,
        "preconditions": {"uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")},
    }
    try:
        cluster.request(
            "DELETE",
            f"{cluster.ns_path(PIPELINES, PLURAL, meta.get('namespace', ''))}/{meta.get('name')}",
            body=body,
        )
    except (NotFound, Conflict):
        return False
    return True


def ttl_from_env(environ: Mapping[str, str]) -> float | None:
    """The controller's default retention in seconds; None (keep) when unset."""
    text = environ.get(ENV_PIPELINE_TTL, "").strip()
    if not text:
        return None
    value = _seconds(text)
    if value is None:
        raise UsageError(
            f"{ENV_PIPELINE_TTL}={text!r}: give a number of seconds >= 0, or unset it to "
            "keep finished pipelines"
        )
    return value


def expiry(pipeline: Mapping[str, Any], default_ttl: float | None) -> float | None:
    """When the finished ``pipeline`` may be deleted (seconds since the epoch), or None:
    it has not finished, or no retention applies to it. An annotation that is not a
    number is ignored (the default applies): a typo must not delete a pipeline early."""
    meta = pipeline.get("metadata") or {}
    ttl = default_ttl
    note = (meta.get("annotations") or {}).get(ANNOTATION_PIPELINE_TTL)
    if note is not None:
        if str(note).strip().lower() in _NEVER:
            return None
        given = _seconds(str(note))
        ttl = given if given is not None else default_ttl
    if ttl is None:
        return None
    completed = (pipeline.get("status") or {}).get("completionTime")
    if not completed:
        return None
    try:
        return parse_timestamp(str(completed)) + ttl
    except ValueError:
        return None


def _seconds(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value >= 0 and math.isfinite(value) else None
