"""The public API is what ``k8sco.__all__`` lists; this pins it (as httpx does), so a name
is added to or dropped from it on purpose."""

from __future__ import annotations

import subprocess
import sys
import types

import k8sco

PUBLIC = [
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


def test_all_is_the_pinned_sorted_list() -> None:
    assert k8sco.__all__ == PUBLIC
    assert k8sco.__all__ == sorted(k8sco.__all__)


def test_every_exported_name_exists() -> None:
    missing = [name for name in k8sco.__all__ if not hasattr(k8sco, name)]
    assert missing == []


def test_every_public_name_of_the_package_is_exported() -> None:
    # Submodules (k8sco.tree, k8sco.native, ...) become attributes once imported; they are
    # reachable, but not part of `import k8sco as co`.
    # dir(), not vars(): the Conducto extras are loaded on first use (k8sco.__getattr__).
    public = sorted(
        name
        for name in dir(k8sco)
        if not name.startswith("_") and not isinstance(getattr(k8sco, name), types.ModuleType)
    )
    # Conducto's `co.util`, `co.api`, `co.data` and `co.callback` are modules, on purpose
    modules = {"api", "callback", "data", "util"}
    assert public == [name for name in PUBLIC if not name.startswith("_") and name not in modules]


def test_the_dispatchers_import_path_leaves_the_conducto_extras_out() -> None:
    # `k8sco call` imports the package once per node: co.data, co.api, co.util and co.Lazy
    # (with the engine) load only when a pipeline uses them.
    probe = (
        "import sys, k8sco._entry, k8sco.dispatch; "
        "print(sorted(m for m in sys.modules if m.split('.')[:2] in "
        "(['k8sco', 'data'], ['k8sco', 'api'], ['k8sco', 'util'], ['k8sco', 'lazy'], "
        "['k8sco', 'engine'])))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert k8sco.Lazy.__module__ == "k8sco.lazy"
    assert k8sco.data.pipeline is k8sco.temp_data
