"""k8sco: pipelines as Python trees, run on Kubernetes or locally.

::

    import k8sco as co

    def pipeline() -> co.Serial:
        with co.Serial() as root:
            co.Exec("echo hello", name="hello")
        return root

The names below are the public API; everything else is private.
"""

import typing

from k8sco._version import __version__
from k8sco.errors import (
    DecodeError,
    K8scoError,
    LoadError,
    PipelineError,
    PipelineTypeError,
    RunError,
    UsageError,
)
from k8sco.image import Image
from k8sco.secrets import SecretRef
from k8sco.tree import Exec, Node, Parallel, Serial

if typing.TYPE_CHECKING:
    from k8sco import api, callback, data, util
    from k8sco.data import perm_data, temp_data
    from k8sco.lazy import Lazy, lazy_py, lazy_shell
    from k8sco.params import ContainerReuseContext, SameContainer

# Conducto's `co.util`, `co.api` and `co.data` (modules) and `co.Lazy` are loaded on first
# use (PEP 562): `k8sco call`, which imports this package once per node, never needs them.
_ON_DEMAND = {
    "api": ("k8sco.api", None),
    "callback": ("k8sco.callback", None),
    "data": ("k8sco.data", None),
    "util": ("k8sco.util", None),
    "perm_data": ("k8sco.data", "perm_data"),
    "temp_data": ("k8sco.data", "temp_data"),
    "Lazy": ("k8sco.lazy", "Lazy"),
    "lazy_py": ("k8sco.lazy", "lazy_py"),
    "lazy_shell": ("k8sco.lazy", "lazy_shell"),
    "ContainerReuseContext": ("k8sco.params", "ContainerReuseContext"),
    "SameContainer": ("k8sco.params", "SameContainer"),
}


def __getattr__(name: str) -> object:
    try:
        module_name, attr = _ON_DEMAND[name]
    except KeyError:
        raise AttributeError(f"module 'k8sco' has no attribute {name!r}") from None
    import importlib

    value: object = importlib.import_module(module_name)
    if attr is not None:
        value = getattr(value, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_ON_DEMAND))


__all__ = [
    "ContainerReuseContext",
    "DecodeError",
    "Exec",
    "Image",
    "K8scoError",
    "Lazy",
    "LoadError",
    "Node",
    "Parallel",
    "PipelineError",
    "PipelineTypeError",
    "RunError",
    "SameContainer",
    "SecretRef",
    "Serial",
    "UsageError",
    "__version__",
    "api",
    "callback",
    "data",
    "lazy_py",
    "lazy_shell",
    "main",
    "perm_data",
    "temp_data",
    "util",
]


def main(default: object = None, **kwargs: object) -> None:
    """Command-line entry for a pipeline file: ``co.main(default=pipeline)``.

    ``python file.py`` prints the tree, ``python file.py --local`` runs it on this machine,
    ``python file.py FUNC --n=50 --local`` picks another function and passes it arguments.
    """
    from k8sco.cli.script import main as script_main  # click loads only for this path

    script_main(default, **kwargs)
