"""The real kubectl against the fake: tables, describe, logs, apply, delete."""

from __future__ import annotations

import json
import subprocess
import time

import yaml

from .cluster import FakeCluster
from .fixtures import Kubectl
from .test_api import CRD
from .test_jobs import finished, job

MANIFESTS = """
apiVersion: v1
kind: Namespace
metadata: {name: k8sco-system}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: k8sco, namespace: k8sco-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: k8sco, namespace: k8sco-system}
rules:
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: k8sco, namespace: k8sco-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: k8sco}
subjects:
- {kind: ServiceAccount, name: k8sco, namespace: k8sco-system}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: k8sco-controller, namespace: k8sco-system}
spec:
  replicas: 1
  selector: {matchLabels: {app: k8sco}}
  template:
    metadata: {labels: {app: k8sco}}
    spec:
      serviceAccountName: k8sco
      containers:
      - {name: controller, image: k8sco:dev, args: [controller]}
---
"""


def rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.strip().splitlines()]


def test_get_jobs_and_pods_print_server_columns(
    fake_cluster: FakeCluster, kubectl: Kubectl
) -> None:
    fake_cluster.create(job("hello", "echo hi"))
    fake_cluster.wait_for(lambda: finished(fake_cluster, "hello"))
    table = rows(kubectl("get", "jobs").stdout)
    assert table[0] == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert table[1][:3] == ["hello", "Complete", "1/1"]
    table = rows(kubectl("get", "pods").stdout)
    assert table[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert table[1][0].startswith("hello-") and table[1][1:4] == ["0/1", "Completed", "0"]
    wide = rows(kubectl("get", "jobs", "-o", "wide").stdout)
    assert wide[0][-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"] and wide[1][-3:-1] == [
        "main",
        "busybox:1.36",
    ]


def test_logs_of_a_job(fake_cluster: FakeCluster, kubectl: Kubectl) -> None:
    fake_cluster.create(job("hello", "echo hi"))
    fake_cluster.wait_for(lambda: finished(fake_cluster, "hello"))
    assert kubectl("logs", "job/hello").stdout == "hi\n"


def test_logs_follow_streams_until_exit(fake_cluster: FakeCluster, kubectl: Kubectl) -> None:
    fake_cluster.create(job("ticker", "for i in 1 2 3; do echo tick $i; sleep 0.3; done"))
    fake_cluster.wait_for(
        lambda: any(
            p["status"].get("phase") == "Running" for p in fake_cluster.objects("pods", "default")
        )
    )
    started = time.monotonic()
    out = kubectl("logs", "-f", "job/ticker").stdout
    assert out == "tick 1\ntick 2\ntick 3\n"
    assert time.monotonic() - started < 5


def test_describe_job_shows_pod_statuses_and_events(
    fake_cluster: FakeCluster, kubectl: Kubectl
) -> None:
    fake_cluster.create(job("hello", "echo hi"))
    fake_cluster.wait_for(lambda: finished(fake_cluster, "hello"))
    out = kubectl("describe", "job", "hello").stdout
    assert "Pods Statuses:    0 Active (0 Ready) / 1 Succeeded / 0 Failed" in out
    assert "SuccessfulCreate" in out and "Created pod: hello-" in out
    assert "Normal  Completed" in out and "Job completed" in out


def test_crd_then_get_pipelines_prints_printer_columns(
    fake_cluster: FakeCluster, kubectl: Kubectl
) -> None:
    kubectl("apply", "-f", "-", input=yaml.safe_dump(CRD))
    pipeline = {
        "apiVersion": "k8sco.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "demo"},
        "spec": {"tree": "x"},
    }
    kubectl("apply", "-f", "-", input=json.dumps(pipeline))
    kubectl(
        "patch",
        "pipeline",
        "demo",
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"phase":"Running","progress":"3/7"}}',
    )
    table = rows(kubectl("get", "pipelines").stdout)
    assert table[0] == ["NAME", "PHASE", "PROGRESS", "AGE"]
    assert table[1][:3] == ["demo", "Running", "3/7"]
    assert rows(kubectl("get", "pl").stdout)[1][0] == "demo"  # shortNames come from discovery
    # Strategic merge (kubectl's default patch type) is refused for custom resources.
    refused = kubectl("patch", "pipeline", "demo", "-p", '{"spec":{"tree":"y"}}', check=False)
    assert refused.returncode == 1
    unsupported = "is not supported by k8sco.io/v1alpha1, Kind=Pipeline"
    assert f"application/strategic-merge-patch+json {unsupported}" in refused.stderr
    kubectl("delete", "crd", "pipelines.k8sco.io")
    fake_cluster.wait_for(
        lambda: fake_cluster.resources.lookup("k8sco.io", "v1alpha1", "pipelines") is None
    )
    assert fake_cluster.store.objects(("k8sco.io", "pipelines")) == []


