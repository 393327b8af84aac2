"""CRUD semantics through the official client: resourceVersions, errors, patches, status."""

from __future__ import annotations

import http.client
import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .cluster import FakeCluster

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "pipelines.k8sco.io"},
    "spec": {
        "group": "k8sco.io",
        "scope": "Namespaced",
        "names": {
            "plural": "pipelines",
            "singular": "pipeline",
            "kind": "Pipeline",
            "shortNames": ["pl"],
        },
        "versions": [
            {
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "tree": {"type": "string"},
                                    "retries": {"type": "integer"},
                                },
                            },
                            "status": {
                                "type": "object",
                                "properties": {
                                    "phase": {"type": "string"},
                                    "progress": {"type": "string"},
                                },
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                        },
                    }
                },
                "additionalPrinterColumns": [
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                    {"name": "Progress", "type": "string", "jsonPath": ".status.progress"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
            }
        ],
    },
}


def raw(
    cluster: FakeCluster,
    method: str,
    path: str,
    body: object = None,
    content_type: str = "application/json",
) -> tuple[int, dict]:
    """One HTTP request, for what the generated client cannot send."""
    conn = http.client.HTTPConnection(cluster.host, cluster.port, timeout=10)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": content_type})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def error(exc: ApiException) -> dict:
    return json.loads(exc.body)


def configmap(name: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def test_create_get_list_update_delete(k8s_client: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s_client)
    created = core.create_namespaced_config_map("default", configmap("a", x="1"))
    assert created.metadata.uid and created.metadata.creation_timestamp
    rv1 = created.metadata.resource_version
    got = core.read_namespaced_config_map("a", "default")
    assert got.data == {"x": "1"} and got.metadata.resource_version == rv1
    listed = core.list_namespaced_config_map("default")
    assert [c.metadata.name for c in listed.items] == ["a"]
    assert listed.metadata.resource_version
    got.data["x"] = "2"
    updated = core.replace_namespaced_config_map("a", "default", got)
    assert updated.metadata.resource_version != rv1 and updated.data == {"x": "2"}
    status = core.delete_namespaced_config_map("a", "default")
    assert status["status"] == "Success" and status["details"]["name"] == "a"
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_config_map("a", "default")
    body = error(exc.value)
    assert (exc.value.status, body["reason"], body["message"]) == (
        404,
        "NotFound",
        'configmaps "a" not found',
    )
    assert (
        body["details"] == {"name": "a", "kind": "configmaps"}
        or body["details"]["kind"] == "configmaps"
    )


def test_stale_resource_version_conflicts(k8s_client: client.ApiClient) -> None:
    batch = client.BatchV1Api(k8s_client)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "x"},
        "spec": {
            "suspend": True,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "i:1", "command": ["true"]}],
                }
            },
        },
    }
    created = batch.create_namespaced_job("default", job)
    stale = created.metadata.resource_version
    batch.patch_namespaced_job("x", "default", {"metadata": {"labels": {"a": "b"}}})
    created.metadata.labels = {"a": "c"}
    created.metadata.resource_version = stale
    with pytest.raises(ApiException) as exc:
        batch.replace_namespaced_job("x", "default", created)
    body = error(exc.value)
    assert exc.value.status == 409 and body["reason"] == "Conflict"
    assert body["message"] == (
        'Operation cannot be fulfilled on jobs.batch "x": the object has been modified; please '
        "apply your changes to the latest version and try again"
    )
    # Jobs may be updated without a resourceVersion (AllowUnconditionalUpdate).
    created.metadata.resource_version = None
    assert batch.replace_namespaced_job("x", "default", created).metadata.labels["a"] == "c"


def test_already_exists_generate_name_and_missing_namespace(k8s_client: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s_client)
    core.create_namespaced_config_map("default", configmap("dup"))
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map("default", configmap("dup"))
    assert exc.value.status == 409 and error(exc.value)["reason"] == "AlreadyExists"
    assert error(exc.value)["message"] == 'configmaps "dup" already exists'
    generated = core.create_namespaced_config_map("default", {"metadata": {"generateName": "gen-"}})
    name = generated.metadata.name
    assert (
        name.startswith("gen-")
        and len(name) == 9
        and set(name[4:]) <= set("bcdfghjklmnpqrstvwxz2456789")
    )
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map("nope", configmap("a"))
    assert exc.value.status == 404 and error(exc.value)["message"] == 'namespaces "nope" not found'
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map("default", configmap("Bad_Name"))
    assert exc.value.status == 422 and error(exc.value)["reason"] == "Invalid"
    assert error(exc.value)["details"]["causes"][0]["field"] == "metadata.name"


