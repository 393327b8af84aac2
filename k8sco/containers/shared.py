"""A shared container of ``k8sco run --docker`` (``container_reuse_context=NEW``): one
container per group, kept between its nodes, each node ``docker exec``'d into it.

The group's first node creates the container (named by the runner, labelled with the run and
the group's head path) running a shell loop that only waits; every node of the group then
runs in it as an exec process, with its own argv, environment and log, so files it leaves
are there for the next one. The runner removes the container with the run's others when the
run ends.

An exec has no ``kill`` in the Engine API: the node's process writes its pid to a file first
(through the image's ``/bin/sh``), and stopping it is ``kill PID`` exec'd beside it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import os
import threading
import uuid
from typing import IO, Any

import docker
import docker.errors
from docker.models.containers import Container

from k8sco import sequence
from k8sco.containers.engine import connect
from k8sco.errors import RunError
from k8sco.params import cpu_cores, mem_bytes
from k8sco.tree import Node

# Waits without a process of its own between nodes: `sleep` in the background, so that a
# SIGTERM from `docker stop` ends it at once.
KEEP_ALIVE = ("/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done")
_WITH_PIDFILE = 'echo $$ > "$0"; exec "$@"'
_KILL = 'kill -s "$1" "$(cat "$0")" 2>/dev/null; true'


class SharedRun:
    """One node of a group, exec'd into the group's container (created if need be).

    Same interface as :class:`k8sco.containers.run.ContainerRun`; ``spec`` is its
    ``ContainerSpec`` with ``shared`` naming the container."""

    def __init__(self, spec: Any, log: IO[bytes], client: docker.DockerClient | None = None):
        self.spec = spec
        self.log = log
        self._own_client = client is None
        self.client = client or connect(RunError)
        self.container: Container | None = None
        self._exec: str | None = None
        self._pidfile = f"/tmp/.k8sco-{uuid.uuid4().hex}.pid"
        self._copy: threading.Thread | None = None
        self._exit_code: int | None = None

    def _box(self) -> Container:
        """The group's container: found by its name, or created and started as a node's own
        container would be (image, limits, user, labels, mounts), waiting."""
        from k8sco.containers.run import ContainerRun

        name = self.spec.shared
        with contextlib.suppress(docker.errors.NotFound):
            found: Container = self.client.containers.get(name)
            if found.status != "running":
                found.start()
            return found
        box = ContainerRun(
            dataclasses.replace(self.spec, argv=KEEP_ALIVE, name=name, shared=None),
            io.BytesIO(),  # it prints nothing; each node's output comes from its exec
            self.client,
        )
        try:
            box.start()
        except RunError:
            with contextlib.suppress(docker.errors.NotFound):  # another node made it first
                return self.client.containers.get(name)
            raise
        assert box.container is not None
        return box.container

    def start(self) -> None:
        """Exec the node in the group's container (created if need be)."""
        spec = self.spec
        environment = {
            **spec.env,
            **{k: os.environ[k] for k in spec.secret_env if k in os.environ},
        }
        try:
            self.container = box = self._box()
            argv = ["/bin/sh", "-c", _WITH_PIDFILE, self._pidfile, *spec.argv]
            self._exec = self.client.api.exec_create(
                box.id,
                argv,
                environment=environment,
                workdir=spec.workdir or None,
                user=spec.user,
            )["Id"]
            stream = self.client.api.exec_start(self._exec, stream=True)
        except docker.errors.APIError as exc:
            raise RunError(f"running in the shared container {spec.shared}: {exc}") from exc
        self._copy = threading.Thread(target=self._copy_output, args=(stream,), daemon=True)
        self._copy.start()

    def _copy_output(self, stream: Any) -> None:
        try:
            for chunk in stream:
                self.log.write(chunk)
                self.log.flush()
        except (docker.errors.APIError, OSError, ValueError):
            pass  # the container went away; the exit code still tells

    def wait(self, timeout: float | None = None) -> int:
        if self._exit_code is not None:
            return self._exit_code
        if self._exec is None or self._copy is None:
            raise RunError("wait() before start()")
        self._copy.join(timeout)
        if self._copy.is_alive():
            raise TimeoutError(f"node still running after {timeout}s")
        try:
            code = self.client.api.exec_inspect(self._exec).get("ExitCode")
        except docker.errors.APIError as exc:
            raise RunError(f"reading the exit code in {self.spec.shared}: {exc}") from exc
        self._exit_code = -1 if code is None else int(code)
        return self._exit_code

    def oom_killed(self) -> bool:
        return False  # the kernel kills the process, the engine records nothing per exec

    def kill(self, grace: float = 10.0) -> None:
        """SIGTERM to the node's process, SIGKILL ``grace`` seconds later. Does not wait."""
        box = self.container
        if box is None:
            return

        def signal(name: str) -> None:
            with contextlib.suppress(docker.errors.APIError):  # the container is gone
                box.exec_run(["/bin/sh", "-c", _KILL, self._pidfile, name], user="0:0")

        def stop() -> None:
            signal("TERM")
            if self._copy is not None:
                self._copy.join(max(grace, 0.0))
                if self._copy.is_alive():
                    signal("KILL")

        threading.Thread(target=stop, daemon=True).start()

    def close(self) -> None:
        """The container stays for the group's next node; the runner removes it."""
        if self.container is not None:
            with contextlib.suppress(docker.errors.APIError):
                self.container.exec_run(["rm", "-f", self._pidfile], user="0:0")
        if self._own_client:
            self.client.close()


def for_node(spec: Any, root: Node, path: str, run_id: str, node_label: str) -> Any:
    """``spec`` (a node's ContainerSpec) as the node's parameters want it in docker mode:
    with the engine's socket (``requires_docker=True``) and in its group's container
    (``container_reuse_context=NEW``: sized for the group's largest node, labelled with the
    group's head path, which also names it)."""
    node = root[path]
    if node.get("requires_docker"):
        socket = socket_path()
        if socket is None:  # an engine over TCP: the node reaches it as this host does
            env = {**spec.env, "DOCKER_HOST": os.environ["DOCKER_HOST"]}
            spec = dataclasses.replace(spec, env=env, network=True)
        else:
            env = {**spec.env, "DOCKER_HOST": "unix:///var/run/docker.sock"}
            spec = dataclasses.replace(spec, env=env, docker_socket=socket)
    head = sequence.head_of(node)
    if head is None:
        return spec
    members = [root[p] for p in sequence.members(root, head)]
    digest = hashlib.sha256(f"{run_id}\0{head}".encode()).hexdigest()[:12]
    return dataclasses.replace(
        spec,
        shared=f"k8sco-{run_id[:20]}-{digest}",
        cpu=max(cpu_cores(m.get("cpu")) for m in members),
        mem=max(mem_bytes(m.get("mem")) for m in members),
        network=any(bool(m.get("network")) for m in members),
        labels={**spec.labels, node_label: head},
    )


def socket_path(environ: dict[str, str] | None = None) -> str | None:
    """The engine's Unix socket on this host (DOCKER_HOST, else the default), or None when
    the engine is reached otherwise (TCP)."""
    host = (environ if environ is not None else dict(os.environ)).get("DOCKER_HOST")
    host = host or "unix:///var/run/docker.sock"
    return host[len("unix://") :] if host.startswith("unix://") else None


__all__ = ["KEEP_ALIVE", "SharedRun", "for_node", "socket_path"]
