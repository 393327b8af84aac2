"""co.data and log archives on the fake cluster, with the controller in this process.

S3: nodes of a Pipeline exchange data through ``co.data.pipeline`` (shell commands calling
``conducto-data-pipeline``), each finished Job's log lands in the store, the Pipeline's
``k8sco.io/job-retention`` then deletes the Jobs and ``k8sco logs`` reads the archive; deleting
the Pipeline deletes its data (the finalizer) and no credential is in a Job's literal env.

PVC: the Jobs mount the claim and nodes exchange files through it. The fake kubelet runs pods
as local processes and does not model volumes, so the mount path is a host directory (the
identity mapping): what is tested is the Jobs' volume and env, and the nodes' use of them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from fakecluster import FakeCluster

import k8sco as co
from k8sco.data.kube import (
    ANNOTATION_ARCHIVED,
    ANNOTATION_JOB_RETENTION,
    ANNOTATION_STORE,
    FINALIZER,
    DataConfig,
)
from k8sco.data.stores import open_store
from k8sco.errors import NotFound
from k8sco.kube import pipelines
from k8sco.kube.client import Cluster
from k8sco.kube.controller import Controller
from k8sco.render.names import job_name
from k8sco.render.pipeline import render_pipeline

from .conftest import KEYS

REPO = Path(__file__).resolve().parents[2]
BIN = str(Path(sys.executable).parent)


def _tree() -> co.Serial:
    root = co.Serial()
    root["produce"] = co.Exec(
        "echo produced-line; printf hello | conducto-data-pipeline puts shared"
    )
    root["consume"] = co.Exec(
        'test "$(conducto-data-pipeline gets shared)" = hello && echo consumed-ok'
        " && echo x | k8sco-data-user puts seen"
    )
    return root


def _run(ctl: Controller) -> threading.Thread:
    thread = threading.Thread(target=ctl.run, daemon=True)
    thread.start()
    return thread


def _phase(client: Cluster, name: str) -> Any:
    return (pipelines.get(client, name).get("status") or {}).get("phase")


def test_s3_data_logs_retention_and_deletion(
    fake: tuple[FakeCluster, Cluster, Path],
    s3_env: dict[str, str],
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster, client, kubeconfig = fake
    for k, v in s3_env.items():  # the controller's own settings and credentials
        monkeypatch.setenv(k, v)
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "k8sco-data", "namespace": "default"},
            "stringData": KEYS,
        }
    )
    config = DataConfig.from_env(
        {
            "K8SCO_DATA_STORE": f"s3://{bucket}/k8sco",
            "K8SCO_S3_ENDPOINT": s3_env["K8SCO_S3_ENDPOINT"],
        }
    )
    assert config is not None
    obj = render_pipeline(_tree(), "demo", "default", image="img:1")
    obj["metadata"].setdefault("annotations", {})[ANNOTATION_JOB_RETENTION] = "0"
    pipelines.create(client, obj)
    ctl = Controller(client, "default", data=config)
    thread = _run(ctl)
    seen_jobs: dict[str, dict[str, Any]] = {}
    try:

        def finished_and_collected() -> bool:
            for job in cluster.objects("jobs.batch", "default"):
                seen_jobs[job["metadata"]["name"]] = job
            return _phase(client, "demo") == "Succeeded"

        cluster.wait_for(finished_and_collected, timeout=60)
        assert _phase(client, "demo") == "Succeeded", pipelines.get(client, "demo")["status"]
        uid = pipelines.get(client, "demo")["metadata"]["uid"]
        root = f"s3://{bucket}/k8sco/default/pipelines/{uid}"
        store = open_store(root, s3_env)
        assert store.gets("data/shared") == b"hello"
        # The user scope is the namespace's.
        assert open_store(f"s3://{bucket}/k8sco/default/user", s3_env).exists("seen")
        # Retention 0: each Job is deleted once recorded and archived, never before.
        cluster.wait_for(lambda: not cluster.objects("jobs.batch", "default"), timeout=60)
        produce = job_name("demo", "/produce")
        [produce_log] = store.list(f"logs/{produce}/")
        assert b"produced-line" in store.gets(produce_log)
        [consume_log] = store.list(f"logs/{job_name('demo', '/consume')}/")
        assert b"consumed-ok" in store.gets(consume_log)
        meta = pipelines.get(client, "demo")["metadata"]
        assert FINALIZER in meta["finalizers"]
        assert meta["annotations"][ANNOTATION_STORE] == root
        # No credential in any Job: the store's address in env, the keys through envFrom.
        assert seen_jobs
        for job in seen_jobs.values():
            container = job["spec"]["template"]["spec"]["containers"][0]
            text = repr(container.get("env"))
            assert KEYS["AWS_SECRET_ACCESS_KEY"] not in text and "AWS_" not in text
            assert container["envFrom"] == [{"secretRef": {"name": "k8sco-data", "optional": True}}]
        # `k8sco logs` of a node whose pod (and Job) is gone reads the archive.
        logs = subprocess.run(
            [
                sys.executable,
                "-m",
                "k8sco",
                "logs",
                "demo",
                "/produce",
                "--kubeconfig",
                str(kubeconfig),
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**os.environ, **s3_env},
            timeout=120,
        )
        assert logs.returncode == 0, logs.stderr
        assert "produced-line" in logs.stdout
        # Deleting the Pipeline deletes its data and logs, then the object goes.
        path = client.ns_path("/apis/k8sco.io/v1alpha1", "pipelines", "default") + "/demo"
        client.request("DELETE", path)

        def gone() -> bool:
            try:
                client.request("GET", path)
            except NotFound:
                return True
            return False

        cluster.wait_for(gone, timeout=60)
        assert store.list("") == []
    finally:
        ctl.stop.set()
        thread.join(timeout=10)


def test_a_finished_job_is_deleted_only_after_its_log_is_archived(
    fake: tuple[FakeCluster, Cluster, Path],
    s3_env: dict[str, str],
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a store reachable the archive cannot be written: the Jobs stay (the log is
    not lost), though the Pipeline asks for retention 0."""
    cluster, client, _ = fake
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    monkeypatch.setenv("K8SCO_S3_ENDPOINT", "http://127.0.0.1:9")  # nothing listens
    config = DataConfig.from_env({"K8SCO_DATA_STORE": f"s3://{bucket}/k8sco"})
    assert config is not None
    root = co.Serial()
    root["a"] = co.Exec("echo a")
    obj = render_pipeline(root, "keep", "default", image="img:1")
    obj["metadata"].setdefault("annotations", {})[ANNOTATION_JOB_RETENTION] = "0"
    pipelines.create(client, obj)
    ctl = Controller(client, "default", data=config)
    thread = _run(ctl)
    try:
        cluster.wait_for(lambda: _phase(client, "keep") in ("Succeeded", "Failed"), timeout=60)
        assert ctl.archive is not None
        ctl.archive.drain(timeout=30)
        jobs = cluster.objects("jobs.batch", "default")
        assert [j["metadata"]["name"] for j in jobs] == [job_name("keep", "/a")]
        assert ANNOTATION_ARCHIVED not in (jobs[0]["metadata"].get("annotations") or {})
    finally:
        ctl.stop.set()
        thread.join(timeout=10)


