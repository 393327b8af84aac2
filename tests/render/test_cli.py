"""``k8sco render``: a YAML stream kubectl accepts, or nothing and exit 2 for bad input."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from kube_schemas import validate_k8s, validate_pipeline

from k8sco.cli.app import cli

PIPELINE = """
import k8sco as co

def my_pipeline(n: int = 2, image: str = "none") -> co.Serial:
    with co.Serial() as root:
        for i in range(n):
            co.Exec(f"echo {i} {image}", name=f"step {i}")
    return root

def bad_cpu() -> co.Serial:
    with co.Serial() as root:
        co.Exec("true", name="ok")
        co.Exec("true", name="bad", cpu="lots")
    return root

def root_volume() -> co.Serial:
    root = co.Serial()
    root["ok"] = co.Exec("true")
    host = {"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}
    root["hostpath"] = co.Exec("true", pod_spec=host)
    return root

def bad_patch() -> co.Serial:
    with co.Serial() as root:
        co.Exec("true", name="typo", pod_spec={"tolerations": [{"effekt": "NoSchedule"}]})
    return root
"""


@pytest.fixture
def pipeline_file(tmp_path: Path) -> Path:
    path = tmp_path / "flow_file.py"
    path.write_text(textwrap.dedent(PIPELINE))
    return path


def render(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["render", *args])
    return result.exit_code, result.stdout, result.stderr


def test_stream_with_defaults(pipeline_file: Path) -> None:
    code, out, err = render(f"{pipeline_file}:my_pipeline", "--n=3")
    assert code == 0, err
    docs = list(yaml.safe_load_all(out))
    assert [d["kind"] for d in docs] == ["Pipeline", "Job", "Job", "Job"]
    validate_pipeline(docs[0])
    for doc in docs[1:]:
        validate_k8s(doc)
    assert docs[0]["metadata"] == {
        "name": "my-pipeline",
        "namespace": "default",
        "labels": {"app.kubernetes.io/managed-by": "k8sco"},
    }
    assert docs[3]["metadata"]["annotations"]["k8sco.io/path"] == "/step 2"


def test_name_namespace_image_and_function_arguments(pipeline_file: Path) -> None:
    code, out, err = render(
        f"{pipeline_file}:my_pipeline",
        "--name",
        "nightly",
        "-n",
        "team-a",
        "--image",
        "repo/app:7",
        "--",
        "--image=arg",
    )
    assert code == 0, err
    docs = list(yaml.safe_load_all(out))
    assert docs[0]["metadata"]["name"] == "nightly"
    assert docs[0]["spec"]["image"] == "repo/app:7"
    job = docs[1]
    assert job["metadata"]["namespace"] == "team-a"
    assert job["metadata"]["labels"]["k8sco.io/pipeline"] == "nightly"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "repo/app:7"
    assert container["command"] == ["/bin/sh", "-c", "echo 0 arg"]


def test_pipeline_only(pipeline_file: Path) -> None:
    code, out, _ = render(f"{pipeline_file}:my_pipeline", "--pipeline-only")
    assert code == 0
    assert [d["kind"] for d in yaml.safe_load_all(out)] == ["Pipeline"]


@pytest.mark.parametrize(
    ("target", "extra", "message"),
    [
        ("bad_cpu", (), r"/bad: parameter 'cpu' must be a number or a Kubernetes quantity"),
        ("root_volume", (), r"/hostpath: the pod would not pass Pod Security 'restricted'"),
        ("bad_patch", (), r"/typo: parameter 'pod_spec': tolerations\[0\]\.effekt: unknown field"),
        ("my_pipeline", ("--name", "Not_Valid"), r"pipeline name 'Not_Valid' is not valid"),
        ("my_pipeline", ("--name", "x" * 64), r"at most 63"),
        ("my_pipeline", ("-n", "Bad NS"), r"namespace 'Bad NS' is not valid"),
    ],
)
def test_bad_input_prints_nothing_and_exits_2(
    pipeline_file: Path, target: str, extra: tuple[str, ...], message: str
) -> None:
    code, out, err = render(f"{pipeline_file}:{target}", *extra)
    assert code == 2
    assert out == ""
    assert err.startswith("k8sco: ")
    assert re.search(message, err), err


def test_as_a_process(pipeline_file: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "k8sco", "render", f"{pipeline_file}:my_pipeline", "--n=1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("---\napiVersion: k8sco.io/v1alpha1\nkind: Pipeline\n")
