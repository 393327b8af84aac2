"""k8sco: pipelines as Python trees, run on Kubernetes or locally.

::

    import k8sco as co

    def pipeline() -> co.Serial:
        with co.Serial() as root:
            co.Exec("echo hello", name="hello")
        return root

The names below are the public API; everything else is private.
"""

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
from k8sco.tree import Exec, Node, Parallel, Serial

__version__ = "0.1.0"

__all__ = [
    "DecodeError",
    "Exec",
    "Image",
    "K8scoError",
    "LoadError",
    "Node",
    "Parallel",
    "PipelineError",
    "PipelineTypeError",
    "RunError",
    "Serial",
    "UsageError",
    "__version__",
    "main",
]


def main(default: object = None, **kwargs: object) -> None:
    """Command-line entry for a pipeline file: ``co.main(default=pipeline)``.

    ``python file.py`` prints the tree, ``python file.py --local`` runs it on this machine,
    ``python file.py FUNC --n=50 --local`` picks another function and passes it arguments.
    """
    from k8sco.cli.script import main as script_main  # click loads only for this path

    script_main(default, **kwargs)