def test_patches_and_dry_run(k8s_client: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s_client)
    core.create_namespaced_config_map("default", configmap("p", a="1", b="2"))
    merged = core.patch_namespaced_config_map("p", "default", {"data": {"a": None, "c": "3"}})
    assert merged.data == {"b": "2", "c": "3"}
    rv = merged.metadata.resource_version
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "replace", "path": "/data/b", "value": "x"},
    ]
    assert core.patch_namespaced_config_map("p", "default", ops).data["b"] == "x"
    with pytest.raises(ApiException) as exc:  # the guard kopf uses: a stale test fails with 422
        core.patch_namespaced_config_map("p", "default", ops)
    assert exc.value.status == 422
    dry = core.patch_namespaced_config_map("p", "default", {"data": {"d": "4"}}, dry_run="All")
    assert dry.data["d"] == "4"
    assert "d" not in core.read_namespaced_config_map("p", "default").data


def test_strategic_merge_of_containers(
    k8s_client: client.ApiClient, fake_cluster: FakeCluster
) -> None:
    api = client.AppsV1Api(k8s_client)
    labels = {"app": "d"}
    deployment = {
        "metadata": {"name": "d"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]
                },
            },
        },
    }
    api.create_namespaced_deployment("default", deployment)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "b:2"}]}}}}
    patched = api.patch_namespaced_deployment("d", "default", patch)  # strategic for dicts
    images = {c.name: c.image for c in patched.spec.template.spec.containers}
    assert images == {"a": "a:1", "b": "b:2"}
    assert patched.metadata.generation == 2


def test_custom_resources(fake_cluster: FakeCluster, k8s_client: client.ApiClient) -> None:
    ext = client.ApiextensionsV1Api(k8s_client)
    crd = ext.create_custom_resource_definition(CRD)
    assert {c.type for c in crd.status.conditions} == {"NamesAccepted", "Established"}
    custom = client.CustomObjectsApi(k8s_client)
    body = {
        "apiVersion": "k8sco.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "p1"},
        "spec": {"tree": "t", "unknown": 1},
        "status": {"phase": "ignored"},
    }
    created = custom.create_namespaced_custom_object(
        "k8sco.io", "v1alpha1", "default", "pipelines", body
    )
    assert created["spec"] == {"tree": "t"}  # pruned by the structural schema
    assert "status" not in created  # status is only written through /status
    assert created["metadata"]["generation"] == 1
    status = {
        "status": {"phase": "Running", "progress": "1/3", "nodes": {"/a": "done"}},
        "spec": {"tree": "changed"},
    }
    after = custom.patch_namespaced_custom_object_status(
        "k8sco.io", "v1alpha1", "default", "pipelines", "p1", status
    )
    assert after["status"]["phase"] == "Running" and after["status"]["nodes"] == {"/a": "done"}
    assert after["spec"] == {"tree": "t"} and after["metadata"]["generation"] == 1
    after["spec"]["tree"] = "u"
    del after["metadata"]["resourceVersion"]
    with pytest.raises(ApiException) as exc:
        custom.replace_namespaced_custom_object(
            "k8sco.io", "v1alpha1", "default", "pipelines", "p1", after
        )
    assert exc.value.status == 422
    assert error(exc.value)["message"] == (
        'Pipeline.k8sco.io "p1" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be '
        "specified for an update"
    )
    with pytest.raises(ApiException) as exc:
        custom.create_namespaced_custom_object(
            "k8sco.io",
            "v1alpha1",
            "default",
            "pipelines",
            {**body, "metadata": {"name": "p2"}, "spec": {"retries": "x"}},
        )
    assert (
        exc.value.status == 422
        and "spec.retries in body must be of type integer" in error(exc.value)["message"]
    )
    # Strategic merge patches are refused for custom resources.
    code, body = raw(
        fake_cluster,
        "PATCH",
        "/apis/k8sco.io/v1alpha1/namespaces/default/pipelines/p1",
        {"spec": {}},
        "application/strategic-merge-patch+json",
    )
    assert (code, body["reason"]) == (415, "UnsupportedMediaType")


