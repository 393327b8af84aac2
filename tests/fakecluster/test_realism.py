"""Where a real cluster differs from a naive fake and k8sco's bugs hid (issue 8, item 10):
late garbage collection, image pulls, quotas, denying webhooks, the termination grace
period, unschedulable pods, RBAC, opaque resourceVersions, silent watch connections and the
Job controller's batched syncs."""

from __future__ import annotations

import errno
import http.client
import json
import select
import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from .cluster import FakeCluster
from .images import default_pull_policy, normalize
from .runners import InstantRunner
from .scheduling import parse_quantity

REPO = Path(__file__).resolve().parents[2]
CONTROLLER_SA = "system:serviceaccount:k8sco-system:k8sco-controller"


def configmap(name: str, owner: dict[str, Any] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    if owner is not None:
        meta["ownerReferences"] = [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"],
            }
        ]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


def pod(name: str, image: str, *, command: list[str] | None = None, **container: Any) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {"name": "c", "image": image, "command": command or ["true"], **container}
            ],
        },
    }


def job(name: str, namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "app:1", "command": ["true"]}],
                }
            }
        },
    }


def waiting(cluster: FakeCluster, name: str) -> tuple[str, str] | None:
    obj = cluster.get("pods", name, "default") or {}
    for cs in (obj.get("status") or {}).get("containerStatuses") or []:
        w = (cs.get("state") or {}).get("waiting")
        if w:
            return w.get("reason", ""), w.get("message", "")
    return None


def status_body(exc: ApiException) -> dict[str, Any]:
    return json.loads(exc.body)


# -- 1. garbage collection is late -------------------------------------------------------


def test_background_gc_deletes_dependents_late_and_through_the_api(tmp_path: Path) -> None:
    with FakeCluster(gc_delay=2.0, log_dir=str(tmp_path / "logs")) as cluster:
        with cluster.api_client() as api:
            core = client.CoreV1Api(api)
            rv = core.list_namespaced_config_map("default").metadata.resource_version
            owner = cluster.create(configmap("owner"))
            cluster.create(configmap("dependent", owner))
            core.delete_namespaced_config_map("owner", "default", propagation_policy="Background")
            time.sleep(0.5)  # well inside the GC's delay
            assert cluster.get("configmaps", "owner", "default") is None
            assert cluster.get("configmaps", "dependent", "default") is not None
            seen = []
            w = watch.Watch()
            for event in w.stream(
                core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=10
            ):
                seen.append((event["type"], event["object"].metadata.name))
                if seen[-1] == ("DELETED", "dependent"):
                    w.stop()
        assert seen == [
            ("ADDED", "owner"),
            ("ADDED", "dependent"),
            ("DELETED", "owner"),
            ("DELETED", "dependent"),
        ]


def test_foreground_still_waits_for_dependents(fake_cluster: FakeCluster) -> None:
    owner = fake_cluster.create(configmap("owner"))
    fake_cluster.create(configmap("dependent", owner))
    with fake_cluster.api_client() as api:
        client.CoreV1Api(api).delete_namespaced_config_map(
            "owner", "default", propagation_policy="Foreground"
        )
    fake_cluster.wait_for(lambda: fake_cluster.get("configmaps", "owner", "default") is None)
    assert fake_cluster.get("configmaps", "dependent", "default") is None


# -- 2. images and imagePullPolicy -------------------------------------------------------


def test_pull_policy_defaults_as_the_api_does() -> None:
    assert default_pull_policy("k8sco-e2e:latest") == "Always"
    assert default_pull_policy("busybox") == "Always"
    assert default_pull_policy("localhost:5000/app") == "Always"
    assert default_pull_policy("localhost:5000/app:1") == "IfNotPresent"
    assert default_pull_policy("app@sha256:" + "0" * 64) == "IfNotPresent"
    assert normalize("busybox") == "docker.io/library/busybox:latest"
    assert normalize("docker.io/busybox:1") == "docker.io/library/busybox:1"
    assert normalize("localhost:5000/app") == "localhost:5000/app:latest"


