"""k8sco: pipelines as Python trees, run on Kubernetes or locally.

::

    import k8sco as co

    def pipeline() -> co.Serial:
        with co.Serial() as root:
            co.Exec("echo hello", name="hello")
        return root

The names below are the public API; everything else is private.
"""

# Conducto's `co.util` (magic_doc and the make*nodes helpers) is reachable as `co.util`,
# its `co.api` (Secrets) as `co.api`, and its `co.data` (pipeline, user) as `co.data`.
from k8sco import api, data, util
from k8sco._version import __version__
from k8sco.data import perm_data, temp_data
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
from k8sco.lazy import Lazy, lazy_py, lazy_shell
from k8sco.secrets import SecretRef
from k8sco.tree import Exec, Node, Parallel, Serial

__all__ = [
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
    "SecretRef",
    "Serial",
    "UsageError",
    "__version__",
    "api",
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