def test_a_status_write_after_a_schema_change_prunes_the_fields_it_no_longer_declares(
    fake_cluster: FakeCluster, k8s_client: client.ApiClient
) -> None:
    """The fake skips re-checking what a patch leaves alone only when the stored object was
    written under the schema in force; kube-apiserver prunes a custom resource by its
    current schema when it reads it from storage (unstructuredSchemaCoercer), so a spec
    field the CRD dropped is gone after the next write."""
    ext = client.ApiextensionsV1Api(k8s_client)
    ext.create_custom_resource_definition(CRD)
    custom = client.CustomObjectsApi(k8s_client)
    body = {
        "apiVersion": "k8sco.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "p1"},
        "spec": {"tree": "t", "retries": 2},
    }
    custom.create_namespaced_custom_object("k8sco.io", "v1alpha1", "default", "pipelines", body)
    write = {"status": {"phase": "Running"}}
    custom.patch_namespaced_custom_object_status(
        "k8sco.io", "v1alpha1", "default", "pipelines", "p1", write
    )
    crd = ext.read_custom_resource_definition("pipelines.k8sco.io").to_dict()
    narrower = json.loads(json.dumps(CRD))
    props = narrower["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    del props["spec"]["properties"]["retries"]
    narrower["metadata"]["resourceVersion"] = crd["metadata"]["resource_version"]
    ext.replace_custom_resource_definition("pipelines.k8sco.io", narrower)
    write = {"status": {"phase": "Succeeded"}}
    after = custom.patch_namespaced_custom_object_status(
        "k8sco.io", "v1alpha1", "default", "pipelines", "p1", write
    )
    assert after["status"]["phase"] == "Succeeded"
    assert after["spec"] == {"tree": "t"}


def test_finalizers_and_deletion_timestamp(k8s_client: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s_client)
    cm = configmap("f")
    cm["metadata"]["finalizers"] = ["example.com/hold"]
    core.create_namespaced_config_map("default", cm)
    deleting = core.delete_namespaced_config_map("f", "default")
    assert deleting["metadata"]["deletionTimestamp"]  # deferred: the object comes back
    still = core.read_namespaced_config_map("f", "default")
    with pytest.raises(ApiException) as exc:
        core.patch_namespaced_config_map(
            "f", "default", {"metadata": {"finalizers": ["example.com/hold", "b"]}}
        )
    assert exc.value.status == 422
    core.patch_namespaced_config_map("f", "default", {"metadata": {"finalizers": None}})
    assert still.metadata.deletion_timestamp is not None
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_config_map("f", "default")
    assert exc.value.status == 404


def owned_configmap(name: str, owner: dict, block: bool = True) -> dict:
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "blockOwnerDeletion": block,
    }
    return {"metadata": {"name": name, "ownerReferences": [ref]}}


@pytest.mark.parametrize("policy", ["Background", "Foreground", "Orphan"])
def test_garbage_collection(
    fake_cluster: FakeCluster, k8s_client: client.ApiClient, policy: str
) -> None:
    core = client.CoreV1Api(k8s_client)
    owner = k8s_client.sanitize_for_serialization(
        core.create_namespaced_config_map("default", configmap("owner"))
    )
    core.create_namespaced_config_map("default", owned_configmap("child", owner))
    core.delete_namespaced_config_map("owner", "default", propagation_policy=policy)
    names = lambda: {c["metadata"]["name"] for c in fake_cluster.objects("configmaps", "default")}  # noqa: E731
    if policy == "Orphan":
        fake_cluster.wait_for(lambda: names() == {"child"})
        assert (
            "ownerReferences" not in fake_cluster.get("configmaps", "child", "default")["metadata"]
        )
    else:
        fake_cluster.wait_for(lambda: names() == set())


def test_dependent_of_missing_owner_is_collected(
    fake_cluster: FakeCluster, k8s_client: client.ApiClient
) -> None:
    core = client.CoreV1Api(k8s_client)
    ghost = {"metadata": {"name": "ghost", "uid": "00000000-0000-0000-0000-000000000000"}}
    core.create_namespaced_config_map("default", owned_configmap("orphan", ghost))
    fake_cluster.wait_for(lambda: fake_cluster.get("configmaps", "orphan", "default") is None)


def test_namespace_deletion_empties_it(
    fake_cluster: FakeCluster, k8s_client: client.ApiClient
) -> None:
    core = client.CoreV1Api(k8s_client)
    core.create_namespace({"metadata": {"name": "temp"}})
    assert core.read_namespaced_service_account("default", "temp").metadata.name == "default"
    held = configmap("held")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    core.create_namespaced_config_map("temp", held)
    core.create_namespaced_config_map("temp", configmap("plain"))
    ns = core.delete_namespace("temp")
    assert ns["status"]["phase"] == "Terminating"
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map("temp", configmap("late"))
    assert exc.value.status == 403
    assert "because it is being terminated" in error(exc.value)["message"]
    names = lambda: [c["metadata"]["name"] for c in fake_cluster.objects("configmaps", "temp")]  # noqa: E731
    fake_cluster.wait_for(lambda: names() == ["held"])
    assert fake_cluster.get("namespaces", "temp") is not None  # waits for the finalizer
    core.patch_namespaced_config_map("held", "temp", {"metadata": {"finalizers": None}})
    fake_cluster.wait_for(lambda: fake_cluster.get("namespaces", "temp") is None)


