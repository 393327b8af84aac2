"""The ``pipelines.k8sco.io`` CustomResourceDefinition, as data.

Pure. ``manifests/10-crd.yaml`` and ``charts/k8sco/crds/`` are this dict written out (a test
keeps them equal; ``K8SCO_REGEN_GOLDEN=1`` rewrites them), and the tests validate every
rendered Pipeline against its schema.

Status design: one record per touched Exec node in ``status.nodes``, keyed by the node's
pre-order index in the tree (the engine's ``Graph`` numbering, fixed for a given spec), with
one-letter keys (see :func:`k8sco.render.pipeline.node_record`). A declared schema rather
than ``x-kubernetes-preserve-unknown-fields``: the apiserver then rejects a malformed status
write instead of storing it, ``kubectl explain`` documents the fields, and the records stay
at about 40 bytes, so 10,000 finished nodes take about 420 KB. The map is atomic for
server-side apply, so managedFields holds one entry for it rather than one per node. What
does not fit into 1 MiB (a compressed tree over 256 KiB, reasons, records of very large
pipelines) lives in ConfigMaps the Pipeline owns, named by ``spec.treeRef`` and
``status.overflow`` (:mod:`k8sco.render.overflow`).
"""

from __future__ import annotations

from typing import Any

from k8sco.engine import State
from k8sco.render.constants import API_GROUP, CRD_NAME, KIND, PLURAL
from k8sco.render.pipeline import PHASES

VERSION = "v1alpha1"
SHORT_NAMES = ("pl", "pipe")

_INT = {"type": "integer"}


def _spec_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "The pipeline as submitted: its tree and how to run it.",
        "required": ["k8scoVersion"],
        # The tree comes in exactly one of three forms.
        "oneOf": [{"required": ["tree"]}, {"required": ["treeGzip"]}, {"required": ["treeRef"]}],
        "properties": {
            "schemaVersion": {
                "type": "integer",
                "minimum": 1,
                "description": "The lowest version of this spec format that can read it (1 "
                "when absent); a controller that reads fewer versions fails the Pipeline.",
            },
            "tree": {
                "type": "string",
                "description": "The serialised tree (JSON), for trees up to 64 KiB.",
            },
            "treeGzip": {
                "type": "string",
                "format": "byte",
                "description": "The serialised tree, gzip-compressed and base64-encoded.",
            },
            "treeRef": {
                "type": "object",
                "description": "A tree too large for the spec: its gzip bytes are in the "
                "ConfigMaps <name>-tree-<uid tag>-<i> owned by this Pipeline.",
                "required": ["parts", "bytes", "sha256"],
                "properties": {
                    "parts": {"type": "integer", "minimum": 1, "description": "ConfigMaps"},
                    "bytes": {"type": "integer", "minimum": 1, "description": "gzip bytes"},
                    "sha256": {"type": "string", "description": "of the gzip bytes, in hex"},
                },
            },
            "k8scoVersion": {
                "type": "string",
                "description": "The k8sco version that rendered this object.",
            },
            "codeRoot": {
                "type": "string",
                "description": "The working directory of every node: where the code is.",
            },
            "execNodes": {
                "type": "integer",
                "minimum": 0,
                "description": "How many Exec nodes the tree has.",
            },
            "image": {
                "type": "string",
                "description": "The image of every node, overriding the nodes' own.",
            },
            "images": {
                "type": "object",
                "description": "Built image references by the key of their co.Image.",
                "additionalProperties": {"type": "string"},
            },
            "stop": {
                "type": "boolean",
                "description": "Stop: delete running Jobs, record their nodes killed.",
            },
            "rerun": {
                "type": "object",
                "description": "Rerun the failed and killed nodes under path, once per token.",
                "properties": {"path": {"type": "string"}, "token": {"type": "string"}},
            },
            "controls": {
                "type": "array",
                "description": (
                    "Live controls (k8sco reset, skip, unskip, modify), applied in order, "
                    "each once: skips and modifications change the tree (for what starts "
                    "afterwards), a reset sets the nodes under path back to pending."
                ),
                "items": {
                    "type": "object",
                    "required": ["action", "path"],
                    "properties": {
                        "action": {
                            "type": "string",
                            "enum": ["reset", "skip", "unskip", "modify"],
                        },
                        "path": {"type": "string"},
                        "token": {"type": "string"},
                        "set": {
                            "type": "object",
                            "description": "modify: parameter values by name.",
                            "x-kubernetes-preserve-unknown-fields": True,
                        },
                        "command": {"type": "string", "description": "modify: the new command."},
                    },
                },
            },
        },
    }


