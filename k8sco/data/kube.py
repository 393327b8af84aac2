"""``co.data`` on a cluster: where each Pipeline's data and logs live, and what a Job needs
to reach them. Pure: settings in, dicts out.

The controller's settings (its environment; ``charts/k8sco`` values ``data.*``):

- ``K8SCO_DATA_STORE``: ``s3://bucket/prefix`` (an S3-compatible object store) or
  ``pvc:CLAIM`` (a ReadWriteMany PersistentVolumeClaim of that name in each pipeline's
  namespace). Unset: no data store; ``co.data.pipeline`` fails in nodes and logs are not
  archived.
- ``K8SCO_S3_ENDPOINT``, ``K8SCO_S3_REGION``, ``K8SCO_S3_ADDRESSING``: copied into each Job.
- ``K8SCO_DATA_SECRET`` (default ``k8sco-data``): the Secret, in the pipeline's namespace,
  whose keys (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, optional
  ``AWS_SESSION_TOKEN``) reach the Job through ``envFrom``: no credential is ever written
  into a Pipeline or a Job. The controller's own credentials come from its Deployment's
  Secret (same keys) for archiving logs and deleting a deleted Pipeline's data.
- ``K8SCO_DATA_PVC_MOUNT`` (default ``/k8sco/data``): where the claim is mounted in Jobs.
- ``K8SCO_DATA_USER``: the name of the user scope; default: the namespace.

Layout under the store (S3 prefix; on a claim, the claim is already per namespace)::

    <prefix>/<namespace>/pipelines/<Pipeline uid>/data/   co.data.pipeline
    <prefix>/<namespace>/pipelines/<Pipeline uid>/logs/<job name>/<created>-<job uid>.log
    <prefix>/<namespace>/pipelines/<Pipeline uid>/logs/<job name>/<created>-<job uid>.parts/N
                                                          (a running Job's log, in chunks)
    <prefix>/<namespace>/user/                            co.data.user ("user" = namespace)
    <prefix>/users/<K8SCO_DATA_USER>/                     co.data.user when configured

Keyed by the Pipeline's uid, not its name: a Pipeline deleted and applied again under the
same name is another run and sees none of the first one's data.

Isolation: "user" is the namespace, so everyone who may run pipelines in a namespace shares
its user data, and namespaces do not see each other's *through k8sco*. The store itself
does not enforce this: any credential in a namespace's Secret reaches every key the
credential's policy allows, so give each namespace its own S3 credential whose policy
allows only ``<prefix>/<namespace>/*`` (and a claim is per namespace by nature).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from k8sco.data.api import ENV_PIPELINE, ENV_USER
from k8sco.data.stores import join_url
from k8sco.errors import DataConfigError
from k8sco.render.constants import API_GROUP

FINALIZER = f"{API_GROUP}/data"  # removed once the Pipeline's data and logs are deleted
ANNOTATION_STORE = f"{API_GROUP}/data"  # on a Pipeline: its root in the store (no secret)
ANNOTATION_ARCHIVED = f"{API_GROUP}/log-archived"  # on a Job: its log is in the store
ANNOTATION_JOB_RETENTION = f"{API_GROUP}/job-retention"  # on a Pipeline: seconds
VOLUME = "k8sco-data"
S3_SETTINGS = ("K8SCO_S3_ENDPOINT", "K8SCO_S3_REGION", "K8SCO_S3_ADDRESSING")


@dataclass(frozen=True)
class DataConfig:
    store: str  # s3://bucket/prefix or pvc:CLAIM
    secret: str = "k8sco-data"
    mount: str = "/k8sco/data"
    user: str | None = None
    s3: tuple[tuple[str, str], ...] = ()  # the S3_SETTINGS that are set

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> DataConfig | None:
        store = environ.get("K8SCO_DATA_STORE", "").strip()
        if not store:
            return None
        if not (store.startswith("s3://") and len(store) > 5) and not (
            store.startswith("pvc:") and len(store) > 4
        ):
            raise DataConfigError(
                f"K8SCO_DATA_STORE={store!r}: use s3://bucket/prefix or pvc:CLAIM-NAME"
            )
        mount = environ.get("K8SCO_DATA_PVC_MOUNT", "/k8sco/data").rstrip("/") or "/"
        if not mount.startswith("/"):
            raise DataConfigError(f"K8SCO_DATA_PVC_MOUNT={mount!r}: give an absolute path")
        return cls(
            store=store,
            secret=environ.get("K8SCO_DATA_SECRET") or "k8sco-data",
            mount=mount,
            user=environ.get("K8SCO_DATA_USER") or None,
            s3=tuple((k, environ[k]) for k in S3_SETTINGS if environ.get(k)),
        )

    @property
    def is_pvc(self) -> bool:
        return self.store.startswith("pvc:")

    @property
    def claim(self) -> str:
        return self.store[len("pvc:") :]

    def pipeline_root(self, namespace: str, uid: str) -> str:
        """The store URL under which a Pipeline's data and logs live."""
        if self.is_pvc:
            return join_url(self.mount, "pipelines", uid)
        return join_url(self.store, namespace, "pipelines", uid)

    def user_url(self, namespace: str) -> str:
        if self.is_pvc:
            return join_url(self.mount, "user")
        if self.user:
            return join_url(self.store, "users", self.user)
        return join_url(self.store, namespace, "user")

    def job_env(self, namespace: str, uid: str) -> dict[str, str]:
        """The literal env a node gets: store URLs and S3 settings, never a credential."""
        env = {
            ENV_PIPELINE: join_url(self.pipeline_root(namespace, uid), "data"),
            ENV_USER: self.user_url(namespace),
        }
        if not self.is_pvc:
            env.update(self.s3)
        return env


