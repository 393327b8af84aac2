"""``k8sco ui``: a web page over the same state as ``k8sco status`` and ``k8sco logs``.

- :mod:`k8sco.ui.views` (pure): a tree, its recorded states and a node, as the JSON the page
  reads;
- :mod:`k8sco.ui.sources`: where pipelines come from (local run directories, a cluster's
  Pipelines through :mod:`k8sco.kube`), how their changes are noticed and their controls run;
- :mod:`k8sco.ui.server`: the HTTP server (standard library), its server-sent events and its
  guards against cross-site requests;
- ``static/``: the page (plain HTML, CSS and JavaScript, shipped in the wheel).
"""
