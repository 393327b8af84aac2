"""The local runner: pipelines run as child processes on this machine (``k8sco run``)."""
