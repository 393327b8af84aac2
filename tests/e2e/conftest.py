"""The end-to-end suite's cluster: the fake one by default, a real one when asked.

- By default a :class:`fakecluster.FakeCluster` starts, ``kubectl apply -f manifests/``
  installs k8sco into it, and ``k8sco controller`` runs as a separate process (so tests can
  SIGKILL it). Pods run as local processes with ``/app`` mapped to a directory holding the
  examples and ``tests/e2e/pipelines``.
- With ``K8SCO_E2E_KUBECONFIG`` set, the same tests run against that cluster, where
  k8sco is installed (``kubectl apply -f manifests/``) and its controller runs in-cluster;
  ``K8SCO_E2E_IMAGE`` names an image with k8sco and those files at ``/app``
  (``tests/e2e/Dockerfile``). Tests that need the fake (fault injection, killing the
  controller process) are skipped there, saying so.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fakecluster import FakeCluster
from fakecluster.fixtures import Kubectl

REPO = Path(__file__).resolve().parents[2]
PIPELINES = Path(__file__).resolve().parent / "pipelines"
K8SCO = [sys.executable, "-m", "k8sco"]
SYSTEM_NAMESPACE = "k8sco-system"


@dataclass
class ControllerProcess:
    """``k8sco controller`` as a child process of the suite (fake cluster only)."""

    kubeconfig: Path
    namespace: str
    log: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [
                *K8SCO,
                "controller",
                "--kubeconfig",
                str(self.kubeconfig),
                "-n",
                self.namespace,
                "--identity",
                "e2e-controller",  # the same identity takes its own Lease back at once
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**self.env, "K8SCO_LOG_LEVEL": "DEBUG"},
        )
        out.close()

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, as when a node or a pod dies."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Target:
    """The cluster under test and how to drive it."""

    kubeconfig: Path
    namespace: str
    image: str
    kubectl: Kubectl
    env: dict[str, str]
    fake: FakeCluster | None = None
    controller: ControllerProcess | None = None
    names: set[str] = field(default_factory=set)

    @property
    def real(self) -> bool:
        return self.fake is None

    def name(self, prefix: str) -> str:
        """A pipeline name not used before in this session."""
        name = f"{prefix}-{secrets.token_hex(3)}"
        self.names.add(name)
        return name

    def k8sco(
        self, *args: str, timeout: float = 120, kubeconfig: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the k8sco CLI against this cluster, from the repository's root."""
        cmd = [*K8SCO, *args, "--kubeconfig", str(kubeconfig or self.kubeconfig)]
        if args[0] in ("apply", "list", "status", "logs", "rerun", "stop", "delete"):
            cmd += ["-n", self.namespace]
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=self.env, cwd=REPO
        )

    def apply(self, target: str, name: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.k8sco(
            "apply",
            target,
            "--name",
            name,
            "--image",
            self.image,
            "--controller",
            "cluster",
            *extra,
        )

    def get(self, kind: str, name: str) -> dict[str, Any]:
        import json

        out = self.kubectl("get", kind, name, "-n", self.namespace, "-o", "json")
        data: dict[str, Any] = json.loads(out.stdout)
        return data

    def jobs(self, pipeline: str) -> list[dict[str, Any]]:
        import json

        out = self.kubectl(
            "get", "jobs", "-n", self.namespace, "-l", f"k8sco.io/pipeline={pipeline}", "-o", "json"
        )
        items: list[dict[str, Any]] = json.loads(out.stdout)["items"]
        return items

    def pods(self, pipeline: str) -> list[dict[str, Any]]:
        import json

        out = self.kubectl(
            "get", "pods", "-n", self.namespace, "-l", f"k8sco.io/pipeline={pipeline}", "-o", "json"
        )
        items: list[dict[str, Any]] = json.loads(out.stdout)["items"]
        return items


def wait_for(predicate: Callable[[], Any], timeout: float = 60, every: float = 0.2) -> Any:
    """Poll until ``predicate()`` is truthy; its value. Fails the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
        time.sleep(every)


def create_namespace(kubectl: Kubectl, namespace: str) -> None:
    """A namespace whose pods must pass Pod Security "restricted", as users' should."""
    kubectl(
        "apply",
        "-f",
        "-",
        input=(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n"
            f"  name: {namespace}\n  labels:\n"
            "    pod-security.kubernetes.io/enforce: restricted\n"
        ),
    )


def _code_dir(base: Path) -> Path:
    """What /app holds in the e2e image: the examples and the e2e pipelines, side by side."""
    code = base / "app"
    code.mkdir()
    for source in (REPO / "examples", PIPELINES):
        for path in source.glob("*.py"):
            shutil.copy(path, code / path.name)
    return code


@pytest.fixture(scope="session")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    base = tmp_path_factory.mktemp("e2e")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    real = os.environ.get("K8SCO_E2E_KUBECONFIG")
    if real:
        kubeconfig = Path(real)
        kubectl = Kubectl(kubeconfig, base / "kube-cache")
        image = os.environ.get("K8SCO_E2E_IMAGE", "")
        if not image:
            pytest.fail("set K8SCO_E2E_IMAGE to the e2e image scripts/e2e-image.sh printed")
        namespace = f"k8sco-e2e-{secrets.token_hex(3)}"
        create_namespace(kubectl, namespace)
        yield Target(kubeconfig, namespace, image, kubectl, env)
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        return
    code = _code_dir(base)
    # The e2e image is tagged :latest, so the kubelet pulls it (imagePullPolicy Always): the
    # fake's registry must hold it, as a real cluster's registry would.
    with FakeCluster(
        path_map={"/app": str(code)},
        base_env=env,
        log_dir=str(base / "pod-logs"),
        registry_images=frozenset({"k8sco-e2e:latest"}),
    ) as fake:
        kubeconfig = base / "kubeconfig"
        fake.write_kubeconfig(kubeconfig)
        kubectl = Kubectl(kubeconfig, base / "kube-cache")
        kubectl("apply", "-f", str(REPO / "manifests"))
        namespace = "k8sco-e2e"
        create_namespace(kubectl, namespace)
        controller = ControllerProcess(kubeconfig, namespace, base / "controller.log", env)
        controller.start()
        # `apply --controller auto` finds the controller by its Lease: have one before the
        # first test, as an installed controller would.
        wait_for(
            lambda: fake.get("leases.coordination.k8s.io", "k8sco-controller", SYSTEM_NAMESPACE)
        )
        # Not ":latest", whose imagePullPolicy defaults to Always (the fake pulls it too).
        t = Target(kubeconfig, namespace, "k8sco-e2e:fake", kubectl, env, fake, controller)
        try:
            yield t
        finally:
            controller.stop()
        assert not fake.internal_errors, "\n".join(fake.internal_errors)


@pytest.fixture
def fake_only(target: Target) -> FakeCluster:
    """The fake cluster; the test is skipped against a real one (it needs the fake's hooks)."""
    if target.fake is None:
        pytest.skip("needs the fake cluster's fault injection or a controller process to kill")
    return target.fake
