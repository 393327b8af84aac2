"""One node's command in its image: what ``k8sco run --docker`` does instead of a process.

The container gets what a Job's container gets (DESIGN.md §2): the same argv, the node's
environment, the code root as working directory, the uid nodes run as, no capabilities and
no privilege escalation. ``cpu`` and ``mem`` become Docker limits. It has no network unless
the node sets ``network=True`` (then the host's: these engines have no bridge network).

Two ways in:

- :class:`ContainerRun` in-process: ``start()``, ``wait()`` (the exit code), ``kill()``; the
  output (stdout and stderr, interleaved) goes to a binary file as it comes.
- A process the local runner can treat like any node process::

      python -m k8sco.containers.run '<ContainerSpec JSON>'

  streams the output to its stdout, stops the container on SIGTERM/SIGINT and exits with the
  container's exit code. :func:`shim_argv` builds that command line.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from types import FrameType, TracebackType
from typing import IO, Any

import docker
import docker.errors
import requests.exceptions
from docker.models.containers import Container

from k8sco.callback import OOM_MARKER
from k8sco.containers.engine import connect
from k8sco.containers.shared import SharedRun
from k8sco.errors import RunError
from k8sco.image import Image
from k8sco.params import cpu_cores, mem_bytes
from k8sco.render.constants import CODE_ROOT, RUN_AS_USER
from k8sco.tree import Exec

LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"


@dataclass(frozen=True)
class ContainerSpec:
    """What to run: the image, argv and environment, and the container's limits."""

    image: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    workdir: str = CODE_ROOT  # "": the image's WORKDIR (docker_auto_workdir=False)
    user: str = f"{RUN_AS_USER}:{RUN_AS_USER}"
    cpu: float | None = None  # cores
    mem: int | None = None  # bytes; swap is not allowed beyond it
    network: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    name: str | None = None
    # Variables whose values the container takes from this process's environment (secrets):
    # the spec travels in the shim's argv, which every local user can read (ps), an
    # environment only its owner.
    secret_env: tuple[str, ...] = ()
    # requires_docker=True: the engine's Unix socket on this host, mounted for the node.
    docker_socket: str | None = None
    # container_reuse_context=NEW: the name of its group's container, to exec the node in
    # (k8sco/containers/shared.py).
    shared: str | None = None

    def to_json(self) -> str:
        data = asdict(self)
        data["argv"] = list(self.argv)
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ContainerSpec:
        data = json.loads(text)
        data["argv"] = tuple(data["argv"])
        data["secret_env"] = tuple(data.get("secret_env", ()))
        return cls(**data)


def node_argv(command: str | Sequence[str], shell: str = "/bin/sh") -> tuple[str, ...]:
    """A node's argv in its image: a shell string through ``shell -c`` (a co.Image's
    ``shell=``); an argv (including ``k8sco call ...``, whose ``k8sco`` is the image's
    console script) as it is."""
    if isinstance(command, str):
        return (shell, "-c", command)
    return tuple(command)


def node_spec(
    node: Exec,
    image: str,
    env: Mapping[str, str] = {},
    labels: Mapping[str, str] = {},
    name: str | None = None,
) -> ContainerSpec:
    """The container of an Exec node in ``image``. ``env`` (K8SCO_PIPELINE, K8SCO_NODE_PATH)
    is added to the node's own environment."""
    return ContainerSpec(
        image=image,
        argv=node_argv(node.command, _shell(node.get("image"))),
        workdir=_workdir(node.get("image")),
        # A co.SecretRef has no value here: the runner passes it through secret_env.
        env={**{k: v for k, v in node.get("env").items() if isinstance(v, str)}, **env},
        cpu=cpu_cores(node.get("cpu")),
        mem=mem_bytes(node.get("mem")),
        network=bool(node.get("network")),
        labels={LABEL_MANAGED_BY: "k8sco", **labels},
        name=name,
    )


def _shell(image: object) -> str:
    return image.command_shell if isinstance(image, Image) else "/bin/sh"


def _workdir(image: object) -> str:
    return "" if isinstance(image, Image) and not image.docker_auto_workdir else CODE_ROOT


