"""``k8sco debug``: a shell where a node runs, as Conducto's ``debug``, with the node's
command printed to run (or change and run) there.

- A local run (``k8sco debug /NODE_PATH``, ``--run ID``): a shell in the node's working
  directory with its environment (the node's env, the local secrets, K8SCO_PIPELINE,
  K8SCO_NODE_PATH and co.data's variables), as the runner starts it; with ``--docker``,
  ``docker run -it`` of the node's image (built first where it is a ``co.Image``) with the
  container settings ``k8sco run --docker`` gives it.
- A cluster (``k8sco debug PIPELINE /NODE_PATH``): ``kubectl run`` of a pod whose spec is
  the node's Job's pod template as the controller renders it (image, env with its
  secretKeyRefs, resources, volumes, and the restricted security context), its container
  a shell with a terminal.

``--print`` prints the command that opens the shell instead of running it (what a script,
or a test without a terminal, uses: the shell reads the commands from its stdin).
"""

from __future__ import annotations

import json
import os
import secrets as random
import shlex
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import click

from k8sco import sequence
from k8sco.cli.cluster import cluster_options, connect
from k8sco.errors import UsageError
from k8sco.image import Image
from k8sco.local.rundir import RUNS_DIR, RunDir
from k8sco.tree import Exec, Node

SHELL = "/bin/sh"  # in an image: the one every image has


