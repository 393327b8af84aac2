"""A protocol-faithful fake Kubernetes cluster for k8sco's tests and benchmarks.

It speaks the real HTTP/JSON API (for the official ``kubernetes`` client and kubectl) and
simulates the batch/v1 Job controller, the garbage collector and a kubelet that runs each
pod's command as a local process. See README.md.
"""

from .cluster import ClusterConfig, FakeCluster
from .errors import ApiError
from .faults import FaultConfig, Faults, RequestCounter
from .runners import (
    ContainerLaunch,
    ContainerProcess,
    ContainerRunner,
    Exited,
    InstantRunner,
    PathMap,
    ProcessRunner,
    RunnerError,
)

__all__ = [
    "ApiError",
    "ClusterConfig",
    "ContainerLaunch",
    "ContainerProcess",
    "ContainerRunner",
    "Exited",
    "FakeCluster",
    "FaultConfig",
    "Faults",
    "InstantRunner",
    "PathMap",
    "ProcessRunner",
    "RequestCounter",
    "RunnerError",
]
