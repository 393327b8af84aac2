"""The connection to the Docker engine, with its failures said in k8sco's words."""

from __future__ import annotations

import os

import docker
import docker.errors

from k8sco.errors import K8scoError

SETUP_HINT = (
    "start one (as root, `scripts/docker-setup.sh` in the k8sco checkout installs and starts "
    "dockerd), or point DOCKER_HOST at one"
)


def connect(error: type[K8scoError] = K8scoError) -> docker.DockerClient:
    """A client of the engine that DOCKER_HOST (default: the local socket) names.

    Raises ``error`` (the caller's kind: BuildError for builds, RunError for runs) when no
    engine answers.
    """
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if host.startswith("unix://") and not os.path.exists(host[len("unix://") :]):
        # Checked first: the SDK asks the engine for its version while it is constructed
        # and, when that fails, leaves its connection pool open.
        raise error(f"no Docker engine answers: no socket at {host}; {SETUP_HINT}")
    try:
        client = docker.from_env()
    except docker.errors.DockerException as exc:
        raise error(f"no Docker engine answers: {exc}; {SETUP_HINT}") from exc
    try:
        client.ping()
    except docker.errors.DockerException as exc:
        client.close()
        raise error(f"no Docker engine answers: {exc}; {SETUP_HINT}") from exc
    return client


__all__ = ["connect"]
