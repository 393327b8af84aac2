"""``k8sco status PIPELINE`` on the fake cluster shows each node's doc, after its Job."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from fakecluster import FakeCluster

import k8sco as co
from k8sco.cli.app import cli
from k8sco.kube import pipelines
from k8sco.kube.client import Cluster
from k8sco.render.crd import crd
from k8sco.render.names import job_name
from k8sco.render.pipeline import render_pipeline


def test_cluster_status_shows_the_first_line_of_each_nodes_doc(tmp_path: Path) -> None:
    root = co.Serial(doc="## Nightly\n\nEverything that runs at night.")
    root["a"] = a = co.Exec("echo hi")
    a.doc = "Says hi."
    root["b"] = co.Exec("echo bye")
    with FakeCluster() as fake:
        fake.create(crd())
        kubeconfig = tmp_path / "kubeconfig"
        fake.write_kubeconfig(kubeconfig)
        cluster = Cluster(str(kubeconfig))
        try:
            pipelines.create(cluster, render_pipeline(root, "docs", "default", image="x:1"))
        finally:
            cluster.close()
        result = CliRunner().invoke(
            cli, ["status", "docs", "--kubeconfig", str(kubeconfig)], catch_exceptions=False
        )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()[1:]
    assert lines[0].split()[:2] == ["/", "Serial"]
    assert lines[0].endswith("  -- Nightly")
    assert lines[1].endswith(f"job/{job_name('docs', '/a')}  -- Says hi.")
    assert lines[2].endswith(f"job/{job_name('docs', '/b')}")