def test_latest_image_without_a_registry_is_err_image_pull_then_back_off(
    fake_cluster: FakeCluster,
) -> None:
    created = fake_cluster.create(pod("p", "k8sco-e2e:latest"))
    assert created["spec"]["containers"][0]["imagePullPolicy"] == "Always"
    fake_cluster.wait_for(lambda: (waiting(fake_cluster, "p") or ("",))[0] == "ErrImagePull")
    _, message = waiting(fake_cluster, "p") or ("", "")
    assert 'failed to pull and unpack image "docker.io/library/k8sco-e2e:latest"' in message
    fake_cluster.wait_for(
        lambda: (
            waiting(fake_cluster, "p")
            == ("ImagePullBackOff", 'Back-off pulling image "k8sco-e2e:latest"')
        )
    )
    got = fake_cluster.get("pods", "p", "default") or {}
    assert got["status"]["phase"] == "Pending"
    assert fake_cluster.kubelet is not None and not fake_cluster.kubelet.processes()
    reasons = {e["reason"] for e in fake_cluster.objects("events", "default")}
    assert {"Pulling", "Failed", "BackOff"} <= reasons


def test_images_on_the_node_and_in_the_registry(tmp_path: Path) -> None:
    with FakeCluster(
        node_images=frozenset({"app:1"}),
        registry_images=frozenset({"pulled:2", "fresh:latest"}),
        log_dir=str(tmp_path / "logs"),
    ) as cluster:
        cluster.create(pod("present", "app:1"))
        cluster.create(pod("missing", "other:1"))
        cluster.create(pod("never", "other:1", imagePullPolicy="Never"))
        cluster.create(pod("pulled", "pulled:2"))
        cluster.create(pod("latest", "fresh"))

        def phase(name: str) -> str:
            return ((cluster.get("pods", name, "default") or {}).get("status") or {}).get(
                "phase", ""
            )

        for name in ("present", "pulled", "latest"):
            cluster.wait_for(lambda name=name: phase(name) == "Succeeded")
        cluster.wait_for(lambda: (waiting(cluster, "missing") or ("",))[0] == "ErrImagePull")
        cluster.wait_for(
            lambda: (
                waiting(cluster, "never")
                == (
                    "ErrImageNeverPull",
                    'Container image "other:1" is not present with pull policy of Never',
                )
            )
        )
        # A pulled image is then present: Never finds it.
        cluster.create(pod("after-pull", "pulled:2", imagePullPolicy="Never"))
        cluster.wait_for(lambda: phase("after-pull") == "Succeeded")
        assert phase("missing") == "Pending" and phase("never") == "Pending"


# -- 3. ResourceQuota ---------------------------------------------------------------------


def test_job_count_quota_refuses_with_the_apiserver_message(fake_cluster: FakeCluster) -> None:
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "jobs", "namespace": "default"},
        "spec": {"hard": {"count/jobs.batch": "1"}},
    }
    with fake_cluster.api_client() as api:
        client.CoreV1Api(api).create_namespaced_resource_quota("default", quota)
        batch = client.BatchV1Api(api)
        batch.create_namespaced_job("default", job("a"))
        with pytest.raises(ApiException) as caught:
            batch.create_namespaced_job("default", job("b"))
        body = status_body(caught.value)
        assert (caught.value.status, body["reason"]) == (403, "Forbidden")
        assert body["message"] == (
            'jobs.batch "b" is forbidden: exceeded quota: jobs, requested: count/jobs.batch=1, '
            "used: count/jobs.batch=1, limited: count/jobs.batch=1"
        )
        # Quota admission comes before the storage: an existing name is refused by quota too.
        with pytest.raises(ApiException) as again:
            batch.create_namespaced_job("default", job("a"))
        assert again.value.status == 403
        fake_cluster.wait_for(
            lambda: (
                ((fake_cluster.get("resourcequotas", "jobs", "default") or {}).get("status"))
                == {"hard": {"count/jobs.batch": "1"}, "used": {"count/jobs.batch": "1"}}
            )
        )
        batch.delete_namespaced_job("a", "default", propagation_policy="Background")
        fake_cluster.wait_for(
            lambda: (
                (fake_cluster.get("resourcequotas", "jobs", "default") or {})["status"]["used"]
                == {"count/jobs.batch": "0"}
            )
        )
        batch.create_namespaced_job("default", job("b"))


