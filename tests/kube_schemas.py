"""Schema checks shared by the render, manifest and chart tests.

``validate_k8s`` checks a built-in object with kubernetes-validate in strict mode against
Kubernetes 1.30 (the oldest version k8sco supports) and the newest version it ships;
``validate_pipeline`` checks a Pipeline against the CRD's own openAPIV3Schema.
Set ``K8SCO_REGEN_GOLDEN=1`` to rewrite golden files instead of comparing with them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
from kubernetes_validate.utils import latest_version

REPO = Path(__file__).resolve().parent.parent
REGEN = os.environ.get("K8SCO_REGEN_GOLDEN") == "1"
OLDEST = "1.30"
NEWEST = latest_version()
VERSIONS = (OLDEST, NEWEST)


def validate_k8s(obj: dict[str, Any]) -> None:
    """Raise AssertionError naming the object, the version and the field if ``obj`` is not a
    valid object of its kind (unknown fields included) in both versions."""
    for version in VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            name = obj.get("metadata", {}).get("name")
            raise AssertionError(
                f"{obj.get('kind')}/{name} is not valid in Kubernetes {version}: "
                f"{where}: {exc.message}"
            ) from None


def crd_schema() -> dict[str, Any]:
    from k8sco.render.crd import crd

    version = crd()["spec"]["versions"][0]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def validate_pipeline(obj: dict[str, Any]) -> None:
    """Raise if ``obj`` does not validate against the Pipeline CRD's openAPIV3Schema.

    The structural schema is a JSON schema apart from the ``x-kubernetes-*`` keys, which
    jsonschema ignores. ``metadata`` is declared only as an object (the apiserver checks it).
    """
    jsonschema.Draft7Validator(crd_schema()).validate(obj)


def podspec_schema(version: str = OLDEST) -> dict[str, Any]:
    """The PodSpec schema of ``version`` as k8sco ships it in ``podspec.schema.json``: the
    strict kubernetes-validate definitions reachable from PodSpec, without descriptions."""
    root = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    data = json.loads((root / f"v{version}.0-local-strict" / "_definitions.json").read_text())
    defs = data["$defs"]
    seen: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    name = value.rsplit("/", 1)[-1]
                    if name not in seen:
                        seen.add(name)
                        walk(defs[name])
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: strip(v)
                for k, v in node.items()
                if not (k == "description" and isinstance(v, str)) and not k.startswith("x-")
            }
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    root_name = "io.k8s.api.core.v1.PodSpec"
    seen.add(root_name)
    walk(defs[root_name])
    return {
        "kubernetes": version,
        "generatedBy": "tests/kube_schemas.py:podspec_schema (K8SCO_REGEN_GOLDEN=1 to update)",
        "definitions": {name: strip(defs[name]) for name in sorted(seen)},
    }


def golden(path: Path, text: str) -> None:
    """Compare ``text`` with the golden file ``path`` (rewrite it when regenerating)."""
    if REGEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"golden file {path} is missing; create it with K8SCO_REGEN_GOLDEN=1"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, (
        f"{path.relative_to(REPO)} differs from the output; if the change is intended, "
        "regenerate with K8SCO_REGEN_GOLDEN=1 and review the diff"
    )
