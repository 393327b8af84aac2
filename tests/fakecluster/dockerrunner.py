"""A ContainerRunner that runs each pod's container in Docker, for the fake kubelet.

With it the fake cluster runs a pod as a real kubelet would: in the pod's image, with its
argv, environment and working directory (the image's when the pod sets none), as the pod's
uid (``securityContext.runAsUser``/``runAsGroup``, the container's over the pod's; the
image's user when neither is set), with its CPU and memory limits, and with no network
unless the pod asks for ``hostNetwork``. Output goes to ``launch.log_path``.

It reuses k8sco's own container runner (``k8sco.containers.run``), the one
``k8sco run --docker`` uses. :class:`~runners.ContainerLaunch` carries no resources or
security context, so the runner reads them from the pod in the cluster it is bound to::

    runner = DockerRunner()
    with runner, FakeCluster(runner=runner) as fake:
        runner.bind(fake)
        ...

Leaving the runner's ``with`` (after the cluster's, whose kubelet kills what still runs)
removes every container this runner started that is still there.
"""

from __future__ import annotations

import contextlib
import secrets
from types import TracebackType
from typing import IO, Any, Protocol

import docker
import docker.errors

from k8sco.containers.run import ContainerRun, ContainerSpec, remove_containers
from k8sco.errors import RunError
from k8sco.params import cpu_cores, mem_bytes

from .runners import ContainerLaunch, RunnerError

LABEL = "k8sco.io/fakecluster"  # value: the runner's own token, for its clean-up


class PodSource(Protocol):
    def get(self, resource: str, name: str, namespace: str = "") -> dict[str, Any] | None: ...


class DockerContainer:
    """One running container, as the kubelet sees it."""

    def __init__(self, run: ContainerRun, log: IO[bytes]) -> None:
        assert run.container is not None
        self._run = run
        self._container = run.container
        self._log = log
        self.container_id = f"docker://{run.container.id}"

    def wait(self) -> int:
        """The exit code (137 after SIGKILL, as Docker and the kubelet report it)."""
        try:
            return self._run.wait()
        except RunError:  # the container was removed under us: killed, as far as we know
            return 137
        finally:
            self._run.close()  # removes the container
            self._log.close()

    def terminate(self) -> None:
        self._signal("SIGTERM")  # the kubelet sends SIGKILL itself when the grace runs out

    def kill(self) -> None:
        self._signal("SIGKILL")

    def _signal(self, sig: str) -> None:
        with contextlib.suppress(docker.errors.APIError):  # not running any more
            self._container.kill(signal=sig)


class DockerRunner:
    """Starts one Docker container per pod container (see the module docstring)."""

    def __init__(self, client: docker.DockerClient | None = None) -> None:
        self.client = client  # None: each container opens its own connection
        self.token = secrets.token_hex(4)
        self.labels = {LABEL: self.token}
        self.pods: PodSource | None = None

    def bind(self, cluster: PodSource) -> DockerRunner:
        """Read pods (their resources and security context) from ``cluster``."""
        self.pods = cluster
        return self

    def __enter__(self) -> DockerRunner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Remove the containers of this runner that are still there."""
        remove_containers(self.labels, self.client)

    def spec(self, launch: ContainerLaunch) -> ContainerSpec:
        """What to run for ``launch``: its pod's limits, uid and network. Pure but for the
        pod's lookup."""
        if self.pods is None:
            raise RunnerError(
                "CreateContainerConfigError",
                "DockerRunner is not bound to a cluster: call runner.bind(fake_cluster)",
            )
        pod = self.pods.get("pods", launch.pod, launch.namespace) or {}
        if pod.get("metadata", {}).get("uid") != launch.pod_uid:
            raise RunnerError("CreateContainerConfigError", f"pod {launch.pod} is gone")
        spec = pod["spec"]
        container = next(c for c in spec["containers"] if c["name"] == launch.container)
        limits = (container.get("resources") or {}).get("limits") or {}
        return ContainerSpec(
            image=launch.image,
            argv=launch.argv,
            env=dict(launch.env),
            workdir=launch.working_dir or "",  # "": the image's WORKDIR
            user=_user(spec.get("securityContext") or {}, container.get("securityContext") or {}),
            cpu=cpu_cores(limits["cpu"]) if "cpu" in limits else None,
            mem=mem_bytes(limits["memory"]) if "memory" in limits else None,
            network=bool(spec.get("hostNetwork")),
            labels={**self.labels, "io.kubernetes.pod.name": launch.pod},
        )

    def start(self, launch: ContainerLaunch) -> DockerContainer:
        spec = self.spec(launch)
        log = open(launch.log_path, "ab")  # noqa: SIM115 (closed when the container ends)
        run = ContainerRun(spec, log, self.client)
        try:
            run.start()
        except Exception as exc:
            with contextlib.suppress(Exception):
                run.close()
            log.close()
            missing = isinstance(exc.__cause__, docker.errors.ImageNotFound)
            raise RunnerError("ErrImageNeverPull" if missing else "StartError", str(exc)) from exc
        return DockerContainer(run, log)


def _user(pod: dict[str, Any], container: dict[str, Any]) -> str:
    """Docker's ``--user`` for a pod's security context: ``uid[:gid]``, or "" (the image's)."""
    uid = container.get("runAsUser", pod.get("runAsUser"))
    gid = container.get("runAsGroup", pod.get("runAsGroup"))
    if uid is None:
        return ""  # Docker does not take a group without a user; the image's user it is
    return f"{uid}:{gid}" if gid is not None else str(uid)


__all__ = ["DockerContainer", "DockerRunner"]
