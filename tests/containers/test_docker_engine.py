"""The builder, run.py and distribution against a real Docker engine (see conftest.py)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import docker
import pytest
from click.testing import CliRunner

from k8sco.cli.build import build as build_command
from k8sco.containers import distribute, run
from k8sco.containers.build import Builder, BuildResult
from k8sco.containers.engine import connect
from k8sco.containers.progress import StreamDisplay
from k8sco.errors import BuildError, RunError
from k8sco.image import Image

pytestmark = pytest.mark.slow

IMAGE = Image(copy_dir=".", reqs_py=["six==1.16.0"], name="test-primes")


def run_in(ref: str, *argv: str, **kw: object) -> tuple[int, str]:
    out = io.BytesIO()
    code = run.run(run.ContainerSpec(ref, argv, **kw), out)  # type: ignore[arg-type]
    return code, out.getvalue().decode()


def layers(client: docker.DockerClient, ref: str) -> list[str]:
    return list(client.api.inspect_image(ref)["RootFS"]["Layers"])


def history_ids(client: docker.DockerClient, ref: str) -> list[str]:
    return [str(h["Id"]) for h in client.api.history(ref)]  # newest first


def test_image_runs_a_native_function_as_non_root(builder: Builder, pipeline_dir: Path) -> None:
    result = builder.build(IMAGE, str(pipeline_dir))
    assert result.ref.startswith("k8sco-test-primes:")
    code, out = run_in(result.ref, "k8sco", "call", "primes.py:seive", "--n=30")
    assert (code, out) == (0, "2 3 5 7 11 13 17 19 23 29 six 1.16.0\n")
    code, out = run_in(result.ref, "/bin/sh", "-c", "id -u; pwd; ls -A")
    assert code == 0
    uid, cwd, *files = out.split()
    assert (uid, cwd) == ("1000", "/app")
    assert sorted(files) == ["pipeline.py", "primes.py"]  # no .k8sco/
    config = builder.client.api.inspect_image(result.ref)["Config"]
    assert config["User"] == "1000:1000" and config["WorkingDir"] == "/app"


def test_unchanged_inputs_build_nothing(builder: Builder, pipeline_dir: Path) -> None:
    first = builder.build(IMAGE, str(pipeline_dir))
    images_before = {i.id for i in builder.client.images.list(all=True)}
    again = builder.build(IMAGE, str(pipeline_dir))
    assert not again.built
    assert (again.ref, again.image_id) == (first.ref, first.image_id)
    assert {i.id for i in builder.client.images.list(all=True)} == images_before
    # Run state and bytecode caches are not inputs.
    (pipeline_dir / ".k8sco" / "state").write_text("changed")
    (pipeline_dir / "__pycache__").mkdir()
    (pipeline_dir / "__pycache__" / "primes.cpython-311.pyc").write_bytes(b"\0")
    assert builder.build(IMAGE, str(pipeline_dir)).image_id == first.image_id


def test_a_code_change_rebuilds_only_the_code_layer(builder: Builder, pipeline_dir: Path) -> None:
    before = builder.build(IMAGE, str(pipeline_dir))
    primes = pipeline_dir / "primes.py"
    # Unique per run: an image of the same code built by an earlier run would be reused.
    primes.write_text(primes.read_text().replace('"six"', '"six!"') + f"# {uuid.uuid4()}\n")
    after = builder.build(IMAGE, str(pipeline_dir))
    assert after.built and after.ref != before.ref
    old, new = layers(builder.client, before.ref), layers(builder.client, after.ref)
    assert len(old) == len(new) and old[:-1] == new[:-1] and old[-1] != new[-1]
    old_h, new_h = history_ids(builder.client, before.ref), history_ids(builder.client, after.ref)
    assert old_h[1:] == new_h[1:] and old_h[0] != new_h[0]  # every step but COPY was cached
    code, out = run_in(after.ref, "k8sco", "call", "primes.py:seive", "--n=10")
    assert (code, out) == (0, "2 3 5 7 six! 1.16.0\n")
    builder.client.api.remove_image(after.ref)  # unique to this run: do not pile them up


def test_a_dockerfile_image_gets_k8sco_and_the_code_on_top(
    builder: Builder, pipeline_dir: Path, base_image: str
) -> None:
    (pipeline_dir / "docker").mkdir()
    (pipeline_dir / "docker" / "Dockerfile").write_text(
        f"FROM {base_image}\nARG GREETING\nRUN echo $GREETING > /greeting\n"
    )
    image = Image(
        dockerfile="docker/Dockerfile",
        docker_build_args={"GREETING": "hello"},
        copy_dir=".",
        name="test-dockerfile",
    )
    result = builder.build(image, str(pipeline_dir))
    code, out = run_in(result.ref, "/bin/sh", "-c", "cat /greeting; id -u")
    assert (code, out) == (0, "hello\n1000\n")
    changed = Image(**{**image.to_dict(), "docker_build_args": {"GREETING": "bye"}})
    assert builder.build(changed, str(pipeline_dir)).ref != result.ref


def test_a_failing_build_raises_build_error_with_the_log_tail(
    builder: Builder, pipeline_dir: Path, base_image: str
) -> None:
    (pipeline_dir / "Dockerfile").write_text(
        f"FROM {base_image}\nRUN echo about to fail && exit 3\n"
    )
    with pytest.raises(BuildError) as info:
        builder.build(Image(dockerfile="Dockerfile", name="test-fails"), str(pipeline_dir))
    assert info.value.exit_code == 2
    assert "returned a non-zero code: 3" in str(info.value)
    assert "about to fail" in str(info.value)


def test_a_missing_base_image_says_what_to_do(builder: Builder, pipeline_dir: Path) -> None:
    image = Image(image="localhost:1/k8sco-no-such-base:1", copy_dir=".")
    with pytest.raises(BuildError, match="K8SCO_BASE_IMAGE"):
        builder.build(image, str(pipeline_dir))


def test_run_passes_env_limits_and_exit_code(builder: Builder, pipeline_dir: Path) -> None:
    ref = builder.build(IMAGE, str(pipeline_dir)).ref
    spec = run.ContainerSpec(
        ref,
        ("/bin/sh", "-c", 'echo "$GREETING"; echo err >&2; ls /sys/class/net; exit 7'),
        env={"GREETING": "hi there"},
        cpu=0.5,
        mem=256 * 2**20,
        labels={"k8sco.io/test": (label := f"limits-{uuid.uuid4()}")},
    )
    out = io.BytesIO()
    with run.ContainerRun(spec, out, builder.client) as container:
        container.start()
        assert container.wait() == 7
        assert container.container is not None
        host = builder.client.api.inspect_container(container.container.id)["HostConfig"]
    # stdout and stderr, as they came (their relative order is not kept); no network but lo.
    assert sorted(out.getvalue().decode().splitlines()) == ["err", "hi there", "lo"]
    assert (host["NanoCpus"], host["Memory"], host["NetworkMode"]) == (5 * 10**8, 2**28, "none")
    assert host["CapDrop"] == ["ALL"]
    # Removed; the label is unique, as another test session may share the engine.
    assert not builder.client.containers.list(all=True, filters={"label": f"k8sco.io/test={label}"})


def test_run_with_network_uses_the_hosts(builder: Builder, pipeline_dir: Path) -> None:
    ref = builder.build(IMAGE, str(pipeline_dir)).ref
    code, out = run_in(ref, "ls", "/sys/class/net", network=True)
    assert code == 0 and set(out.split()) > {"lo"}


def test_node_spec_follows_the_node(pipeline_dir: Path) -> None:
    import k8sco as co

    node = co.Exec("echo $A", env={"A": "1"}, cpu="500m", mem=0.5, network=True)
    spec = run.node_spec(node, "img:1", env={"K8SCO_NODE_PATH": "/x"})
    assert spec.argv == ("/bin/sh", "-c", "echo $A")
    assert spec.env == {"A": "1", "K8SCO_NODE_PATH": "/x"}
    assert (spec.cpu, spec.mem, spec.network, spec.workdir) == (0.5, 2**29, True, "/app")
    assert run.ContainerSpec.from_json(spec.to_json()) == spec


def test_kill_stops_a_running_container(builder: Builder, pipeline_dir: Path) -> None:
    ref = builder.build(IMAGE, str(pipeline_dir)).ref
    out = io.BytesIO()
    with run.ContainerRun(run.ContainerSpec(ref, ("sleep", "300")), out, builder.client) as c:
        c.start()
        with pytest.raises(TimeoutError):
            c.wait(timeout=1)
        c.kill(grace=0)
        assert c.wait() == 137  # SIGKILL: sleep ignores nothing, but grace 0 sends KILL


def test_the_shim_process_streams_output_and_forwards_sigterm(
    builder: Builder, pipeline_dir: Path
) -> None:
    ref = builder.build(IMAGE, str(pipeline_dir)).ref
    spec = run.ContainerSpec(ref, ("k8sco", "call", "primes.py:seive", "--n=8"))
    proc = subprocess.run(run.shim_argv(spec), capture_output=True, check=False)
    assert (proc.returncode, proc.stdout) == (0, b"2 3 5 7 six 1.16.0\n")

    label = {"k8sco.io/test": f"shim-{uuid.uuid4()}"}
    spec = run.ContainerSpec(ref, ("sh", "-c", "echo started; exec sleep 300"), labels=label)
    with subprocess.Popen(run.shim_argv(spec), stdout=subprocess.PIPE) as shim:
        assert shim.stdout is not None
        assert shim.stdout.readline() == b"started\n"
        shim.send_signal(signal.SIGTERM)
        assert shim.wait() in (137, 143)
    assert run.remove_containers(label, builder.client) == 0  # the shim removed it


def test_a_push_that_fails_raises_build_error(builder: Builder, pipeline_dir: Path) -> None:
    result: BuildResult = builder.build(IMAGE, str(pipeline_dir))
    ref = "localhost:1/" + result.ref  # nothing listens there (loopback only)
    builder.client.api.tag(result.image_id, ref.rpartition(":")[0], tag=result.ref.split(":")[1])
    try:
        assert distribute.decide(ref) == "push"
        assert not distribute.pushed(builder.client, ref)
        with pytest.raises(BuildError, match="pushing localhost:1/"):
            distribute.push(builder.client, ref, StreamDisplay(quiet=True))
    finally:
        builder.client.api.remove_image(ref)


def test_k8sco_build_prints_the_final_references(
    builder: Builder, pipeline_dir: Path, base_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(pipeline_dir)
    monkeypatch.setenv("K8SCO_BASE_IMAGE", base_image)
    monkeypatch.setenv("K8SCO_BUILD_CA_BUNDLE", builder.settings.ca_bundle or "")
    monkeypatch.setenv("KUBECONFIG", str(pipeline_dir / "no-kubeconfig"))
    args = ["pipeline.py:pipeline", "--quiet"]
    first = CliRunner().invoke(build_command, args, catch_exceptions=False)
    second = CliRunner().invoke(build_command, args, catch_exceptions=False)
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    ref = second.output.split()[0]
    assert ref.startswith("k8sco-test-primes:")
    assert second.output == f"{ref}  up to date  (/seive, /whoami)\n"
    assert first.output.split()[0] == ref


def test_no_engine_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no.sock")
    with pytest.raises(BuildError, match=r"no Docker engine answers.*docker-setup\.sh"):
        connect(BuildError)
    with pytest.raises(RunError):
        run.run(run.ContainerSpec("x:1", ("true",)), io.BytesIO())


def test_shim_usage(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "k8sco.containers.run"], capture_output=True, check=False
    )
    assert proc.returncode == 2 and b"usage" in proc.stderr
    assert json.loads(run.ContainerSpec("a:1", ("x",)).to_json())["argv"] == ["x"]
    assert os.path.basename(run.shim_argv(run.ContainerSpec("a:1", ("x",)))[0]).startswith("py")
