"""A ContainerRunner that runs each pod's container in Docker, for the fake kubelet.

With it the fake cluster runs a pod as a real kubelet would: in the pod's image, with its
argv, environment and working directory, as the uid nodes run as, with no network. It reuses
k8sco's own container runner (``k8sco.containers.run``), the one ``k8sco run --docker`` uses.
"""

from __future__ import annotations

import contextlib
from typing import IO

from k8sco.containers.run import ContainerRun, ContainerSpec
from k8sco.render.constants import CODE_ROOT

from .runners import ContainerLaunch, RunnerError

LABEL = "k8sco.io/fakecluster"


class DockerContainer:
    def __init__(self, run: ContainerRun, log: IO[bytes]) -> None:
        self._run = run
        self._log = log
        assert run.container is not None
        self.container_id = f"docker://{run.container.id}"

    def wait(self) -> int:
        try:
            return self._run.wait()
        finally:
            self._run.close()
            self._log.close()

    def terminate(self) -> None:
        self._run.kill(grace=3)

    def kill(self) -> None:
        self._run.kill(grace=0)


class DockerRunner:
    """Starts one container per pod container; ``labels`` mark them for clean-up."""

    def __init__(self, labels: dict[str, str] | None = None) -> None:
        self.labels = {LABEL: "1", **(labels or {})}

    def start(self, launch: ContainerLaunch) -> DockerContainer:
        spec = ContainerSpec(
            image=launch.image,
            argv=launch.argv,
            env=dict(launch.env),
            workdir=launch.working_dir or CODE_ROOT,
            labels={**self.labels, "io.kubernetes.pod.name": launch.pod},
        )
        log = open(launch.log_path, "ab")  # noqa: SIM115 (closed when the container ends)
        run = ContainerRun(spec, log)
        try:
            run.start()
        except Exception as exc:
            with contextlib.suppress(Exception):
                run.close()
            log.close()
            raise RunnerError("ErrImagePull", str(exc)) from exc
        return DockerContainer(run, log)
