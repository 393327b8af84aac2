"""One Exec node's Job: every field DESIGN.md §2 names, validated against Kubernetes."""

from __future__ import annotations

from typing import Any

import pytest
from kube_schemas import validate_k8s

import k8sco as co
from k8sco.errors import PipelineError
from k8sco.render import render_job
from k8sco.render.constants import DEFAULT_IMAGE
from k8sco.render.jobs import cpu_quantity, image_key, memory_quantity
from k8sco.render.podspec import restricted_violations


def square(n: int, scale: float = 1.0) -> None:
    """A native function for the tests (never called)."""


def job(root: co.Node, path: str, **kwargs: Any) -> dict[str, Any]:
    out = render_job(root, path, "pipe", "team-a", **kwargs)
    validate_k8s(out)
    return out


def pod(j: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = j["spec"]["template"]["spec"]
    return spec


def main(j: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = pod(j)["containers"][0]
    return container


def env(j: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in main(j)["env"]}


def test_shell_node() -> None:
    with co.Serial(env={"A": "1"}) as root:
        co.Exec("echo hi", name="hello world", env={"B": "2"})
    j = job(root, "/hello world", owner_uid="uid-1")
    meta = j["metadata"]
    assert meta["name"].startswith("pipe-hello-world-")
    assert meta["namespace"] == "team-a"
    labels = {"app.kubernetes.io/managed-by": "k8sco", "k8sco.io/pipeline": "pipe"}
    assert meta["labels"] == labels
    assert j["spec"]["template"]["metadata"]["labels"] == labels
    assert meta["annotations"] == {"k8sco.io/path": "/hello world"}
    assert j["spec"]["template"]["metadata"]["annotations"] == {"k8sco.io/path": "/hello world"}
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "k8sco.io/v1alpha1",
            "kind": "Pipeline",
            "name": "pipe",
            "uid": "uid-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert pod(j)["restartPolicy"] == "Never"
    assert len(pod(j)["containers"]) == 1
    assert main(j)["command"] == ["/bin/sh", "-c", "echo hi"]
    assert main(j)["workingDir"] == "/app"
    assert main(j)["image"] == DEFAULT_IMAGE
    assert env(j) == {
        "A": "1",
        "B": "2",
        "K8SCO_PIPELINE": "pipe",
        "K8SCO_NODE_PATH": "/hello world",
    }
    assert j["spec"]["backoffLimit"] == 0
    assert j["spec"]["activeDeadlineSeconds"] == 4 * 3600
    assert j["spec"]["podFailurePolicy"] == {
        "rules": [
            {
                "action": "Ignore",
                "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
            }
        ]
    }
    assert main(j)["resources"] == {
        "requests": {"cpu": "1", "memory": "2Gi"},
        "limits": {"memory": "2Gi"},
    }


def test_no_owner_reference_without_a_uid() -> None:
    root = co.Serial()
    root["a"] = co.Exec("true")
    assert "ownerReferences" not in job(root, "/a")["metadata"]


def test_argv_and_native_commands_run_as_they_are() -> None:
    root = co.Parallel()
    root["argv"] = co.Exec(["python", "-c", "print('x y')"])
    root["native"] = co.Exec(square, 3, scale=0.5)
    assert main(job(root, "/argv"))["command"] == ["python", "-c", "print('x y')"]
    command = main(job(root, "/native"))["command"]
    assert command[:2] == ["k8sco", "call"]
    assert command[2].endswith(":square")
    assert command == root["native"].command  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("cpu", "expected"),
    [(1, "1"), (0.5, "500m"), (2.5, "2500m"), (0.1, "100m"), (0.0001, "1m"), ("250m", "250m")],
)
def test_cpu(cpu: float | str, expected: str) -> None:
    assert cpu_quantity(cpu) == expected
    root = co.Serial()
    root["a"] = co.Exec("true", cpu=cpu)
    assert main(job(root, "/a"))["resources"]["requests"]["cpu"] == expected


@pytest.mark.parametrize(
    ("mem", "expected"),
    [
        (2, "2Gi"),
        (0.5, "512Mi"),
        (1.5, "1536Mi"),
        (0.1, "107374183"),
        ("512Mi", "512Mi"),
        ("1G", "1G"),
    ],
)
def test_memory_request_equals_limit(mem: float | str, expected: str) -> None:
    assert memory_quantity(mem) == expected
    root = co.Serial()
    root["a"] = co.Exec("true", mem=mem)
    resources = main(job(root, "/a"))["resources"]
    assert resources["requests"]["memory"] == resources["limits"]["memory"] == expected


def test_gpu_retries_and_max_time() -> None:
    with co.Serial(retries=2, max_time="15m") as root:
        co.Exec("nvidia-smi", name="gpu", gpu=2)
        co.Exec("true", name="quick", max_time=0.5, retries=0)
    j = job(root, "/gpu")
    assert main(j)["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert "nvidia.com/gpu" not in main(j)["resources"]["requests"]
    assert j["spec"]["backoffLimit"] == 2
    assert j["spec"]["activeDeadlineSeconds"] == 900
    quick = job(root, "/quick")
    assert quick["spec"]["activeDeadlineSeconds"] == 1
    assert quick["spec"]["backoffLimit"] == 0
    assert "nvidia.com/gpu" not in main(quick)["resources"]["limits"]


def test_restricted_by_default() -> None:
    root = co.Serial()
    root["a"] = co.Exec("true")
    p = pod(job(root, "/a"))
    assert restricted_violations(p) == []
    assert p["securityContext"]["runAsNonRoot"] is True
    assert p["securityContext"]["runAsUser"] == 1000
    assert p["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert main(job(root, "/a"))["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    assert p["automountServiceAccountToken"] is False


def test_run_as_root_opts_out() -> None:
    with co.Serial(run_as_root=True) as root:
        co.Exec("apt-get update", name="apt", image="debian:12")
    j = job(root, "/apt")
    assert pod(j)["securityContext"] == {
        "runAsUser": 0,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert main(j)["image"] == "debian:12"
    assert restricted_violations(pod(j))  # on purpose: root is outside "restricted"


def test_images() -> None:
    built = co.Image(copy_dir=".", reqs_py=["numpy"], name="app")
    with co.Serial() as root:
        co.Exec("true", name="plain", image=co.Image(image="alpine:3.20", env={"X": "1"}))
        co.Exec("true", name="built", image=built)
        co.Exec("true", name="named", image="busybox")
    assert main(job(root, "/plain"))["image"] == "alpine:3.20"
    assert env(job(root, "/plain"))["X"] == "1"
    assert main(job(root, "/named"))["image"] == "busybox"
    refs = {image_key(built): "registry.example/app:abc"}
    assert main(job(root, "/built", image_refs=refs))["image"] == "registry.example/app:abc"
    assert main(job(root, "/built", image="override:1"))["image"] == "override:1"
    with pytest.raises(PipelineError, match=r"^/built: image 'app' has to be built"):
        render_job(root, "/built", "pipe", "default")


def test_pod_spec_is_merged_per_field_down_the_tree() -> None:
    outer = {
        "nodeSelector": {"disk": "ssd"},
        "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "serviceAccountName": "runner",
    }
    inner = {
        "nodeSelector": {"zone": "b"},
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
        "containers": [
            {
                "name": "main",
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                "env": [
                    {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "t"}}}
                ],
                "securityContext": {"readOnlyRootFilesystem": True},
            }
        ],
        "securityContext": {"fsGroup": 2000},
        "initContainers": [{"name": "fetch", "image": "busybox", "command": ["true"]}],
    }
    with co.Serial(pod_spec=outer) as root:
        co.Exec("true", name="outer")
        co.Exec("true", name="inner", pod_spec=inner)
    p = pod(job(root, "/outer"))
    assert p["nodeSelector"] == {"disk": "ssd"} and p["serviceAccountName"] == "runner"
    p = pod(job(root, "/inner"))
    assert p["nodeSelector"] == {"zone": "b"}  # the nearest value of a field wins whole
    assert p["tolerations"] == outer["tolerations"]  # other fields still inherited
    assert p["volumes"] == inner["volumes"]
    c = p["containers"][0]
    assert c["volumeMounts"] == [{"name": "data", "mountPath": "/data"}]
    assert [e["name"] for e in c["env"]] == ["K8SCO_PIPELINE", "K8SCO_NODE_PATH", "TOKEN"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert p["securityContext"]["fsGroup"] == 2000
    assert p["securityContext"]["runAsNonRoot"] is True
    assert p["initContainers"][0]["securityContext"]["allowPrivilegeEscalation"] is False
    assert restricted_violations(p) == []
    # The tree's own dicts are untouched by rendering.
    assert root["inner"].params["pod_spec"] == inner


def test_pod_spec_that_breaks_restricted_fails_naming_the_node() -> None:
    host = {"volumes": [{"name": "h", "hostPath": {"path": "/var/run"}}]}
    nfs = {"volumes": [{"name": "n", "nfs": {"server": "fs", "path": "/data"}}]}
    with co.Serial() as root:
        co.Exec("true", name="host", pod_spec=host)
        co.Exec("true", name="root-user", pod_spec={"securityContext": {"runAsUser": 0}})
        co.Exec("true", name="allowed", pod_spec=nfs, run_as_root=True)
    with pytest.raises(PipelineError, match=r"^/host: .*hostPath.*run_as_root=True would not"):
        render_job(root, "/host", "pipe", "default")
    with pytest.raises(PipelineError, match=r"^/root-user: .*runAsUser is 0.*set run_as_root"):
        render_job(root, "/root-user", "pipe", "default")
    # run_as_root leaves "restricted" (an NFS volume) but not "baseline".
    assert pod(job(root, "/allowed"))["volumes"] == nfs["volumes"]


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"hostPID": True}, "hostPID is true"),
        ({"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}, "volumes['root'].hostPath"),
        (
            {"containers": [{"name": "main", "securityContext": {"privileged": True}}]},
            "containers['main'].securityContext.privileged is true",
        ),
        (
            {"securityContext": {"appArmorProfile": {"type": "Unconfined"}}},
            "securityContext.appArmorProfile.type is Unconfined",
        ),
    ],
)
def test_run_as_root_pods_must_pass_baseline(patch: dict[str, Any], field: str) -> None:
    with co.Serial() as root:
        co.Exec("true", name="x", pod_spec=patch, run_as_root=True)
    with pytest.raises(PipelineError) as err:
        render_job(root, "/x", "pipe", "default")
    message = str(err.value)
    assert message.startswith("/x: the pod would not pass Pod Security 'baseline': ")
    assert field in message and "\n" not in message


def test_env_set_twice_fails() -> None:
    patch = {"containers": [{"name": "main", "env": [{"name": "A", "value": "2"}]}]}
    root = co.Serial()
    root["x"] = co.Exec("true", env={"A": "1"}, pod_spec=patch)
    with pytest.raises(PipelineError, match=r"^/x: environment variable 'A'"):
        render_job(root, "/x", "pipe", "default")


@pytest.mark.parametrize(
    ("path", "pipeline", "namespace", "message"),
    [
        ("/nope", "pipe", "default", r"^/nope: no such node"),
        ("/", "pipe", "default", r"^/: a Serial node has no Job"),
        ("/a", "p" * 64, "default", r"pipeline name .* at most 63"),
        ("/a", "Pipe", "default", r"pipeline name 'Pipe'"),
        ("/a", "pipe", "Team_A", r"namespace 'Team_A'"),
    ],
)
def test_bad_arguments(path: str, pipeline: str, namespace: str, message: str) -> None:
    root = co.Serial()
    root["a"] = co.Exec("true")
    with pytest.raises(PipelineError, match=message):
        render_job(root, path, pipeline, namespace)


def test_a_root_exec_and_odd_paths_render() -> None:
    assert main(job(co.Exec("echo solo"), "/"))["command"] == ["/bin/sh", "-c", "echo solo"]
    root = co.Parallel()
    for name in ("Ünïcode", "日本語", "a b", "a-b", "x" * 200, "Bang!name"):
        root[name] = co.Exec("true")
    names = {job(root, n.path)["metadata"]["name"] for n in root.children.values()}
    assert len(names) == len(root.children)


def test_same_input_same_output() -> None:
    with co.Serial() as root:
        co.Exec(square, 2).set(name="a")
    assert render_job(root, "/a", "pipe", "ns") == render_job(root, "/a", "pipe", "ns")
    rebuilt = co.Node.deserialize(root.serialize())
    assert render_job(rebuilt, "/a", "pipe", "ns") == render_job(root, "/a", "pipe", "ns")


def test_one_walk_gives_what_each_node_looks_up() -> None:
    from k8sco.render.jobs import Settings, exec_settings

    with co.Serial(env={"A": "1"}, cpu=2, pod_spec={"nodeSelector": {"a": "b"}}) as root:
        with co.Parallel(name="p", env={"B": "2"}, mem=4, run_as_root=True, retries=3):
            co.Exec("true", name="x", env={"A": "9"}, pod_spec={"priorityClassName": "p"})
            co.Exec("true", name="y", image="img", max_time="1h")
        with co.Serial(name="s", skip=True):
            co.Exec("true", name="z")
        co.Exec("true", name="w", gpu=1, cpu="250m")
    walked = {path: s for _, path, s in exec_settings(root)}
    assert set(walked) == {"/p/x", "/p/y", "/w"}  # /s/z is skipped
    for path, settings in walked.items():
        assert settings == Settings.of(root[path]), path
    assert walked["/p/x"].env == {"A": "9", "B": "2"}
    assert walked["/p/x"].pod_spec == {"nodeSelector": {"a": "b"}, "priorityClassName": "p"}