def test_apply_multi_document_manifest(fake_cluster: FakeCluster, kubectl: Kubectl) -> None:
    crd = "---\n" + yaml.safe_dump(CRD)
    out = kubectl("apply", "-f", "-", input=MANIFESTS + crd).stdout
    assert out.splitlines() == [
        "namespace/k8sco-system created",
        "serviceaccount/k8sco created",
        "role.rbac.authorization.k8s.io/k8sco created",
        "rolebinding.rbac.authorization.k8s.io/k8sco created",
        "deployment.apps/k8sco-controller created",
        "customresourcedefinition.apiextensions.k8s.io/pipelines.k8sco.io created",
    ]
    again = kubectl(
        "apply", "-f", "-", input=MANIFESTS.replace("replicas: 1", "replicas: 2") + crd
    ).stdout
    assert (
        "deployment.apps/k8sco-controller configured" in again
        and "serviceaccount/k8sco unchanged" in again
    )
    deployment = fake_cluster.get("deployments.apps", "k8sco-controller", "k8sco-system")
    assert deployment["spec"]["replicas"] == 2 and deployment["metadata"]["generation"] == 2
    names = kubectl("get", "role,rolebinding,sa", "-n", "k8sco-system", "-o", "name").stdout.split()
    assert names == [
        "role.rbac.authorization.k8s.io/k8sco",
        "rolebinding.rbac.authorization.k8s.io/k8sco",
        "serviceaccount/default",
        "serviceaccount/k8sco",
    ]


def test_kubectl_delete_job_cascades_in_background(
    fake_cluster: FakeCluster, kubectl: Kubectl
) -> None:
    fake_cluster.create(job("long", "exec sleep 30"))
    fake_cluster.wait_for(
        lambda: any(
            p["status"].get("phase") == "Running" for p in fake_cluster.objects("pods", "default")
        )
    )
    assert kubectl("delete", "job", "long").stdout.strip() == 'job.batch "long" deleted'
    fake_cluster.wait_for(lambda: fake_cluster.objects("pods", "default") == [])


def test_validation_error_reaches_kubectl(kubectl: Kubectl) -> None:
    bad = job("bad", "true")
    del bad["spec"]["template"]["spec"]["restartPolicy"]
    result = kubectl("apply", "-f", "-", input=json.dumps(bad), check=False)
    assert result.returncode == 1
    assert (
        'spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"'
        in result.stderr
    )


def test_module_entry_point(tmp_path) -> None:
    config = tmp_path / "kubeconfig"
    proc = subprocess.Popen(
        ["python", "-m", "tests.fakecluster", "--port", "0", "--kubeconfig", str(config)],
        cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]),
        stdout=subprocess.PIPE,
        text=True,
        executable=__import__("sys").executable,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("fakecluster serving on http://127.0.0.1:")
        out = Kubectl(config, tmp_path / "cache")("get", "namespaces", "-o", "name").stdout.split()
        assert "namespace/default" in out
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        proc.stdout.close()  # type: ignore[union-attr]


def test_server_side_apply_label_and_wait(fake_cluster: FakeCluster, kubectl: Kubectl) -> None:
    out = kubectl(
        "apply", "--server-side", "-f", "-", input=json.dumps(job("ssa", "echo ok"))
    ).stdout
    assert out.strip() == "job.batch/ssa serverside-applied"
    managers = [
        m["manager"]
        for m in fake_cluster.get("jobs.batch", "ssa", "default")["metadata"]["managedFields"]
    ]
    assert managers == ["kubectl"]
    kubectl("wait", "--for=condition=complete", "job/ssa", "--timeout=10s")
    kubectl("label", "job", "ssa", "team=a")
    assert kubectl("get", "jobs", "-l", "team=a", "-o", "name").stdout.split() == ["job.batch/ssa"]


def test_get_watch_prints_table_rows(fake_cluster: FakeCluster, kubectl: Kubectl) -> None:
    fake_cluster.create(job("w", "echo hi"))
    fake_cluster.wait_for(lambda: finished(fake_cluster, "w"))
    out = kubectl("get", "jobs", "-w", "--request-timeout=1s", check=False).stdout
    assert rows(out)[0] == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert rows(out)[1][:3] == ["w", "Complete", "1/1"]
