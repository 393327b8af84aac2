"""Names and numbers shared by the renderer, the manifests, the chart and the image builder.

Pure data. Whatever must agree between a rendered Job, the controller that creates it and the
image it runs in is defined here once.
"""

from __future__ import annotations

from k8sco._version import __version__

API_GROUP = "k8sco.io"
API_VERSION = f"{API_GROUP}/v1alpha1"
KIND = "Pipeline"
PLURAL = "pipelines"
CRD_NAME = f"{PLURAL}.{API_GROUP}"

# Labels and annotations every Job and its pods carry (DESIGN.md §2).
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "k8sco"
LABEL_PIPELINE = f"{API_GROUP}/pipeline"
ANNOTATION_PATH = f"{API_GROUP}/path"

# The code root: where an image's ``copy_dir`` lands, the working directory of every node's
# container, and what native-function paths (``k8sco call dir/file.py:func``) are relative to.
CODE_ROOT = "/app"

# The uid and gid nodes run as unless ``run_as_root=True``. A numeric uid is what lets the
# kubelet accept ``runAsNonRoot`` for images whose USER is root (python:*, most base images);
# images built by k8sco create their user with this uid so that it owns a home directory.
RUN_AS_USER = 1000

# The name of the one container in a node's pod (``pod_spec={"containers": [{"name": "main",
# ...}]}`` patches it).
CONTAINER_NAME = "main"

# The controller's image: Python, k8sco and its dispatcher (``Dockerfile``). It is also the
# image of a node that names none, because a native-function node runs ``k8sco call`` and needs
# k8sco inside its image; shell commands run there too (it is python:3.11-slim underneath).
IMAGE_REPOSITORY = "ghcr.io/k8sco/k8sco"
DEFAULT_IMAGE = f"{IMAGE_REPOSITORY}:{__version__}"

# Where the controller runs and the Lease through which one replica leads. ``k8sco apply``
# reads this Lease to decide whether a controller is running in the cluster.
SYSTEM_NAMESPACE = "k8sco-system"
CONTROLLER_NAME = "k8sco-controller"
LEASE_NAME = CONTROLLER_NAME
HEALTH_PORT = 8080

# The label the API server puts on a Job's pods with the Job's uid, so that a Job's pods can
# be listed without matching another Job's of the same name: kubernetes/kubernetes
# pkg/apis/batch/types.go LegacyControllerUidLabel, set with ControllerUidLabel
# ("batch.kubernetes.io/controller-uid", 1.27+) by pkg/registry/batch/job/strategy.go's
# generateSelector. The unprefixed one also works on clusters older than 1.27.
POD_JOB_UID_LABEL = "controller-uid"