def _status_schema() -> dict[str, Any]:
    states = [s.value for s in State]
    return {
        "type": "object",
        "description": "Written by the controller.",
        "properties": {
            "phase": {
                "type": "string",
                "enum": list(PHASES),
                "description": "The pipeline's state: " + ", ".join(PHASES) + ".",
            },
            "progress": {
                "type": "string",
                "description": "Finished Exec nodes out of all Exec nodes, e.g. '3/7'.",
            },
            "counts": {
                "type": "object",
                "description": "Exec nodes in each state.",
                "properties": {s: {"type": "integer", "minimum": 0} for s in states},
            },
            "startTime": {"type": "string", "format": "date-time"},
            "completionTime": {"type": "string", "format": "date-time"},
            "message": {"type": "string"},
            "observedGeneration": {"type": "integer", "format": "int64"},
            "overflow": {
                "type": "object",
                "description": "Node records kept in the status ConfigMaps "
                "<name>-status-<uid tag>-<shard> owned by this Pipeline (level 1: their "
                "reasons; level 2: all of them).",
                "properties": {
                    "level": {"type": "integer", "minimum": 0, "maximum": 2},
                    "shards": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                    "digests": {
                        "type": "object",
                        "description": "A digest of each status ConfigMap's records.",
                        "additionalProperties": {"type": "string"},
                    },
                },
            },
            "rerunToken": {
                "type": "string",
                "description": "The spec.rerun token last carried out.",
            },
            "controlToken": {
                "type": "string",
                "description": "The token of the last spec.controls entry carried out.",
            },
            "lazy": {
                "type": "object",
                "description": (
                    "co.Lazy expansions by Lazy node path: the tree its Generate Job (uid "
                    "'job') printed, gzip+base64 ('tree') or, when it does not fit, in "
                    "ConfigMaps the Pipeline owns ('ref': parts, bytes, sha256 of the gzip "
                    "bytes), spliced in to make the tree that 'nodes' is indexed by; or the "
                    "uid of a Generate Job of an earlier run still being deleted ('held')."
                ),
                "additionalProperties": {
                    "type": "object",
                    "properties": {
                        "job": {"type": "string"},
                        "tree": {"type": "string"},
                        "ref": {
                            "type": "object",
                            "properties": {
                                "parts": {"type": "integer"},
                                "bytes": {"type": "integer"},
                                "sha256": {"type": "string"},
                            },
                        },
                        "held": {"type": "string"},
                    },
                },
            },
            "nodes": {
                "type": "object",
                "description": (
                    "Exec nodes that have been started, by their pre-order index in the "
                    "tree (the root is 0). Nodes not listed are pending."
                ),
                # One entry in managedFields for the whole map instead of one per node
                # (about 45 bytes each: 450 KB more at 10,000 nodes).
                "x-kubernetes-map-type": "atomic",
                "additionalProperties": {
                    "type": "object",
                    "required": ["s"],
                    "properties": {
                        "s": {"type": "string", "enum": states, "description": "state"},
                        "a": {**_INT, "description": "attempts, when not 1"},
                        "t": {**_INT, "description": "start, seconds after startTime"},
                        "f": {**_INT, "description": "finish, seconds after startTime"},
                        "x": {**_INT, "description": "exit code, unless 0"},
                        "r": {"type": "string", "description": "reason for the state"},
                        "c": {**_INT, "description": "retries by callback (co.callback)"},
                        "m": {**_INT, "description": "memory bytes of this attempt, if changed"},
                        "h": {
                            "type": "array",
                            "description": "a summary of each earlier attempt",
                            "items": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                        },
                    },
                },
            },
            "notify": {
                "type": "object",
                "description": (
                    "Notifications of callbacks (co.callback) decided and not yet known to "
                    "be sent, by idempotency key; the controller removes each once sent."
                ),
                "additionalProperties": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                },
            },
        },
    }


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition of ``Pipeline`` (apiextensions.k8s.io/v1)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": CRD_NAME,
            "labels": {"app.kubernetes.io/name": "k8sco", "app.kubernetes.io/part-of": "k8sco"},
        },
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "plural": PLURAL,
                "singular": KIND.lower(),
                "kind": KIND,
                "listKind": f"{KIND}List",
                "shortNames": list(SHORT_NAMES),
                "categories": ["k8sco"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                        {
                            "name": "Progress",
                            "type": "string",
                            "jsonPath": ".status.progress",
                            "description": "finished/total Exec nodes",
                        },
                        {
                            "name": "Running",
                            "type": "integer",
                            "jsonPath": ".status.counts.running",
                            "priority": 1,
                        },
                        {
                            "name": "Failed",
                            "type": "integer",
                            "jsonPath": ".status.counts.error",
                            "priority": 1,
                        },
                        {
                            "name": "Message",
                            "type": "string",
                            "jsonPath": ".status.message",
                            "priority": 1,
                        },
                        # Any printer column hides the default Age column, so it is listed.
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "A k8sco pipeline: a tree of Serial, Parallel and "
                            "Exec nodes, run as one Job per Exec node.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": _spec_schema(),
                                "status": _status_schema(),
                            },
                        }
                    },
                }
            ],
        },
    }


__all__ = ["SHORT_NAMES", "VERSION", "crd"]