def data_root(pipeline_root: str) -> str:
    return join_url(pipeline_root, "data")


def log_key(job_name: str, created: str = "", job_uid: str = "") -> str:
    """The name of a Job's archived log under the Pipeline's root; without ``created`` and
    ``job_uid``, the prefix of every run of that Job's name. A rerun makes a new Job of the
    same name: keyed by creation time (RFC 3339 in UTC: sorts in time order) and uid, each
    run keeps its own log, and the last name in a listing is the latest run."""
    if not job_uid:
        return f"logs/{job_name}/"
    return f"logs/{job_name}/{created}-{job_uid}.log"


def log_parts_prefix(job_name: str, created: str, job_uid: str) -> str:
    """Where the log of a running Job is written in chunks as the controller follows it
    (kube/archive.py): ``<prefix><8-digit sequence>``, merged into :func:`log_key`'s one
    object once the Job has ended."""
    return f"logs/{job_name}/{created}-{job_uid}.parts/"


def decorate_job(job: Mapping[str, Any], config: DataConfig, namespace: str, uid: str) -> Any:
    """A copy of ``job`` whose container can reach the data store: the store's env (beating
    a node's variables of the same names), and the credentials Secret as an optional
    ``envFrom`` (a namespace without it still runs nodes that use no data; one that does
    fails saying which variables are missing), or the claim mounted at its path."""
    out = copy.deepcopy(dict(job))
    pod = out["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = config.job_env(namespace, uid)
    container["env"] = [e for e in container.get("env") or [] if e.get("name") not in env] + [
        {"name": k, "value": v} for k, v in env.items()
    ]
    if config.is_pvc:
        pod["volumes"] = [v for v in pod.get("volumes") or [] if v.get("name") != VOLUME] + [
            {"name": VOLUME, "persistentVolumeClaim": {"claimName": config.claim}}
        ]
        mounts = [m for m in container.get("volumeMounts") or [] if m.get("name") != VOLUME]
        container["volumeMounts"] = [*mounts, {"name": VOLUME, "mountPath": config.mount}]
    else:
        container["envFrom"] = [
            *(container.get("envFrom") or []),
            {"secretRef": {"name": config.secret, "optional": True}},
        ]
    return out