def test_pod_count_quota_shows_as_failed_create_on_the_job(fake_cluster: FakeCluster) -> None:
    fake_cluster.create(
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "pods", "namespace": "default"},
            "spec": {"hard": {"count/pods": "0"}},
        }
    )
    fake_cluster.create(job("j"))

    def failed_create() -> str:
        for e in fake_cluster.objects("events", "default"):
            if e["reason"] == "FailedCreate":
                return str(e["message"])
        return ""

    message = fake_cluster.wait_for(failed_create)
    assert "exceeded quota: pods, requested: count/pods=1, used: count/pods=0" in message


# -- 4. a denying admission webhook -------------------------------------------------------


def test_denying_admission_rule(fake_cluster: FakeCluster) -> None:
    rule = fake_cluster.deny_admission(
        "jobs",
        match=lambda obj: obj["metadata"]["name"].startswith("bad"),
        message="jobs named bad-* are not allowed",
        name="policy.example.com",
    )
    with fake_cluster.api_client() as api:
        batch = client.BatchV1Api(api)
        batch.create_namespaced_job("default", job("good"))
        with pytest.raises(ApiException) as caught:
            batch.create_namespaced_job("default", job("bad-1"))
        body = status_body(caught.value)
        assert (caught.value.status, body["reason"]) == (403, "Forbidden")
        assert body["message"] == (
            'jobs.batch "bad-1" is forbidden: admission webhook "policy.example.com" denied the '
            "request: jobs named bad-* are not allowed"
        )
        assert body["details"] == {"name": "bad-1", "group": "batch", "kind": "jobs"}
        fake_cluster.allow_admission(rule)
        fake_cluster.deny_admission("jobs", message="", code=400, name="w")
        with pytest.raises(ApiException) as bare:
            batch.create_namespaced_job("default", job("bad-2"))
        assert bare.value.status == 400
        assert status_body(bare.value)["message"] == (
            'jobs.batch "bad-2" is forbidden: admission webhook "w" denied the request without '
            "explanation"
        )
        fake_cluster.allow_admission()
        batch.create_namespaced_job("default", job("bad-3"))


# -- 5. the real termination grace period -------------------------------------------------

IGNORE_TERM = (
    "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('started', flush=True)\ntime.sleep(300)\n"
)


@pytest.mark.slow
def test_failure_target_long_before_failed_with_the_default_grace(tmp_path: Path) -> None:
    with FakeCluster(max_grace_seconds=None, log_dir=str(tmp_path / "logs")) as cluster:
        spec = job("deadline")
        spec["spec"]["activeDeadlineSeconds"] = 1
        container = spec["spec"]["template"]["spec"]["containers"][0]
        container["command"] = [sys.executable, "-c", IGNORE_TERM]
        cluster.create(spec)

        def conditions() -> dict[str, str]:
            obj = cluster.get("jobs.batch", "deadline", "default") or {}
            conds = (obj.get("status") or {}).get("conditions") or []
            return {c["type"]: c.get("reason", "") for c in conds if c["status"] == "True"}

        assert cluster.wait_for(lambda: "FailureTarget" in conditions(), timeout=10)
        assert conditions() == {"FailureTarget": "DeadlineExceeded"}
        assert cluster.kubelet is not None
        procs = cluster.kubelet.processes()
        assert len(procs) == 1
        handle = next(iter(procs.values()))
        # SIGTERM is ignored: the pod terminates only at SIGKILL, after 30 s.
        time.sleep(20)
        assert conditions() == {"FailureTarget": "DeadlineExceeded"}
        assert cluster.kubelet.processes() == procs
        assert cluster.wait_for(lambda: "Failed" in conditions(), timeout=30)
        assert handle.wait() == -9 or handle.wait() == 137


