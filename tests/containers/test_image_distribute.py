"""Choosing between push, kind load and nothing; kind load's command; `k8sco build`'s helpers."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import k8sco as co
from k8sco.cli.build import images_of, result_lines
from k8sco.containers import distribute
from k8sco.containers.progress import StreamDisplay
from k8sco.errors import BuildError


@pytest.mark.parametrize(
    ("ref", "host"),
    [
        ("k8sco-app:1a2b", None),
        ("team/app:1", None),
        ("localhost/app:1", "localhost"),
        ("localhost:5000/app:1", "localhost:5000"),
        ("ghcr.io/me/app:1", "ghcr.io"),
    ],
)
def test_registry_host(ref: str, host: str | None) -> None:
    assert distribute.registry_host(ref) == host


@pytest.mark.parametrize(
    ("ref", "load", "context", "how"),
    [
        ("ghcr.io/me/app:1", "auto", "kind-dev", "push"),
        ("k8sco-app:1", "auto", "kind-dev", "kind"),
        ("k8sco-app:1", "auto", "prod", "none"),
        ("k8sco-app:1", "auto", None, "none"),
        ("k8sco-app:1", "kind", None, "kind"),
        ("k8sco-app:1", "none", "kind-dev", "none"),
    ],
)
def test_decide(ref: str, load: str, context: str | None, how: str) -> None:
    assert distribute.decide(ref, load, context) == how


def test_decide_rejects_unknown_modes() -> None:
    with pytest.raises(BuildError, match="--load 'minikube'"):
        distribute.decide("a:1", "minikube")


def test_kube_context_reads_the_first_kubeconfig(tmp_path: Path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("apiVersion: v1\nkind: Config\ncurrent-context: kind-dev\n")
    second.write_text("current-context: other\n")
    env = {"KUBECONFIG": f"{first}:{second}"}
    assert distribute.kube_context(env) == "kind-dev"
    assert distribute.kube_context({"KUBECONFIG": str(tmp_path / "missing")}) is None
    first.write_text(": not yaml : [")
    assert distribute.kube_context(env) is None


def test_kind_cluster_name() -> None:
    assert distribute.kind_cluster_name("kind-dev") == "dev"
    assert distribute.kind_cluster_name("kind-dev", "other") == "other"
    assert distribute.kind_cluster_name("prod") == "kind"


def quiet() -> StreamDisplay:
    return StreamDisplay(Console(file=io.StringIO()), quiet=True)


def test_kind_load_runs_kind_and_reports_failures() -> None:
    calls: list[list[str]] = []

    def fake_run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        code = 0 if len(calls) == 1 else 1
        return subprocess.CompletedProcess(argv, code, "", "ERROR: no nodes found\n")

    distribute.kind_load("k8sco-app:1", "dev", quiet(), run=fake_run, kind="/bin/kind")
    assert calls == [["/bin/kind", "load", "docker-image", "k8sco-app:1", "--name", "dev"]]
    with pytest.raises(BuildError, match="exited 1:\nERROR: no nodes found"):
        distribute.kind_load("k8sco-app:1", "dev", quiet(), run=fake_run, kind="/bin/kind")


def test_kind_load_without_kind_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(BuildError, match="needs the `kind` command"):
        distribute.kind_load("k8sco-app:1", "dev", quiet())


def test_images_of_lists_each_distinct_image_with_its_nodes() -> None:
    app = co.Image(copy_dir=".", name="app")
    with co.Serial(image=app) as root:
        co.Exec("a", name="a")
        with co.Parallel(name="p"):
            co.Exec("b", name="b", image=co.Image(copy_dir=".", name="app"))  # equal: same
            co.Exec("c", name="c", image=co.Image(name="other"))
            co.Exec("d", name="d", image="python:3.11")  # a reference: nothing to build
    found = images_of(root)
    assert list(found.values()) == [["/a", "/p/b"], ["/p/c"]]


def test_result_lines_align() -> None:
    lines = result_lines([("a:1", "built", "(/x)"), ("long-name:2", "up to date", "(/y)")])
    assert lines == ["a:1          built  (/x)", "long-name:2  up to date  (/y)"]
