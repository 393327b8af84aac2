"""The public API is what ``k8sco.__all__`` lists; this pins it (as httpx does), so a name
is added to or dropped from it on purpose."""

from __future__ import annotations

import types

import k8sco

PUBLIC = [
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


def test_all_is_the_pinned_sorted_list() -> None:
    assert k8sco.__all__ == PUBLIC
    assert k8sco.__all__ == sorted(k8sco.__all__)


def test_every_exported_name_exists() -> None:
    missing = [name for name in k8sco.__all__ if not hasattr(k8sco, name)]
    assert missing == []


def test_every_public_name_of_the_package_is_exported() -> None:
    # Submodules (k8sco.tree, k8sco.native, ...) become attributes once imported; they are
    # reachable, but not part of `import k8sco as co`.
    public = sorted(
        name
        for name, value in vars(k8sco).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    )
    # Conducto's `co.util`, `co.api` and `co.data` are modules, on purpose
    modules = {"api", "data", "util"}
    assert public == [name for name in PUBLIC if not name.startswith("_") and name not in modules]