def test_max_grace_none_means_no_cap(tmp_path: Path) -> None:
    with FakeCluster(max_grace_seconds=None, kubelet=True, log_dir=str(tmp_path)) as cluster:
        assert cluster.kubelet is not None and cluster.kubelet.max_grace_seconds is None


# -- 6. unschedulable pods ----------------------------------------------------------------


def test_a_pod_asking_for_more_than_the_node_stays_pending(fake_cluster: FakeCluster) -> None:
    fake_cluster.create(pod("big", "app:1", resources={"requests": {"cpu": "100"}}))

    def scheduled() -> dict[str, Any] | None:
        obj = fake_cluster.get("pods", "big", "default") or {}
        for c in (obj.get("status") or {}).get("conditions") or []:
            if c["type"] == "PodScheduled":
                return dict(c)
        return None

    cond = fake_cluster.wait_for(scheduled)
    assert (cond["status"], cond["reason"]) == ("False", "Unschedulable")
    assert cond["message"].startswith("0/1 nodes are available: 1 Insufficient cpu.")
    got = fake_cluster.get("pods", "big", "default") or {}
    assert got["status"]["phase"] == "Pending" and not got["spec"].get("nodeName")
    events = [
        e for e in fake_cluster.objects("events", "default") if e["reason"] == "FailedScheduling"
    ]
    assert events and events[0]["message"] == cond["message"]


def test_a_pod_is_scheduled_once_resources_are_freed(tmp_path: Path) -> None:
    capacity = {"cpu": "1", "memory": "1Gi", "pods": "10"}
    with FakeCluster(node_capacity=capacity, log_dir=str(tmp_path / "logs")) as cluster:
        cluster.create(
            pod("a", "app:1", command=["sleep", "30"], resources={"requests": {"cpu": "800m"}})
        )
        cluster.wait_for(
            lambda: (cluster.get("pods", "a", "default") or {})["status"]["phase"] == "Running"
        )
        cluster.create(pod("b", "app:1", resources={"requests": {"cpu": "500m", "memory": "2Gi"}}))

        def reason() -> str:
            obj = cluster.get("pods", "b", "default") or {}
            conds = {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}
            return str(conds.get("PodScheduled", {}).get("message", ""))

        message = cluster.wait_for(reason)
        assert message.startswith(
            "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory."
        )
        node = cluster.get("nodes", "fakenode") or {}
        assert node["status"]["allocatable"]["cpu"] == "1"
    assert parse_quantity("1.5Gi") == 1.5 * 2**30 and parse_quantity("250m") * 4 == 1


def test_freed_resources_let_a_pending_pod_run(tmp_path: Path) -> None:
    capacity = {"cpu": "1"}
    with FakeCluster(node_capacity=capacity, log_dir=str(tmp_path / "logs")) as cluster:
        cluster.create(
            pod("a", "app:1", command=["sleep", "30"], resources={"requests": {"cpu": "1"}})
        )
        cluster.create(pod("b", "app:1", resources={"requests": {"cpu": "1"}}))
        cluster.wait_for(lambda: waiting_for_node(cluster, "b"))
        with cluster.api_client() as api:
            client.CoreV1Api(api).delete_namespaced_pod("a", "default", grace_period_seconds=0)
        cluster.wait_for(
            lambda: (
                (cluster.get("pods", "b", "default") or {})["status"].get("phase") == "Succeeded"
            )
        )


