"""Nodes in real containers: ``k8sco run --docker``, and the DockerRunner of the fake cluster.

The images are built by k8sco from a pipeline directory (``copy_dir`` and a ``reqs_py``
requirement) with a real Docker engine (the ``engine`` fixture skips loudly without one).
The fake cluster driven end to end with these images is in ``tests/e2e/test_images.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import kubernetes
import pytest
from fakecluster import FakeCluster
from fakecluster.dockerrunner import DockerRunner

from k8sco.containers.build import Builder
from k8sco.containers.run import remove_containers
from k8sco.image import Image

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PRIMES = "[2, 3, 5, 7, 11, 13, 17, 19, 23, 29]"
IMAGE = Image(copy_dir=".", reqs_py=["six==1.16.0"], name="run-primes")
PIPELINE = """\
import os
import socket

import k8sco as co
from primes import seive

IMAGE = co.Image(copy_dir=".", reqs_py=["six==1.16.0"], name="run-primes")


def inside() -> dict:
    \"\"\"What a node sees in its container.\"\"\"
    import six  # installed in the image by reqs_py, not on the client

    def cgroup(v2: str, v1: str) -> str:
        for path in ("/sys/fs/cgroup/" + v2, "/sys/fs/cgroup/" + v1):
            if os.path.exists(path):
                with open(path) as f:
                    return f.read().split()[0]
        return "?"

    return {
        "uid": os.getuid(),
        "cwd": os.getcwd(),
        "six": six.__version__,
        "env": [os.environ.get(k) for k in ("K8SCO_PIPELINE", "K8SCO_NODE_PATH", "GREETING")],
        "interfaces": sorted(name for _, name in socket.if_nameindex()),
        "mem": cgroup("memory.max", "memory/memory.limit_in_bytes"),
        "cpu": cgroup("cpu.max", "cpu/cpu.cfs_quota_us"),
    }


def pipeline() -> co.Serial:
    with co.Serial(image=IMAGE) as root:
        co.Exec(seive, 30).set(name="seive")
        co.Exec(inside).set(name="inside", env={"GREETING": "hi"}, cpu=0.5, mem="256Mi")
        co.Exec(inside).set(name="online", network=True)
    return root


def failing() -> co.Serial:
    with co.Serial(image=IMAGE) as root:
        co.Exec("echo about to fail; exit 3", name="bad")
        co.Exec("echo never", name="never")
    return root


def hanging() -> co.Parallel:
    with co.Parallel(image=IMAGE) as root:
        co.Exec("sleep 300", name="slow", max_time=1)
        co.Exec("sleep 300", name="hang")
    return root


def one_hanging() -> co.Parallel:
    with co.Parallel(image=IMAGE) as root:
        co.Exec("sleep 300", name="hang")
    return root


def images(ref: str) -> co.Serial:
    with co.Serial() as root:
        co.Exec("python -c 'import six; print(six.__version__)'", name="given", image=ref)
        co.Exec("id -u", name="root", image=ref, run_as_root=True)
        co.Exec(seive, 20).set(name="default")
    return root
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "primes.py").write_text((REPO / "examples" / "primes.py").read_text())
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    return tmp_path


@pytest.fixture
def build_env(builder: Builder) -> dict[str, str]:
    env = {**os.environ, "K8SCO_BASE_IMAGE": builder.settings.base_image}
    if builder.settings.ca_bundle:
        env["K8SCO_BUILD_CA_BUNDLE"] = builder.settings.ca_bundle
    return env


@pytest.fixture
def k8sco(
    project: Path, build_env: dict[str, str]
) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "k8sco", *args],
            cwd=project,
            env=build_env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    return run


def run_id(project: Path) -> str | None:
    """The id of the project's only local run, once it has started."""
    runs = project / ".k8sco" / "runs"
    found = [p.name for p in runs.iterdir() if not p.is_symlink()] if runs.is_dir() else []
    return found[0] if len(found) == 1 else None


def containers(engine: docker.DockerClient, run: str) -> dict[str, str]:
    """The containers of a local run still in the engine: node path -> status. One list call
    (the low-level API): the high-level list inspects each container afterwards, which fails
    for one removed in between."""
    found = engine.api.containers(all=True, filters={"label": f"k8sco.io/run={run}"})
    return {c["Labels"]["k8sco.io/node-path"]: c["State"] for c in found}


