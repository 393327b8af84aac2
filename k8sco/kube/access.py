"""What the user may do in the cluster, asked before acting (a SelfSubjectAccessReview).

``k8sco apply`` runs an embedded controller in the user's name when no controller serves the
namespace. Writing a Pipeline's status is what that controller does, and that right is not
in the built-in "edit" role (an editor could forge a result with it): it comes from the
opt-in ClusterRole ``k8sco-embedded-controller`` (manifests/30-rbac.yaml). Asking first
turns a Forbidden in the middle of the run into a one-line answer before anything is created.
"""

from __future__ import annotations

from typing import Any

from k8sco.errors import ClusterError, UsageError
from k8sco.kube.client import Cluster

AUTHORIZATION = "/apis/authorization.k8s.io/v1"
EMBEDDED_ROLE = "k8sco-embedded-controller"


def allowed(
    cluster: Cluster,
    verb: str,
    group: str,
    resource: str,
    namespace: str,
    subresource: str = "",
) -> bool | None:
    """Whether the API server allows the user ``verb`` on ``resource`` in ``namespace``; None
    when it cannot answer (an API server without the authorization API, or a review refused).

    Every authenticated user may create SelfSubjectAccessReviews (the built-in
    ``system:basic-user`` ClusterRole, kubernetes
    plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go).
    """
    attributes = {"namespace": namespace, "verb": verb, "group": group, "resource": resource}
    if subresource:
        attributes["subresource"] = subresource
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    }
    try:
        review: dict[str, Any] = cluster.request(
            "POST", f"{AUTHORIZATION}/selfsubjectaccessreviews", body=body, retry=False
        )
    except ClusterError as exc:
        if exc.status == 0:
            raise  # unreachable: nothing else would work either
        return None
    status = review.get("status") if isinstance(review, dict) else None
    if not isinstance(status, dict) or not isinstance(status.get("allowed"), bool):
        return None
    return bool(status["allowed"])


def check_embedded(cluster: Cluster, namespace: str) -> None:
    """Raise :class:`UsageError` naming the role to ask for when the user may not run the
    embedded controller in ``namespace`` (may not patch ``pipelines/status`` there)."""
    if allowed(cluster, "patch", "k8sco.io", "pipelines", namespace, "status") is False:
        raise UsageError(
            f"running the controller embedded in this command needs the ClusterRole "
            f"{EMBEDDED_ROLE} in namespace {namespace} (it writes pipelines/status, which "
            f"'edit' does not give): ask an admin for `kubectl create rolebinding "
            f"k8sco-embedded --clusterrole={EMBEDDED_ROLE} --user=<you> -n {namespace}`, "
            "or install the controller (kubectl apply -f manifests/)"
        )


__all__ = ["EMBEDDED_ROLE", "allowed", "check_embedded"]
