"""Importing the user's code: a Python file by its path, or a module by its dotted name.

Stdlib only and light: the dispatcher uses it once per node, ``k8sco run`` to load a
pipeline file. A file is imported as a module, never as ``__main__``, so its
``if __name__ == "__main__":`` block does not run.

Errors are :class:`~k8sco.errors.LoadError` naming the file or module. When the user's code
itself raised while being imported (a syntax error, a missing dependency, any exception),
that exception is the ``__cause__``, so a caller can show its traceback after the one-line
message; when the file or module is simply not there, there is no cause.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from types import ModuleType

from k8sco.errors import LoadError

# The files being imported by import_file, innermost last: a `co.main()` a file calls at top
# level (outside an `if __name__ == "__main__":` guard) must do nothing then.
_importing: list[str] = []


def importing() -> bool:
    """True while :func:`import_file` or :func:`import_module` runs user code's top level
    (k8sco's one "importing" flag: ``co.main`` checks it)."""
    return bool(_importing)


def add_to_path(directory: str) -> None:
    """Put ``directory`` first on ``sys.path`` (once), so the code in it can be imported."""
    directory = os.path.abspath(directory)
    if directory in sys.path:
        sys.path.remove(directory)
    sys.path.insert(0, directory)


def import_file(path: str) -> ModuleType:
    """Import the Python file at ``path`` (relative to the current directory) as a module.

    The file's directory goes first on ``sys.path``, so ``import helpers`` finds its
    neighbours. The module is named after the file when that name is free, so the file's
    own ``import primes`` elsewhere, pickle and dataclasses see the same module; otherwise it
    gets a private name.
    """
    file = os.path.abspath(path)
    if not os.path.isfile(file):
        what = "is a directory" if os.path.isdir(file) else "no such file"
        raise LoadError(f"{path}: {what} (in {os.getcwd()})")
    add_to_path(os.path.dirname(file))
    name = module_name(file)
    existing = sys.modules.get(name)
    if existing is not None:  # imported already, e.g. by a sibling the first file imported
        return existing
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise LoadError(f"{path}: cannot be imported as Python (use a .py file)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it, as `import` does (for dataclasses, cycles)
    _importing.append(file)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise LoadError(f"{path}: cannot be imported: {_one_line(exc)}") from exc
    finally:
        _importing.pop()
    return module


def module_name(file: str) -> str:
    """The name :func:`import_file` gives the module of ``file`` (an absolute path)."""
    stem = os.path.splitext(os.path.basename(file))[0]
    if stem.isidentifier():
        existing = sys.modules.get(stem)
        if existing is None or _same_file(getattr(existing, "__file__", None), file):
            return stem
    import zlib  # a shared library to load: only for the rare file that needs this name

    return f"_k8sco_file_{zlib.crc32(file.encode('utf-8', 'surrogateescape')):08x}"


def _same_file(a: str | None, b: str) -> bool:
    return a is not None and os.path.abspath(a) == b


def import_module(name: str) -> ModuleType:
    """Import ``package.module`` by name, from ``sys.path``."""
    _importing.append(name)  # its top-level co.main() must do nothing, as for a file
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        # The module itself (or its package) is missing, as opposed to something it imports.
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise LoadError(f"{name}: no module named {exc.name!r} (in {os.getcwd()})") from None
        raise LoadError(f"{name}: cannot be imported: {_one_line(exc)}") from exc
    except ValueError as exc:  # "", ".x": not a module name
        raise LoadError(f"{name!r} is not a module name: {exc}") from None
    except Exception as exc:
        raise LoadError(f"{name}: cannot be imported: {_one_line(exc)}") from exc
    finally:
        _importing.pop()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