def test_the_kubelet_syncs_a_running_pod_for_a_new_label_not_for_a_status_write(
    tmp_path: Path,
) -> None:
    """A pod's status write, the kubelet's own or another's, is only reconciled; a change of
    spec, labels, annotations or deletion makes the pod workers sync the pod (the kubelet's
    pod config: pkg/kubelet/config/config.go, checkAndUpdatePod, podsDifferSemantically)."""
    with FakeCluster(log_dir=str(tmp_path / "logs")) as cluster:
        kubelet = cluster.kubelet
        assert kubelet is not None
        synced: list[str] = []
        sync_pod = kubelet._sync_pod

        def counting(obj: dict[str, Any]) -> None:
            synced.append(obj["metadata"]["resourceVersion"])
            sync_pod(obj)

        kubelet._sync_pod = counting  # type: ignore[method-assign]
        cluster.create(pod("a", "app:1", command=["sleep", "30"]))
        cluster.wait_for(
            lambda: (cluster.get("pods", "a", "default") or {})["status"].get("phase") == "Running"
        )
        time.sleep(0.5)  # anything the start set off has been synced
        before = len(synced)
        with cluster.api_client() as api:
            core = client.CoreV1Api(api)
            gate = {"type": "example.com/gate", "status": "True"}
            core.patch_namespaced_pod_status("a", "default", {"status": {"conditions": [gate]}})
            time.sleep(0.5)
            assert len(synced) == before
            core.patch_namespaced_pod("a", "default", {"metadata": {"labels": {"x": "1"}}})
            cluster.wait_for(lambda: len(synced) > before)


def waiting_for_node(cluster: FakeCluster, name: str) -> bool:
    obj = cluster.get("pods", name, "default") or {}
    return any(
        c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable"
        for c in (obj.get("status") or {}).get("conditions") or []
    )


# -- 7. RBAC ------------------------------------------------------------------------------


def install_manifests(cluster: FakeCluster) -> None:
    for path in sorted((REPO / "manifests").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                cluster.create(doc)


def pipeline(name: str) -> dict[str, Any]:
    crd = yaml.safe_load((REPO / "manifests" / "10-crd.yaml").read_text())
    version = next(v["name"] for v in crd["spec"]["versions"] if v.get("storage"))
    return {
        "apiVersion": f"k8sco.io/{version}",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {"k8scoVersion": "0.1.0", "tree": "{}"},
    }


def forbidden_message(call: Any) -> str:
    with pytest.raises(ApiException) as caught:
        call()
    assert caught.value.status == 403, caught.value.body
    return str(status_body(caught.value)["message"])


def test_the_controller_service_account_is_authorized_by_the_manifests(
    fake_cluster: FakeCluster,
) -> None:
    install_manifests(fake_cluster)
    with fake_cluster.api_client(user=CONTROLLER_SA) as api:
        client.BatchV1Api(api).create_namespaced_job("default", job("by-controller"))
        message = forbidden_message(
            lambda: client.CoordinationV1Api(api).delete_namespaced_lease(
                "kube-controller-manager", "kube-system"
            )
        )
        assert message == (
            'leases.coordination.k8s.io "kube-controller-manager" is forbidden: User '
            f'"{CONTROLLER_SA}" cannot delete resource "leases" in API group '
            '"coordination.k8s.io" in the namespace "kube-system"'
        )
        message = forbidden_message(
            lambda: client.CoreV1Api(api).create_namespace({"metadata": {"name": "x"}})
        )
        assert message == (
            f'namespaces is forbidden: User "{CONTROLLER_SA}" cannot create resource '
            '"namespaces" in API group "" at the cluster scope'
        )


def test_a_k8sco_user_may_create_pipelines_and_nothing_outside_its_role(
    fake_cluster: FakeCluster,
) -> None:
    install_manifests(fake_cluster)
    fake_cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    fake_cluster.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "alice-k8sco", "namespace": "team"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "k8sco-user",
            },
            "subjects": [
                {"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}
            ],
        }
    )
    with fake_cluster.api_client(user="alice") as api:
        custom = client.CustomObjectsApi(api)
        version = pipeline("p")["apiVersion"].split("/")[1]
        custom.create_namespaced_custom_object(
            "k8sco.io", version, "team", "pipelines", pipeline("p")
        )
        message = forbidden_message(
            lambda: client.CoordinationV1Api(api).delete_namespaced_lease("x", "kube-system")
        )
        assert message.startswith(
            'leases.coordination.k8s.io "x" is forbidden: User "alice" cannot delete resource '
            '"leases" in API group "coordination.k8s.io" in the namespace "kube-system"'
        )
        # Its rights are only where it is bound.
        forbidden_message(
            lambda: custom.create_namespaced_custom_object(
                "k8sco.io", version, "default", "pipelines", pipeline("q")
            )
        )
        review = client.AuthorizationV1Api(api).create_self_subject_access_review(
            {
                "spec": {
                    "resourceAttributes": {
                        "namespace": "team",
                        "verb": "create",
                        "group": "k8sco.io",
                        "resource": "pipelines",
                    }
                }
            }
        )
        assert review.status.allowed is True
        review = client.AuthorizationV1Api(api).create_self_subject_access_review(
            {
                "spec": {
                    "resourceAttributes": {
                        "namespace": "team",
                        "verb": "create",
                        "resource": "pods",
                    }
                }
            }
        )
        assert review.status.allowed is False
    # Discovery is open to every authenticated user (system:discovery); other paths are not.
    token = fake_cluster.token("alice")
    conn = http.client.HTTPConnection(fake_cluster.host, fake_cluster.port, timeout=10)
    try:
        for path, code in (("/apis", 200), ("/api/v1", 200), ("/metrics", 403)):
            conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
            response = conn.getresponse()
            body = json.loads(response.read())
            assert response.status == code, (path, body)
        assert body["message"] == 'forbidden: User "alice" cannot get path "/metrics"'
    finally:
        conn.close()