def wait_until(predicate: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {predicate}"
        time.sleep(0.1)
    return value


def test_run_docker_runs_each_node_in_its_image(
    project: Path,
    k8sco: Callable[..., subprocess.CompletedProcess[str]],
    engine: docker.DockerClient,
) -> None:
    result = k8sco("run", "--docker", "pipeline.py:pipeline")
    assert result.returncode == 0, result.stdout + result.stderr
    run = run_id(project)
    assert run is not None and f"run {run}: done" in result.stdout and "(3 done)" in result.stdout
    assert k8sco("logs", "/seive").stdout.strip() == PRIMES
    inside = json.loads(k8sco("logs", "/inside").stdout)
    assert inside == {
        "uid": 1000,
        "cwd": "/app",
        "six": "1.16.0",  # the image's own requirement
        "env": [run, "/inside", "hi"],
        "interfaces": ["lo"],  # no network
        "mem": str(256 * 2**20),
        "cpu": "50000",  # of 100000 µs per period: half a core
    }
    online = json.loads(k8sco("logs", "/online").stdout)
    assert online["interfaces"] != ["lo"]  # network=True: the host's
    assert online["mem"] == str(2 * 2**30)  # the default mem, 2 GB
    assert "done" in k8sco("status").stdout.splitlines()[0]
    assert containers(engine, run) == {}


def test_a_failing_node_fails_the_run_as_in_process_mode(
    project: Path, k8sco: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    result = k8sco("run", "--docker", "pipeline.py:failing")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "exit code 3" in result.stdout and "about to fail" in result.stdout
    assert "has not run" in k8sco("logs", "/never").stderr


def test_a_failed_build_exits_2_before_any_node_runs(
    project: Path, k8sco: Callable[..., subprocess.CompletedProcess[str]], builder: Builder
) -> None:
    (project / "Dockerfile").write_text(
        f"FROM {builder.settings.base_image}\nRUN echo step-output && exit 7\n"
    )
    (project / "pipeline.py").write_text(
        PIPELINE.replace('co.Image(copy_dir=".", ', 'co.Image(dockerfile="Dockerfile", ')
    )
    result = k8sco("run", "--docker", "pipeline.py:pipeline")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "step-output" in result.stderr  # the build's output is shown
    assert "building image" in result.stderr and "failed" in result.stderr
    assert not (project / ".k8sco" / "runs").exists()  # no run started


def test_a_string_image_is_used_as_given_and_no_image_means_the_pipeline_directory(
    project: Path,
    k8sco: Callable[..., subprocess.CompletedProcess[str]],
    builder: Builder,
) -> None:
    ref = builder.build(IMAGE, str(project)).ref
    result = k8sco("run", "--docker", "pipeline.py:images", f"--ref={ref}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert k8sco("logs", "/given").stdout.strip() == "1.16.0"
    assert k8sco("logs", "/root").stdout.strip() == "0"  # as its Job's pod would
    assert k8sco("logs", "/default").stdout.strip() == "[2, 3, 5, 7, 11, 13, 17, 19]"


def test_max_time_and_ctrl_c_remove_the_containers(
    project: Path, build_env: dict[str, str], engine: docker.DockerClient
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "k8sco", "run", "--docker", "--plain", "pipeline.py:hanging"],
        cwd=project,
        env=build_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        run = wait_until(lambda: run_id(project))
        wait_until(lambda: containers(engine, run) == {"/slow": "running", "/hang": "running"})
        # /slow runs out of time (1 s, then 2 s of grace): its container goes, /hang's stays.
        wait_until(lambda: containers(engine, run) == {"/hang": "running"}, timeout=30)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # the test failed: leave nothing behind
            proc.kill()
            proc.communicate()
            if run_id(project):
                remove_containers({"k8sco.io/run": str(run_id(project))}, engine)
    assert proc.returncode == 130, out
    assert containers(engine, run) == {}
    status = subprocess.run(
        [sys.executable, "-m", "k8sco", "status"],
        cwd=project,
        env=build_env,
        capture_output=True,
        text=True,
    ).stdout
    assert "interrupted" in status.splitlines()[0]
    lines = {line.split()[0]: line for line in status.splitlines()[1:] if line.strip()}
    assert "error" in lines["slow"] and "max time exceeded (1s)" in lines["slow"]
    assert "killed" in lines["hang"]


def test_sigkill_of_the_runner_stops_its_containers(
    project: Path, build_env: dict[str, str], engine: docker.DockerClient
) -> None:
    # The guardian (k8sco/local/guardian.py) outlives the runner and kills every process
    # carrying the run's token: the containers' processes carry it too.
    # One node, seen running before the kill: a container the engine is still starting when
    # the runner dies may start after the guardian's last scan (see the README's note).
    proc = subprocess.Popen(
        [sys.executable, "-m", "k8sco", "run", "--docker", "--plain", "pipeline.py:one_hanging"],
        cwd=project,
        env=build_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    run = ""
    try:
        run = wait_until(lambda: run_id(project))
        wait_until(lambda: containers(engine, run).get("/hang") == "running")
        proc.kill()
        proc.wait(timeout=30)
        wait_until(lambda: "running" not in containers(engine, run).values(), timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if run:
            remove_containers({"k8sco.io/run": run}, engine)


# --- the fake cluster's DockerRunner ---------------------------------------------------------


@pytest.fixture
def runner(engine: docker.DockerClient) -> Iterator[DockerRunner]:
    with DockerRunner() as runner:
        yield runner


@pytest.fixture
def docker_cluster(
    runner: DockerRunner, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FakeCluster]:
    logs = tmp_path_factory.mktemp("pod-logs")
    with FakeCluster(runner=runner, log_dir=str(logs)) as fake:
        runner.bind(fake)
        yield fake
    assert not fake.internal_errors, "\n".join(fake.internal_errors)


def pod_containers(engine: docker.DockerClient, runner: DockerRunner, pod: str) -> list[Any]:
    labels = [f"{k}={v}" for k, v in runner.labels.items()] + [f"io.kubernetes.pod.name={pod}"]
    return list(engine.containers.list(all=True, filters={"label": labels}))


def pod(name: str, image: str, script: str, **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": image, "command": ["/bin/sh", "-c", script]}
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"restartPolicy": "Never", "containers": [container], **spec},
    }


def pod_log(fake: FakeCluster, name: str) -> str:
    """The pod's log as the kubelet wrote it (also before it starts and after it is gone)."""
    return "".join(p.read_text() for p in fake.log_dir.glob(f"default_{name}_*_main.*.log"))


def phase(fake: FakeCluster, name: str) -> str | None:
    found = fake.get("pods", name, "default")
    value = (found or {}).get("status", {}).get("phase")
    return value if value in ("Succeeded", "Failed") else None


SHOW = (  # one line each: uid, gid, working dir, $GREETING, network interfaces, memory limit
    'id -u; id -g; pwd; echo "$GREETING"; '
    "tail -n +3 /proc/net/dev | cut -d: -f1 | xargs | tr ' ' ,; "
    "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || true"
)


def test_the_docker_runner_runs_a_pod_as_its_spec_says(
    docker_cluster: FakeCluster,
    runner: DockerRunner,
    builder: Builder,
    project: Path,
    engine: docker.DockerClient,
) -> None:
    ref = builder.build(IMAGE, str(project)).ref
    docker_cluster.create(
        pod(
            "limited",
            ref,
            SHOW,
            securityContext={"runAsUser": 1234, "runAsGroup": 2345},
            container={
                "env": [{"name": "GREETING", "value": "hello"}],
                "workingDir": "/tmp",
                "resources": {"limits": {"cpu": "250m", "memory": "128Mi"}},
            },
        )
    )
    docker_cluster.create(pod("plain", ref, SHOW + "; exit 4", hostNetwork=True))
    assert docker_cluster.wait_for(lambda: phase(docker_cluster, "limited"), 60) == "Succeeded"
    limited = pod_log(docker_cluster, "limited").splitlines()
    assert limited == ["1234", "2345", "/tmp", "hello", "lo", str(128 * 2**20)]
    assert docker_cluster.wait_for(lambda: phase(docker_cluster, "plain"), 60) == "Failed"
    uid, gid, cwd, greeting, interfaces, _ = pod_log(docker_cluster, "plain").splitlines()
    assert (uid, gid, cwd, greeting) == ("1000", "1000", "/app", "")  # the image's defaults
    assert interfaces != "lo"  # hostNetwork: the host's
    status = docker_cluster.get("pods", "plain", "default")
    assert status is not None
    state = status["status"]["containerStatuses"][0]["state"]["terminated"]
    assert state["exitCode"] == 4 and state["containerID"].startswith("docker://")
    assert pod_containers(engine, runner, "plain") == []


def test_deleting_a_pod_sends_sigterm_to_its_container(
    docker_cluster: FakeCluster,
    runner: DockerRunner,
    builder: Builder,
    project: Path,
    engine: docker.DockerClient,
) -> None:
    ref = builder.build(IMAGE, str(project)).ref
    script = "trap 'echo got TERM; exit 0' TERM; echo started; sleep 300 & wait"
    docker_cluster.create(pod("stopped", ref, script))
    docker_cluster.wait_for(lambda: "started" in pod_log(docker_cluster, "stopped"), 60)
    started = time.monotonic()
    with docker_cluster.api_client() as api:
        kubernetes.client.CoreV1Api(api).delete_namespaced_pod("stopped", "default")
    docker_cluster.wait_for(lambda: docker_cluster.get("pods", "stopped", "default") is None, 30)
    assert time.monotonic() - started < 3  # SIGTERM ended it, not the SIGKILL after the grace
    assert "got TERM" in pod_log(docker_cluster, "stopped")
    wait_until(lambda: not pod_containers(engine, runner, "stopped"), timeout=10)