@click.command()
@click.argument("args", nargs=-1, required=True, metavar="[PIPELINE] NODE_PATH")
@click.option("--run", "run_id", metavar="ID", help="A local run id (default: the latest run).")
@click.option("--docker", is_flag=True, help="Local: a container of the node's image.")
@click.option("--print", "print_only", is_flag=True, help="Print the command that opens the shell.")
@cluster_options
def debug(
    args: tuple[str, ...],
    run_id: str | None,
    docker: bool,
    print_only: bool,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Open a shell where a node runs, its environment and working directory ready, and
    print the node's command to run there.

    \b
    k8sco debug /NODE_PATH             a node of the latest local run (or --run ID)
    k8sco debug --docker /NODE_PATH    the same, in a container of the node's image
    k8sco debug PIPELINE /NODE_PATH    a pod like the node's on the cluster (kubectl run)
    """
    if run_id is None and len(args) == 1 and not args[0].startswith("/"):
        raise UsageError(
            f"{args[0]!r}: a local NODE_PATH starts with '/'; for a cluster give PIPELINE NODE_PATH"
        )
    if run_id is not None or len(args) == 1:
        if len(args) != 1:
            raise UsageError("a local run takes one NODE_PATH (--run picks the run)")
        run = RunDir.open(RUNS_DIR, run_id)
        node = exec_node(run.tree(), args[0], f"run {run.run_id}")
        if docker:
            argv, cwd, env = docker_argv(run, node), None, None
        else:
            argv, cwd, env = shell_command(run, node)
    elif len(args) == 2:
        if docker:
            raise UsageError("--docker is for a local run; on a cluster the node runs in a pod")
        argv, cwd, env = kubectl_argv(args[0], args[1], kubeconfig, context, namespace), None, None
    else:
        raise UsageError("give PIPELINE NODE_PATH (a cluster) or NODE_PATH (a local run)")
    if print_only:
        click.echo(printable(argv, cwd, env))
        return
    if not sys.stdin.isatty():
        raise UsageError("debug needs a terminal; --print gives the command to run instead")
    if cwd is not None:
        os.chdir(cwd)
    os.execvpe(argv[0], argv, env if env is not None else dict(os.environ))


def exec_node(root: Node, node_path: str, where: str) -> Exec:
    path = "/" + "/".join(p for p in node_path.split("/") if p)
    if path not in root:
        raise UsageError(f"{where} has no node {node_path!r}")
    node = root[path]
    if not isinstance(node, Exec):
        raise UsageError(f"{path} is a {node.kind}: debug an Exec node below it")
    return node


def _say(lines: Sequence[str]) -> None:
    for line in lines:
        click.echo(f"k8sco debug: {line}", err=True)


# --- local ------------------------------------------------------------------------------------


def _code_root(run: RunDir) -> str:
    file = run.meta.get("file")
    return os.path.dirname(str(file)) if file else os.getcwd()


def shell_command(run: RunDir, node: Exec) -> tuple[list[str], str, dict[str, str]]:
    """The shell of a local node in process mode: argv, working directory, environment,
    as the runner would start the node (k8sco.local.runner._spawn)."""
    from k8sco.data.local import ENV_PIPELINE, local_data_env
    from k8sco.local import processes
    from k8sco.local import secrets as local_secrets
    from k8sco.secrets import process_env

    code_root = _code_root(run)
    base = dict(os.environ)
    base["K8SCO_PIPELINE"] = run.run_id
    base.update(local_data_env(run.path, base))
    framework = {"K8SCO_PIPELINE": run.run_id, ENV_PIPELINE: base[ENV_PIPELINE]}
    framework["K8SCO_NODE_PATH"] = node.path
    env = process_env(base, node.get("env"), local_secrets.load(), framework, node.path)
    cwd = processes.node_workdir(node, code_root)
    env = processes.node_pythonpath(env, code_root, cwd)
    command = processes.node_argv(node, processes.dispatcher_argv(), code_root, cwd)
    shell = os.environ.get("SHELL") or SHELL
    _say([f"{node.path} of run {run.run_id}, in {cwd}; its command:", _command_text(command)])
    return [shell], cwd, env


def _command_text(argv: Sequence[str]) -> str:
    if len(argv) == 3 and argv[1] == "-c" and argv[0].endswith("sh"):
        return argv[2]  # a shell string: as the node wrote it
    return shlex.join(argv)


def docker_argv(run: RunDir, node: Exec) -> list[str]:
    """``docker run -it`` of a local node's container, as ``k8sco run --docker`` creates
    it (k8sco.containers.run.ContainerRun.start), its command replaced by a shell."""
    from k8sco.containers import run as containers

    code_root = _code_root(run)
    image = _node_image(node, code_root)
    framework = {"K8SCO_PIPELINE": run.run_id, "K8SCO_NODE_PATH": node.path}
    spec = containers.node_spec(node, image, env=framework)
    if node.get("run_as_root"):
        spec = containers.ContainerSpec(**{**spec.__dict__, "user": "0:0"})
    argv = ["docker", "run", "--rm", "-i", "-t", "--user", spec.user]
    argv += ["--network", "host" if spec.network else "none"]
    argv += ["--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
    if spec.workdir:
        argv += ["-w", spec.workdir]
    if spec.cpu:
        argv += ["--cpus", f"{spec.cpu:g}"]
    if spec.mem:
        argv += ["--memory", str(spec.mem), "--memory-swap", str(spec.mem)]
    for key, value in sorted(spec.env.items()):
        argv += ["-e", f"{key}={value}"]
    argv += ["--entrypoint", SHELL, spec.image]
    _say([f"{node.path} of run {run.run_id}, in {spec.image}; its command:"])
    _say([_command_text(list(spec.argv))])
    return argv


def _node_image(node: Exec, code_root: str) -> str:
    """The node's image reference, built first where it is a co.Image (as k8sco run
    --docker does; a build already made is reused from the engine's cache)."""
    from k8sco.containers.nodes import local_default

    declared = node.get("image") or local_default(code_root)
    if isinstance(declared, str):
        return declared
    from k8sco.containers.build import Builder
    from k8sco.containers.progress import StreamDisplay

    with StreamDisplay() as display, Builder.from_env(os.environ, display=display) as builder:
        return str(builder.build(declared, code_root).ref)


# --- a cluster --------------------------------------------------------------------------------


def kubectl_argv(
    name: str,
    node_path: str,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> list[str]:
    """``kubectl run`` of a pod like the node's: the pod template of the Job the controller
    would create for it, its main container a shell with a terminal."""
    from k8sco.kube import pipelines
    from k8sco.kube import secrets as kube_secrets
    from k8sco.kube.overflow import load_tree
    from k8sco.render.pipeline import job_for

    cluster = connect(kubeconfig, context, namespace)
    found = pipelines.get(cluster, name)
    root = load_tree(cluster, found)
    node = exec_node(root, node_path, f"pipeline {name}")
    ns = found["metadata"]["namespace"]
    job = job_for(found, root, node.path, kube_secrets.key_names(cluster, ns))
    if sequence.is_group_job(job):  # a shared container's Job runs all of its nodes
        job = member_job(job, node)
    pod = debug_pod(job)
    flags = []
    for flag, value in (("--kubeconfig", kubeconfig), ("--context", context)):
        if value:
            flags += [flag, value]
    container = pod["spec"]["containers"][0]
    _say([f"{node.path} of pipeline {name}, in {container['image']}; its command:"])
    _say([_command_text(job["spec"]["template"]["spec"]["containers"][0].get("command", []))])
    return [
        "kubectl",
        *flags,
        "-n",
        ns,
        "run",
        pod["metadata"]["name"],
        "--rm",
        "-i",
        "-t",
        "--restart=Never",
        f"--image={container['image']}",
        "--override-type=merge",
        "--overrides=" + json.dumps(pod, separators=(",", ":"), sort_keys=True),
    ]


def member_job(job: Mapping[str, Any], node: Exec) -> dict[str, Any]:
    """The Job of ``node``'s shared container as ``k8sco sequence`` runs that one node in
    it: its own command, its own literal env and path (k8sco.sequence.member_env)."""
    out: dict[str, Any] = json.loads(json.dumps(job))
    main = out["spec"]["template"]["spec"]["containers"][0]
    if isinstance(node.command, str):
        image = node.get("image")
        shell = image.command_shell if isinstance(image, Image) else "/bin/sh"
        main["command"] = [shell, "-c", node.command]
    else:
        main["command"] = list(node.command)
    main.pop("args", None)
    own = {k: v for k, v in node.get("env").items() if isinstance(v, str)}
    own["K8SCO_NODE_PATH"] = node.path
    env = [e for e in main.get("env") or () if e.get("name") not in own]
    main["env"] = [*env, *({"name": k, "value": v} for k, v in own.items())]
    return out


def debug_pod(job: Mapping[str, Any]) -> dict[str, Any]:
    """A pod from a Job: its template's spec (the security context kept, so that it passes
    the namespace's Pod Security level as the node's pod does), restarted never, its first
    container a shell reading a terminal. No labels: no controller takes it for a node's."""
    template = job["spec"]["template"]
    spec = json.loads(json.dumps(template["spec"]))
    spec["restartPolicy"] = "Never"
    main = spec["containers"][0]
    main["command"] = [SHELL]
    main.pop("args", None)
    main.update(stdin=True, stdinOnce=True, tty=True)
    base = str(job["metadata"]["name"])[:45].rstrip("-")
    # `kubectl run -i -t` attaches to the container this annotation names, else the first
    # (kubernetes/kubectl pkg/cmd/run/run.go handleAttachPod -> AttachOptions.GetContainerName);
    # the whole spec replaces the generated one (--override-type=merge: lists are replaced).
    annotations = {"kubectl.kubernetes.io/default-container": str(main.get("name", ""))}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{base}-debug-{random.token_hex(3)}", "annotations": annotations},
        "spec": spec,
    }


def printable(argv: Sequence[str], cwd: str | None, env: Mapping[str, str] | None) -> str:
    """One shell command line: ``cd DIR && env VAR=... SHELL`` for a local shell (only the
    variables that differ from this environment; secret values are left out, named on
    stderr), else the argv quoted."""
    if cwd is None and env is None:
        return shlex.join(argv)
    parts = []
    if cwd is not None:
        parts.append(f"cd {shlex.quote(cwd)} &&")
    if env is not None:
        from k8sco.local import secrets as local_secrets
        from k8sco.secrets import SECRET_NAME

        hidden = set(local_secrets.load().get(SECRET_NAME, {}))
        changed = {k: v for k, v in env.items() if os.environ.get(k) != v}
        shown = {k: v for k, v in changed.items() if k not in hidden}
        if set(changed) - set(shown):
            _say(["secret values are not printed: " + ", ".join(sorted(set(changed) - set(shown)))])
        gone = sorted(set(os.environ) - set(env))
        parts.append("env")
        parts += [f"-u {shlex.quote(k)}" for k in gone]
        parts += [shlex.quote(f"{k}={v}") for k, v in sorted(shown.items())]
    parts.append(shlex.join(argv))
    return " ".join(parts)
