"""The k8sco error tree.

Every error k8sco raises on purpose derives from :class:`K8scoError` and carries a
message a user can act on: it names the culprit (file, node path, parameter) and,
where there is one, the fix. Foreign exceptions (subprocess, kubernetes, docker) are
translated where they enter k8sco, with ``raise ... from``.

::

    K8scoError                      exit 1 unless a subclass says otherwise
    ├── UsageError                  bad input from the user: exit 2
    │   ├── PipelineError           (also ValueError) an invalid tree or parameter value
    │   ├── PipelineTypeError       (also TypeError) a value of the wrong type, a native
    │   │                           function called with arguments that do not fit it
    │   ├── LoadError               a pipeline file or function that cannot be loaded
    │   ├── DecodeError             a ``--name=value`` that does not decode by its hint
    │   └── RunDirError             a local run directory that is missing, incomplete or
    │                               damaged (``k8sco status``, ``k8sco logs``)
    ├── RunError                    a run that could not be carried out (not a node failure)
    ├── BuildError                  an image that could not be built, pushed or loaded: exit 2
    ├── DataError                   co.data: a store that refused or failed a request, a bad
    │   │                           name, no store configured
    │   ├── DataNotFound            (also FileNotFoundError) no object under that name
    │   └── DataConfigError         (also UsageError) a store setting that is not valid: exit 2
    └── ClusterError                the Kubernetes API refused or failed a request: exit 2
        ├── ClusterUnreachable      no answer from the API server (retryable)
        ├── NotFound                404
        ├── Conflict                409: AlreadyExists, or a stale resourceVersion
        └── Gone                    410: a watch or list from too old a resourceVersion

A node whose command fails is not an error of k8sco: it is a node in state ``error``.
"""

from __future__ import annotations


class K8scoError(Exception):
    """Base of every error k8sco raises on purpose."""

    exit_code: int = 1


class UsageError(K8scoError):
    """Bad input: the command line, a pipeline file, a node parameter. Exit code 2."""

    exit_code = 2


class PipelineError(UsageError, ValueError):
    """An invalid tree: a bad node name, a duplicate sibling, a parameter out of range."""


class PipelineTypeError(UsageError, TypeError):
    """A value of the wrong type for a node parameter or a native function's parameter."""


class LoadError(UsageError):
    """A pipeline file, module or function that cannot be found or imported."""


class DecodeError(UsageError):
    """A command-line value that does not decode by its parameter's type hint."""


class RunDirError(UsageError):
    """A local run directory that is incomplete or damaged: a file missing, unreadable or not
    what k8sco wrote."""


class RunError(K8scoError):
    """A run that could not be carried out, e.g. a run directory that cannot be written."""


class BuildError(K8scoError):
    """An image that could not be built, pushed or loaded into a cluster (no Docker engine,
    a failing Dockerfile step, an unreachable registry). The message ends with the tail of
    the build log. Exit code 2."""

    exit_code = 2


class DataError(K8scoError):
    """``co.data``: a store that refused or failed a request, an object name that is not
    valid, or no store to use (``co.data.pipeline`` outside a pipeline)."""


class DataNotFound(DataError, FileNotFoundError):
    """No object under that name (a ``FileNotFoundError`` too, as Conducto's local store
    raised)."""


class DataConfigError(DataError, UsageError):
    """A data store setting (``K8SCO_DATA_STORE`` and the like) that is not valid: bad input,
    exit code 2."""


class ClusterError(K8scoError):
    """The Kubernetes API refused or failed a request. Exit code 2.

    ``status`` is the HTTP status (0 when the server could not be reached), ``reason`` the
    Status reason (``AlreadyExists``, ``Forbidden``...), ``retryable`` whether trying again
    may succeed (429, 5xx, no answer), ``retry_after`` the server's Retry-After in seconds.
    """

    exit_code = 2
    status: int = 0
    reason: str = ""
    retryable: bool = False
    retry_after: float | None = None


class ClusterUnreachable(ClusterError):
    """No answer from the API server: a wrong address, a network fault, a timeout."""

    retryable = True


class NotFound(ClusterError):
    """404: the object, its kind (a missing CRD) or its namespace does not exist."""

    status = 404


class Conflict(ClusterError):
    """409: the object already exists, or it changed since it was read."""

    status = 409


class Gone(ClusterError):
    """410: a watch or list asked for a resourceVersion the server no longer has."""

    status = 410


__all__ = [
    "BuildError",
    "ClusterError",
    "ClusterUnreachable",
    "Conflict",
    "DataConfigError",
    "DataError",
    "DataNotFound",
    "DecodeError",
    "Gone",
    "K8scoError",
    "LoadError",
    "NotFound",
    "PipelineError",
    "PipelineTypeError",
    "RunDirError",
    "RunError",
    "UsageError",
]
