"""Golden YAML: ``k8sco render`` of every example, and of a tree that uses every feature the
renderer knows, compared byte for byte with tests/golden/ (K8SCO_REGEN_GOLDEN=1 rewrites
them). Every object in them is also checked: Jobs against Kubernetes, the Pipeline against
the CRD."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from kube_schemas import REPO, golden, validate_k8s, validate_pipeline

import k8sco as co
from k8sco.cli.app import cli
from k8sco.render import dump_all, render_all

GOLDEN = REPO / "tests" / "golden"
EXAMPLES = sorted((REPO / "examples").glob("*.py"))


def check_stream(text: str) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(text) if d]
    assert docs[0]["kind"] == "Pipeline"
    validate_pipeline(docs[0])
    for doc in docs[1:]:
        assert doc["kind"] == "Job"
        validate_k8s(doc)
    return docs


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_examples(example: Path) -> None:
    result = CliRunner().invoke(cli, ["render", str(example)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    check_stream(result.stdout)
    golden(GOLDEN / f"{example.stem}.yaml", result.stdout)


def feature_tree() -> co.Serial:
    with co.Serial(
        env={"LOG_LEVEL": "debug"},
        pod_spec={"nodeSelector": {"pool": "batch"}, "priorityClassName": "batch-low"},
        retries=1,
    ) as root:
        co.Exec("set -e\necho 'multi-line'\nexit 0", name="shell: multi-line")
        # A native-function node's command, written out: a function defined here would be
        # named after this test module, which depends on how pytest imports it.
        co.Exec(
            ["k8sco", "call", "flows/edge.py:edge", "--n=3", "--names=a b,c\\,d", "--flag"],
            name="native",
            cpu=2,
            mem=0.25,
        )
        with co.Parallel(name="Resources & Limits", max_time="90m"):
            co.Exec(["nvidia-smi", "-L"], name="gpu", gpu=1, cpu="1500m", mem="3Gi")
            co.Exec("true", name="Ünïcode 日本語", image=co.Image(image="alpine:3.20"))
            co.Exec("true", name="UNICODE 日本語")
        co.Exec(
            "apt-get update",
            name="as root",
            run_as_root=True,
            image="debian:12",
            # Outside "restricted" (an NFS volume), inside "baseline" as run_as_root must be.
            pod_spec={
                "volumes": [{"name": "cache", "nfs": {"server": "cache.internal", "path": "/c"}}]
            },
        )
        co.Exec(
            "cat /secrets/token",
            name="with secret",
            pod_spec={
                "volumes": [{"name": "s", "secret": {"secretName": "token"}}],
                "containers": [
                    {"name": "main", "volumeMounts": [{"name": "s", "mountPath": "/secrets"}]}
                ],
                "tolerations": [{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}],
            },
        )
        co.Exec("echo never", name="skipped", skip=True)
    return root


def test_feature_tree() -> None:
    text = dump_all(render_all(feature_tree(), "features", "team-a", uid="0b7c-uid"))
    docs = check_stream(text)
    assert len(docs) == 1 + 7  # the skipped node has no Job
    golden(GOLDEN / "features.yaml", text)