def test_aggregated_cluster_roles_and_unknown_tokens(fake_cluster: FakeCluster) -> None:
    fake_cluster.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "cm-reader", "labels": {"example.com/aggregate-to-team": "true"}},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
        }
    )
    fake_cluster.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "team"},
            "aggregationRule": {
                "clusterRoleSelectors": [{"matchLabels": {"example.com/aggregate-to-team": "true"}}]
            },
        }
    )
    fake_cluster.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "team"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "team",
            },
            "subjects": [
                {"kind": "Group", "name": "devs", "apiGroup": "rbac.authorization.k8s.io"}
            ],
        }
    )
    fake_cluster.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    fake_cluster.wait_for(
        lambda: (
            (fake_cluster.get("clusterroles.rbac.authorization.k8s.io", "team") or {}).get("rules")
            == [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]
        )
    )
    with fake_cluster.api_client(user="bob", groups=["devs"]) as api:
        core = client.CoreV1Api(api)
        assert core.read_namespaced_config_map("c", "default").metadata.name == "c"
        forbidden_message(lambda: core.delete_namespaced_config_map("c", "default"))
    with fake_cluster.api_client() as api:
        api.configuration.api_key = {"authorization": "not-a-token"}
        api.configuration.api_key_prefix = {"authorization": "Bearer"}
        with pytest.raises(ApiException) as caught:
            client.CoreV1Api(api).list_namespaced_config_map("default")
        assert caught.value.status == 401


# -- 8. opaque resourceVersions -----------------------------------------------------------


def test_resource_versions_are_opaque(fake_cluster: FakeCluster, tmp_path: Path) -> None:
    with fake_cluster.api_client() as api:
        core = client.CoreV1Api(api)
        created = core.create_namespaced_config_map("default", configmap("a"))
        rv = created.metadata.resource_version
        with pytest.raises(ValueError):
            int(rv)
        with pytest.raises(ValueError):
            float(rv)
        listed = core.list_namespaced_config_map("default").metadata.resource_version
        core.create_namespaced_config_map("default", configmap("b"))
        events = []
        w = watch.Watch()
        for event in w.stream(
            core.list_namespaced_config_map, "default", resource_version=listed, timeout_seconds=5
        ):
            events.append((event["type"], event["object"].metadata.name))
            w.stop()
        assert events == [("ADDED", "b")]
    with FakeCluster(
        opaque_resource_versions=False, kubelet=False, log_dir=str(tmp_path / "l")
    ) as numeric:
        assert int(numeric.create(configmap("a"))["metadata"]["resourceVersion"]) > 0