def test_pvc_store_mounts_the_claim_and_nodes_share_it(
    fake: tuple[FakeCluster, Cluster, Path], tmp_path: Path
) -> None:
    cluster, client, _ = fake
    mount = tmp_path / "volume"  # where the claim would be mounted; the fake runs pods here
    mount.mkdir()
    config = DataConfig.from_env(
        {"K8SCO_DATA_STORE": "pvc:shared-data", "K8SCO_DATA_PVC_MOUNT": str(mount)}
    )
    assert config is not None
    pipelines.create(client, render_pipeline(_tree(), "vol", "default", image="img:1"))
    ctl = Controller(client, "default", data=config)
    thread = _run(ctl)
    try:
        cluster.wait_for(lambda: _phase(client, "vol") in ("Succeeded", "Failed"), timeout=60)
        assert _phase(client, "vol") == "Succeeded", pipelines.get(client, "vol")["status"]
        uid = pipelines.get(client, "vol")["metadata"]["uid"]
        assert (mount / "pipelines" / uid / "data" / "shared").read_bytes() == b"hello"
        assert (mount / "user" / "seen").exists()
        job = cluster.get("jobs.batch", job_name("vol", "/produce"), "default")
        pod = job["spec"]["template"]["spec"]
        assert {"name": "k8sco-data", "persistentVolumeClaim": {"claimName": "shared-data"}} in pod[
            "volumes"
        ]
        assert pod["containers"][0]["volumeMounts"] == [
            {"name": "k8sco-data", "mountPath": str(mount)}
        ]
        # No finalizer: the controller cannot reach a claim mounted in the namespace only.
        assert FINALIZER not in (pipelines.get(client, "vol")["metadata"].get("finalizers") or [])
    finally:
        ctl.stop.set()
        thread.join(timeout=10)


def test_a_rerun_archives_the_failed_jobs_log_before_deleting_it(
    fake: tuple[FakeCluster, Cluster, Path],
    s3_env: dict[str, str],
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """No archive workers and no log followers: only the controller's own
    archive-before-delete can have saved the first run's log, deleted by the rerun."""
    cluster, client, _ = fake
    for k, v in s3_env.items():
        monkeypatch.setenv(k, v)
    # A follower would stream the second run's log into chunks of its own (kube/archive.py)
    monkeypatch.setenv("K8SCO_LOG_FOLLOW", "0")
    config = DataConfig.from_env({"K8SCO_DATA_STORE": f"s3://{bucket}/k8sco"})
    assert config is not None
    mark = tmp_path / "ran-once"
    root = co.Serial()
    root["flaky"] = co.Exec(
        f"if [ -e {mark} ]; then echo second-run; else touch {mark}; echo first-run; exit 1; fi"
    )
    pipelines.create(client, render_pipeline(root, "re", "default", image="img:1"))
    ctl = Controller(client, "default", data=config)
    assert ctl.archive is not None
    ctl.archive.workers = 0
    thread = _run(ctl)
    name = job_name("re", "/flaky")
    try:
        cluster.wait_for(lambda: _phase(client, "re") == "Failed", timeout=60)
        first = cluster.get("jobs.batch", name, "default")["metadata"]["uid"]
        pipelines.rerun(client, "re")
        cluster.wait_for(lambda: _phase(client, "re") == "Succeeded", timeout=60)
        uid = pipelines.get(client, "re")["metadata"]["uid"]
        store = open_store(f"s3://{bucket}/k8sco/default/pipelines/{uid}", s3_env)
        [only] = store.list(f"logs/{name}/")
        assert only.endswith(f"-{first}.log")
        assert b"first-run" in store.gets(only)
    finally:
        ctl.stop.set()
        thread.join(timeout=10)
