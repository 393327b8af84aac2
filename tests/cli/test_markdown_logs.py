"""``k8sco logs`` renders ``<ConductoMarkdown>`` blocks on a terminal and passes the node's
bytes through unchanged when piped: locally and from a pod on the (fake) cluster."""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakecluster import FakeCluster

import k8sco as co
from k8sco.cli import runs
from k8sco.cli.app import cli
from k8sco.cli.cluster import cluster_logs
from k8sco.kube import pipelines
from k8sco.kube.client import Cluster
from k8sco.kube.controller import Controller
from k8sco.render.crd import crd
from k8sco.render.pipeline import render_pipeline

RAW = b"plain\n<ConductoMarkdown>\n# Title\nsome **bold** text\n</ConductoMarkdown>\nafter\n"
PRINT = "printf '" + RAW.decode().replace("\n", "\\n") + "'"


class Stdout:
    """A stdout that is (or is not) a terminal, keeping the bytes written to it."""

    def __init__(self, tty: bool) -> None:
        self.buffer = io.BytesIO()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty

    def write(self, text: str) -> int:
        return self.buffer.write(text.encode())

    def flush(self) -> None:
        pass


def assert_rendered(data: bytes) -> None:
    text = data.decode()
    assert "<ConductoMarkdown>" not in text and "**bold**" not in text
    assert "\x1b[" in text  # styled by rich
    assert "Title" in text and "bold" in text
    assert text.startswith("plain\n") and text.endswith("after\n")


def test_local_logs_render_markdown_on_a_terminal_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "md.py").write_text(
        f"import k8sco as co\n\n\ndef pipeline() -> co.Serial:\n"
        f"    root = co.Serial()\n    root['md'] = co.Exec({PRINT!r})\n    return root\n"
    )
    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(cli, ["run", "md.py:pipeline"]).exit_code == 0
    piped = CliRunner().invoke(cli, ["logs", "/md"], catch_exceptions=False)
    assert piped.stdout_bytes == RAW
    for tty in (False, True):
        out = Stdout(tty)
        with monkeypatch.context() as patch:
            patch.setattr(sys, "stdout", out)
            runs.logs.callback(  # type: ignore[misc]
                args=("/md",),
                run_id=None,
                follow=False,
                kubeconfig=None,
                context=None,
                namespace=None,
            )
        if tty:
            assert_rendered(out.buffer.getvalue())
        else:
            assert out.buffer.getvalue() == RAW


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeCluster]:
    (tmp_path / "app").mkdir()
    with FakeCluster(
        log_dir=str(tmp_path / "logs"), path_map={"/app": str(tmp_path / "app")}
    ) as cluster:
        cluster.create(crd())
        yield cluster


def test_cluster_logs_render_markdown_on_a_terminal_only(
    fake: FakeCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = str(fake.write_kubeconfig(tmp_path / "kubeconfig"))
    cluster = Cluster(kubeconfig)
    root = co.Serial()
    root["md"] = co.Exec(PRINT)
    pipelines.create(cluster, render_pipeline(root, "md", "default", image="busybox:1.36"))
    controller = Controller(cluster, ["default"])
    thread = threading.Thread(target=controller.run, kwargs={"until_finished": True}, daemon=True)
    thread.start()
    try:
        thread.join(60)
        assert pipelines.get(cluster, "md")["status"]["phase"] == "Succeeded"
    finally:
        controller.stop.set()
        thread.join(10)
        cluster.close()
    for tty in (False, True):
        out = Stdout(tty)
        with monkeypatch.context() as patch:
            patch.setattr(sys, "stdout", out)
            cluster_logs("md", "/md", False, kubeconfig, None, None)
        if tty:
            assert_rendered(out.buffer.getvalue())
        else:
            assert out.buffer.getvalue() == RAW
