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
    │   └── DecodeError             a ``--name=value`` that does not decode by its hint
    └── RunError                    a run that could not be carried out (not a node failure)

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


class RunError(K8scoError):
    """A run that could not be carried out, e.g. a run directory that cannot be read."""


__all__ = [
    "DecodeError",
    "K8scoError",
    "LoadError",
    "PipelineError",
    "PipelineTypeError",
    "RunError",
    "UsageError",
]
