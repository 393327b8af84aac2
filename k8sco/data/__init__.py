"""``co.data``: objects shared between nodes, in Conducto's API.

``co.data.pipeline`` (alias ``co.temp_data``) holds a pipeline run's data, ``co.data.user``
(alias ``co.perm_data``) a user's, kept across pipelines. Both have ``gets``/``puts``,
``get``/``put``, ``delete``, ``exists``, ``size``, ``list``, ``url`` and the cache helpers
``save_cache``/``restore_cache``/``cache_exists``/``clear_cache``. Stores: the local
filesystem (``k8sco run``), an S3-compatible object store or a ReadWriteMany volume on a
cluster (:mod:`k8sco.data.stores`).
"""

from __future__ import annotations

from k8sco.data.api import perm_data, pipeline, temp_data, user

__all__ = ["perm_data", "pipeline", "temp_data", "user"]