# -- 9. watches that go silent ------------------------------------------------------------


def test_a_silent_watch_sends_nothing_but_stays_open(fake_cluster: FakeCluster) -> None:
    fake_cluster.create(configmap("first"))
    fake_cluster.faults.configure(watch_silent_after_events=1, resources=["configmaps"])
    conn = http.client.HTTPConnection(fake_cluster.host, fake_cluster.port, timeout=10)
    conn.request(
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=true&allowWatchBookmarks=true"
        "&timeoutSeconds=3",
    )
    response = conn.getresponse()
    first = json.loads(response.readline())
    assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "first")
    fake_cluster.create(configmap("second"))
    assert conn.sock is not None
    conn.sock.settimeout(1.5)
    with pytest.raises((socket.timeout, TimeoutError)):
        response.readline()  # neither the event nor a bookmark comes
    assert fake_cluster.faults.silenced_watches == 1
    conn.close()


def test_a_burst_of_connections_is_taken_without_a_syn_retry() -> None:
    """kube-apiserver's listen backlog is the kernel's somaxconn, not socketserver's 5: 64
    clients connecting at once all complete the handshake before the server accepts one
    (past the backlog, Linux drops the SYN and the client retries a second later)."""
    from .server import HttpServer

    server = HttpServer(app=None)  # type: ignore[arg-type]  # never started: accepts nothing
    host, port = server.address
    clients = [socket.socket() for _ in range(64)]
    try:
        for sock in clients:
            sock.setblocking(False)
            assert sock.connect_ex((host, port)) in (0, errno.EINPROGRESS)
        connected: set[socket.socket] = set()
        deadline = time.monotonic() + 5.0  # a bound on a hang, not a measure: loopback
        while len(connected) < len(clients) and time.monotonic() < deadline:
            pending = [s for s in clients if s not in connected]
            _, writable, _ = select.select([], pending, [], deadline - time.monotonic())
            for sock in writable:
                assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
                connected.add(sock)
        assert len(connected) == len(clients)
    finally:
        for sock in clients:
            sock.close()
        server._server.server_close()


def test_a_jobs_pod_events_are_synced_one_batch_period_later(tmp_path: Path) -> None:
    """The Job controller syncs a Job at once when it is created, but lets its pods' events
    gather for syncJobBatchPeriod (1 s, the real default here) before it counts them
    (pkg/controller/job/job_controller.go: addPod/updatePod call enqueueSyncJobBatched):
    a Job says SuccessCriteriaMet a second after its pod succeeded, not at once."""
    seen: dict[str, float] = {}

    def note(ev: Any) -> None:
        now, status = time.monotonic(), ev.obj.get("status") or {}
        if ev.key == ("", "pods") and status.get("phase") == "Succeeded":
            seen.setdefault("pod succeeded", now)
        conds = status.get("conditions") or []
        if ev.key == ("batch", "jobs") and any(c["type"] == "SuccessCriteriaMet" for c in conds):
            seen.setdefault("job succeeded", now)

    with FakeCluster(
        runner=InstantRunner(), job_sync_batch_period=1.0, log_dir=str(tmp_path)
    ) as cluster:
        cluster.store.subscribe(note)
        cluster.create(job("batched"))
        assert cluster.wait_for(lambda: "job succeeded" in seen, timeout=20)
        assert not cluster.internal_errors
    assert seen["job succeeded"] - seen["pod succeeded"] >= 0.9