def test_status_subresource_split(k8s_client: client.ApiClient) -> None:
    batch = client.BatchV1Api(k8s_client)
    job = {
        "metadata": {"name": "s", "labels": {"keep": "me"}},
        "spec": {
            "managedBy": "example.com/other",  # the simulated controller leaves it alone
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "i:1", "command": ["true"]}],
                }
            },
        },
        "status": {"succeeded": 5},
    }
    created = batch.create_namespaced_job("default", job)
    assert created.status.succeeded is None  # status is cleared on create
    patched = batch.patch_namespaced_job_status(
        "s",
        "default",
        {"metadata": {"labels": {"keep": "no"}}, "status": {"active": 0, "ready": 3}},
    )
    assert patched.status.ready == 3 and patched.metadata.labels["keep"] == "me"
    main = batch.patch_namespaced_job(
        "s", "default", {"status": {"ready": 9}, "spec": {"parallelism": 2}}
    )
    assert main.status.ready == 3 and main.spec.parallelism == 2 and main.metadata.generation == 2


def test_job_validation_messages(k8s_client: client.ApiClient) -> None:
    batch = client.BatchV1Api(k8s_client)
    template = {"spec": {"containers": [{"name": "c", "image": "i:1"}]}}
    with pytest.raises(ApiException) as exc:
        batch.create_namespaced_job(
            "default", {"metadata": {"name": "bad"}, "spec": {"template": template}}
        )
    assert exc.value.status == 422
    assert error(exc.value)["message"] == (
        'Job.batch "bad" is invalid: spec.template.spec.restartPolicy: Required value: '
        'valid values: "OnFailure", "Never"'
    )
    long_name = "j" * 64
    template["spec"]["restartPolicy"] = "Never"
    with pytest.raises(ApiException) as exc:
        batch.create_namespaced_job(
            "default", {"metadata": {"name": long_name}, "spec": {"template": template}}
        )
    assert error(exc.value)["message"] == (
        f'Job.batch "{long_name}" is invalid: spec.template.labels: Invalid value: '
        f'"{long_name}": must be no more than 63 characters'
    )


def test_job_defaults_and_labels(k8s_client: client.ApiClient) -> None:
    batch = client.BatchV1Api(k8s_client)
    template = {
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "c", "image": "i:1", "command": ["true"]}],
        }
    }
    job = batch.create_namespaced_job(
        "default", {"metadata": {"name": "d"}, "spec": {"suspend": True, "template": template}}
    )
    spec = job.spec
    assert (spec.backoff_limit, spec.completions, spec.parallelism) == (6, 1, 1)
    assert (
        spec.pod_replacement_policy == "TerminatingOrFailed"
        and spec.completion_mode == "NonIndexed"
    )
    uid = job.metadata.uid
    assert spec.selector.match_labels == {"batch.kubernetes.io/controller-uid": uid}
    assert spec.template.metadata.labels == {
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": "d",
        "controller-uid": uid,
        "job-name": "d",
    }
    assert job.metadata.labels == spec.template.metadata.labels


def test_cluster_scoped_and_unknown_paths(
    fake_cluster: FakeCluster, k8s_client: client.ApiClient
) -> None:
    rbac = client.RbacAuthorizationV1Api(k8s_client)
    rbac.create_cluster_role(
        {
            "metadata": {"name": "r"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
        }
    )
    names = [r.metadata.name for r in rbac.list_cluster_role().items]
    assert "r" in names and "cluster-admin" in names  # beside the bootstrap roles
    code, body = raw(fake_cluster, "GET", "/apis/nope.io/v1/things")
    assert (code, body["reason"]) == (404, "NotFound")
    coord = client.CoordinationV1Api(k8s_client)
    lease = {
        "metadata": {"name": "leader"},
        "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15},
    }
    created = coord.replace_namespaced_lease(
        "leader", "default", lease
    )  # leases allow create-on-update
    assert created.spec.holder_identity == "me"


def test_kubeconfig_loads_in_the_official_client(kubeconfig) -> None:
    import kubernetes

    api = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
    try:
        names = [n.metadata.name for n in client.CoreV1Api(api).list_namespace().items]
    finally:
        api.close()
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
