"""A co.Lazy pipeline whose generated nodes exchange data through ``co.data.pipeline``, and
``k8sco logs`` of a node whose pod is gone, end to end on the fake cluster with the S3 store.

The suite's shared controller has no data store, so this module installs k8sco into a fake
cluster of its own and runs ``k8sco controller`` as a separate process with
``K8SCO_DATA_STORE`` pointing at a moto server (tests/data_store/conftest.py says why moto).
The nodes' S3 credentials reach them only from the namespace's ``k8sco-data`` Secret.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest
from data_store.conftest import KEYS, _free_port, moto_server
from fakecluster import FakeCluster
from fakecluster.fixtures import Kubectl

from k8sco.data.kube import ANNOTATION_ARCHIVED, ANNOTATION_STORE
from k8sco.data.s3 import S3Store
from k8sco.data.stores import open_store
from k8sco.render.names import job_name

from .conftest import (
    REPO,
    SYSTEM_NAMESPACE,
    ControllerProcess,
    Target,
    _code_dir,
    create_namespace,
    wait_for,
)

PIPES = "tests/e2e/pipelines/lazy_data.py"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A moto S3 server over HTTP and a fresh bucket: the settings of a client of it."""
    server = moto_server()
    if server is None:
        pytest.skip("no moto_server: run scripts/test.sh once (it makes .venv-s3)")
    port = _free_port()
    proc = subprocess.Popen(
        [server, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {"K8SCO_S3_ENDPOINT": f"http://127.0.0.1:{port}", **KEYS}
    try:
        wait_for(lambda: _answers(env["K8SCO_S3_ENDPOINT"]) or proc.poll() is not None)
        assert proc.poll() is None, "moto_server exited"
        bucket = f"e2e-{secrets.token_hex(4)}"
        S3Store.from_url(f"s3://{bucket}/", env).create_bucket()
        yield {**env, "K8SCO_DATA_STORE": f"s3://{bucket}/k8sco"}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url + "/moto-api/", timeout=2).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def data_target(s3: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    if os.environ.get("K8SCO_E2E_KUBECONFIG"):
        pytest.skip("needs a controller process configured with the test's S3 server")
    base = tmp_path_factory.mktemp("e2e-data")
    # Pods get the store's address from their Job and the keys from the Secret only.
    clean = {k: v for k, v in os.environ.items() if k not in (*KEYS, *s3)}
    env = {**clean, "PYTHONPATH": str(REPO)}
    env["PATH"] = f"{os.path.dirname(sys.executable)}:{env.get('PATH', '')}"
    with FakeCluster(
        path_map={"/app": str(_code_dir(base))}, base_env=env, log_dir=str(base / "pod-logs")
    ) as fake:
        kubeconfig = base / "kubeconfig"
        fake.write_kubeconfig(kubeconfig)
        kubectl = Kubectl(kubeconfig, base / "kube-cache")
        kubectl("apply", "-f", str(REPO / "manifests"))
        namespace = "k8sco-e2e-data"
        create_namespace(kubectl, namespace)
        fake.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "k8sco-data", "namespace": namespace},
                "stringData": KEYS,
            }
        )
        # The controller's settings and its own credentials (its Deployment's Secret).
        controller = ControllerProcess(
            kubeconfig, namespace, base / "controller.log", {**env, **s3}
        )
        controller.start()
        wait_for(
            lambda: fake.get("leases.coordination.k8s.io", "k8sco-controller", SYSTEM_NAMESPACE)
        )
        # The CLI reads archived logs with the user's own S3 settings and credentials.
        cli_env = {**env, **{k: v for k, v in s3.items() if k != "K8SCO_DATA_STORE"}}
        t = Target(kubeconfig, namespace, "k8sco-e2e:fake", kubectl, cli_env, fake, controller)
        try:
            yield t
        finally:
            controller.stop()
        assert not fake.internal_errors, "\n".join(fake.internal_errors)


def test_generated_nodes_exchange_data_and_logs_outlive_their_pod(
    data_target: Target, s3: dict[str, str]
) -> None:
    target = data_target
    name = target.name("lazy-data")
    applied = target.apply(f"{PIPES}:exchange", name, "--wait")
    assert applied.returncode == 0, applied.stderr + applied.stdout
    assert "Succeeded (3/3)" in applied.stdout, applied.stdout

    get_path = "/l/Execute/get"
    logs = target.k8sco("logs", name, get_path)
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.strip() == "got forty-two"  # from the live pod

    pipeline = target.get("pipeline", name)
    root = pipeline["metadata"]["annotations"][ANNOTATION_STORE]
    assert open_store(root, s3).gets("data/shared/answer") == b"forty-two"

    job = job_name(name, get_path)

    def archived() -> bool:
        meta = target.get("job", job)["metadata"]
        return bool((meta.get("annotations") or {}).get(ANNOTATION_ARCHIVED))

    wait_for(archived, timeout=60)
    # The pod goes (pod GC, a quota clean-up); the finished Job stays and makes no other.
    target.kubectl("delete", "pods", "-n", target.namespace, "-l", f"job-name={job}")
    wait_for(
        lambda: not [p for p in target.pods(name) if p["metadata"]["labels"].get("job-name") == job]
    )
    after = target.k8sco("logs", name, get_path)
    assert after.returncode == 0, after.stderr
    assert after.stdout.strip() == "got forty-two"  # from the archive
