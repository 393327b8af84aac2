"""The command line: ``k8sco`` (click, :mod:`k8sco.cli.app`) and ``co.main`` (:mod:`.script`)."""