class ContainerRun:
    """One container, from creation to removal. Use as a context manager (removes it)."""

    def __init__(
        self, spec: ContainerSpec, log: IO[bytes], client: docker.DockerClient | None = None
    ) -> None:
        self.spec = spec
        self.log = log
        self._own_client = client is None  # closed with the container, then
        self.client = client or connect(RunError)
        self.container: Container | None = None
        self._logs: threading.Thread | None = None
        self._exit_code: int | None = None

    def start(self) -> None:
        spec = self.spec
        try:
            self.container = self.client.containers.create(
                spec.image,
                command=list(spec.argv),
                environment={
                    **spec.env,
                    **{k: os.environ[k] for k in spec.secret_env if k in os.environ},
                },
                working_dir=spec.workdir or None,
                user=spec.user,
                nano_cpus=int(spec.cpu * 1e9) if spec.cpu else None,
                mem_limit=spec.mem,
                memswap_limit=spec.mem,
                network_mode="host" if spec.network else "none",
                labels=dict(spec.labels),
                name=spec.name,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                **_docker_access(spec.docker_socket),
                stdin_open=False,
                tty=False,
                detach=True,
            )
            self.container.start()
        except docker.errors.ImageNotFound as exc:
            raise RunError(
                f"image {spec.image} is not in the Docker engine: build it first "
                "(`k8sco build PIPELINE.py`) or pull it"
            ) from exc
        except docker.errors.APIError as exc:
            self.remove()
            raise RunError(f"starting a container of {spec.image}: {exc}") from exc
        self._logs = threading.Thread(target=self._copy_logs, daemon=True)
        self._logs.start()

    def _copy_logs(self) -> None:
        assert self.container is not None
        try:
            for chunk in self.container.logs(stream=True, follow=True):
                self.log.write(chunk)
                self.log.flush()
        except (docker.errors.APIError, OSError, ValueError):
            pass  # the container was removed under us; its exit code still tells

    def wait(self, timeout: float | None = None) -> int:
        """The exit code, once the container has exited and its output is copied.

        Raises ``TimeoutError`` when ``timeout`` seconds pass first.
        """
        if self._exit_code is not None:
            return self._exit_code
        if self.container is None:
            raise RunError("wait() before start()")
        try:
            result = self.container.wait(timeout=timeout)
        except docker.errors.APIError as exc:
            raise RunError(f"waiting for container {self.container.short_id}: {exc}") from exc
        except requests.exceptions.RequestException as exc:
            # The engine's wait outlived the HTTP read timeout: the container still runs.
            if timeout is None:
                raise RunError(f"waiting for container {self.container.short_id}: {exc}") from exc
            raise TimeoutError(f"container still running after {timeout}s") from exc
        if self._logs is not None:
            self._logs.join()
        self._exit_code = int(result.get("StatusCode", -1))
        return self._exit_code

    def oom_killed(self) -> bool:
        """Did the kernel kill the container for exceeding its memory (the engine's
        ``State.OOMKilled``)? False when that cannot be read any more."""
        if self.container is None:
            return False
        try:
            self.container.reload()
        except (docker.errors.APIError, requests.exceptions.RequestException):
            return False
        return bool((self.container.attrs.get("State") or {}).get("OOMKilled"))

    def kill(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds (``docker stop``). Does not wait."""
        container = self.container
        if container is None:
            return

        def stop() -> None:
            with contextlib.suppress(docker.errors.APIError):  # already gone
                container.stop(timeout=max(0, int(grace)))

        threading.Thread(target=stop, daemon=True).start()

    def remove(self) -> None:
        if self.container is not None:
            with contextlib.suppress(docker.errors.APIError):  # already removed
                self.container.remove(force=True)

    def close(self) -> None:
        """Remove the container, and close the engine client if this object opened it."""
        self.remove()
        if self._own_client:
            self.client.close()

    def __enter__(self) -> ContainerRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _docker_access(socket: str | None) -> dict[str, Any]:
    """Create options that give a requires_docker=True node the engine: its socket at the
    default path, DOCKER_HOST naming it, and the socket's group (non-root nodes need it)."""
    if socket is None:
        return {}
    return {
        "volumes": {socket: {"bind": "/var/run/docker.sock", "mode": "rw"}},
        "group_add": [str(os.stat(socket).st_gid)],
    }


def run(spec: ContainerSpec, log: IO[bytes], client: docker.DockerClient | None = None) -> int:
    """Run ``spec`` to the end: its exit code, the output written to ``log``."""
    with ContainerRun(spec, log, client) as container:
        container.start()
        return container.wait()


def remove_containers(labels: Mapping[str, str], client: docker.DockerClient | None = None) -> int:
    """Remove (killing if need be) every container carrying ``labels``; how many there were.

    For a runner that ends: a shim killed with SIGKILL cannot stop its container itself.
    """
    engine = client or connect(RunError)
    try:
        # One list call: the high-level list inspects each container afterwards, which
        # fails for one that its own shim removed in between.
        found = engine.api.containers(
            all=True, filters={"label": [f"{k}={v}" for k, v in labels.items()]}
        )
        for container in found:
            with contextlib.suppress(docker.errors.APIError):
                engine.api.remove_container(container["Id"], force=True)
    finally:
        if client is None:
            engine.close()
    return len(found)


def shim_argv(spec: ContainerSpec, python: str = sys.executable) -> list[str]:
    """The command line of a process that runs ``spec`` (see the module docstring)."""
    return [python, "-m", "k8sco.containers.run", spec.to_json()]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m k8sco.containers.run '<ContainerSpec JSON>'", file=sys.stderr)
        return 2
    spec = ContainerSpec.from_json(args[0])
    out = sys.stdout.buffer
    try:
        container: ContainerRun | SharedRun
        container = SharedRun(spec, out) if spec.shared else ContainerRun(spec, out)
        container.start()
    except RunError as exc:
        print(f"k8sco: {exc}", file=sys.stderr)
        return 125  # what `docker run` exits with when the container cannot start

    def on_signal(signum: int, frame: FrameType | None) -> None:
        container.kill()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        code = container.wait()
        if code != 0 and container.oom_killed():
            # The runner reads this line off the node's log (k8sco.reconcile.callbacks): a
            # shim's exit code cannot tell the OOM killer from `docker kill`.
            out.write(f"\n{OOM_MARKER}: the container exceeded its memory\n".encode())
            out.flush()
        return code
    finally:
        container.close()


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "ContainerRun",
    "ContainerSpec",
    "node_argv",
    "node_spec",
    "remove_containers",
    "run",
    "shim_argv",
]
