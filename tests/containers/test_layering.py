"""Only k8sco.containers talks to Docker: no other module imports the docker SDK."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "k8sco"


def docker_imports(path: Path) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        if any(name == "docker" or name.startswith("docker.") for name in names):
            lines.append(node.lineno)
    return lines


def test_only_the_containers_package_imports_docker() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if "containers" not in path.relative_to(PACKAGE).parts
        for line in docker_imports(path)
    ]
    assert offenders == []
    assert docker_imports(PACKAGE / "containers" / "build.py")  # the check does find imports
