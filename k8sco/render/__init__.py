"""The renderer: a pipeline tree in, Kubernetes objects out, as plain dicts and YAML.

Pure: no cluster, no clock, no environment; the same tree and arguments give the same bytes.
The controller creates each Job with :func:`render_job` (or :func:`job_for` from a Pipeline
read back from the cluster), so it creates exactly what ``k8sco render`` prints.

- :mod:`~k8sco.render.names`: Job names, DNS-1123 and deterministic.
- :mod:`~k8sco.render.jobs`: one Exec node's batch/v1 Job.
- :mod:`~k8sco.render.podspec`: the ``pod_spec`` escape hatch and Pod Security checks.
- :mod:`~k8sco.render.pipeline`: the Pipeline object, its tree encoding and status records.
- :mod:`~k8sco.render.crd`: the Pipeline CustomResourceDefinition.
- :mod:`~k8sco.render.emit`: fast block-style YAML.
"""

from k8sco.render.constants import CODE_ROOT, DEFAULT_IMAGE, RUN_AS_USER
from k8sco.render.emit import dump, dump_all
from k8sco.render.jobs import image_key, render_job
from k8sco.render.names import check_pipeline_name, job_name, pipeline_name_from
from k8sco.render.pipeline import (
    decode_tree,
    encode_tree,
    job_for,
    render_all,
    render_pipeline,
    render_status,
)

__all__ = [
    "CODE_ROOT",
    "DEFAULT_IMAGE",
    "RUN_AS_USER",
    "check_pipeline_name",
    "decode_tree",
    "dump",
    "dump_all",
    "encode_tree",
    "image_key",
    "job_for",
    "job_name",
    "pipeline_name_from",
    "render_all",
    "render_job",
    "render_pipeline",
    "render_status",
]
