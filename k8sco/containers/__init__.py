"""Images and containers: the only package of k8sco that talks to a Docker engine.

- :mod:`~k8sco.containers.context`: the generated Dockerfile, build context and input hash
  (no engine).
- :mod:`~k8sco.containers.build`: :class:`Builder`, a ``co.Image`` to a tagged image.
- :mod:`~k8sco.containers.distribute`: push to a registry, or ``kind load docker-image``.
- :mod:`~k8sco.containers.run`: one node's command in its image (``k8sco run --docker``).

Importing this package imports the docker SDK; the dispatcher and the pure core never do.
"""
