"""The pure side of co.data on a cluster: settings, layout, and what a Job gets."""

from __future__ import annotations

import pytest

import k8sco as co
from k8sco.data.kube import DataConfig, decorate_job
from k8sco.errors import DataError
from k8sco.render.jobs import render_job


def _job() -> dict[str, object]:
    root = co.Serial()
    root["a"] = co.Exec("echo", env={"KEEP": "1"})
    return render_job(root, "/a", "demo", "team-a", image="img:1", owner_uid="u-1")


def _container(job: dict[str, object]) -> dict[str, object]:
    return job["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index,no-any-return]


def test_s3_jobs_get_urls_and_settings_never_credentials() -> None:
    env = {
        "K8SCO_DATA_STORE": "s3://bkt/root/",
        "K8SCO_S3_ENDPOINT": "http://minio:9000",
        "AWS_SECRET_ACCESS_KEY": "s3cr3t",
        "K8SCO_DATA_SECRET": "team-keys",
    }
    config = DataConfig.from_env(env)
    assert config is not None
    job = _job()
    out = decorate_job(job, config, "team-a", "u-1")
    container = _container(out)
    values = {e["name"]: e.get("value") for e in container["env"]}  # type: ignore[attr-defined]
    assert values["K8SCO_DATA_PIPELINE"] == "s3://bkt/root/team-a/pipelines/u-1/data"
    assert values["K8SCO_DATA_USER"] == "s3://bkt/root/team-a/user"
    assert values["K8SCO_S3_ENDPOINT"] == "http://minio:9000"
    assert values["KEEP"] == "1"  # the node's own variables stay
    assert "s3cr3t" not in repr(out) and "AWS_SECRET_ACCESS_KEY" not in repr(out)
    assert container["envFrom"] == [{"secretRef": {"name": "team-keys", "optional": True}}]
    assert "envFrom" not in _container(job)  # the input is not changed


def test_a_configured_user_scope_is_shared_across_namespaces() -> None:
    config = DataConfig.from_env({"K8SCO_DATA_STORE": "s3://bkt", "K8SCO_DATA_USER": "ml"})
    assert config is not None
    assert config.job_env("a", "u")["K8SCO_DATA_USER"] == "s3://bkt/users/ml"
    assert config.job_env("b", "u")["K8SCO_DATA_USER"] == "s3://bkt/users/ml"


def test_pvc_jobs_mount_the_claim() -> None:
    config = DataConfig.from_env({"K8SCO_DATA_STORE": "pvc:data", "K8SCO_S3_ENDPOINT": "x"})
    assert config is not None
    out = decorate_job(_job(), config, "team-a", "u-1")
    pod = out["spec"]["template"]["spec"]
    assert pod["volumes"] == [
        {"name": "k8sco-data", "persistentVolumeClaim": {"claimName": "data"}}
    ]
    container = pod["containers"][0]
    assert container["volumeMounts"] == [{"name": "k8sco-data", "mountPath": "/k8sco/data"}]
    values = {e["name"]: e.get("value") for e in container["env"]}
    assert values["K8SCO_DATA_PIPELINE"] == "/k8sco/data/pipelines/u-1/data"
    assert "K8SCO_S3_ENDPOINT" not in values and "envFrom" not in container


@pytest.mark.parametrize(
    "env, match",
    [
        ({"K8SCO_DATA_STORE": "gs://x"}, "s3://bucket/prefix or pvc:CLAIM"),
        ({"K8SCO_DATA_STORE": "pvc:"}, "pvc:CLAIM"),
        ({"K8SCO_DATA_STORE": "pvc:x", "K8SCO_DATA_PVC_MOUNT": "rel"}, "absolute"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], match: str) -> None:
    with pytest.raises(DataError, match=match):
        DataConfig.from_env(env)


def test_no_store_configured() -> None:
    assert DataConfig.from_env({}) is None
