"""The controller as a process: its settings, logging, signals, health server and leader
election around :class:`~k8sco.kube.controller.Controller`. ``k8sco controller`` only parses
its flags into :class:`ControllerSettings` and calls :func:`run`.

Settings come from flags or, in the Deployment (``manifests/40-deployment.yaml``, the
chart), from environment variables. ``K8SCO_WATCH_NAMESPACES`` is read here rather than by
click, because click treats an empty variable as unset (click's ``Parameter.
resolve_envvar_value`` drops ""), which once made the shipped Deployment watch only its own
namespace.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from k8sco.data.kube import DataConfig
from k8sco.errors import UsageError
from k8sco.kube.client import Cluster
from k8sco.kube.controller import Controller
from k8sco.kube.lease import ALL_NAMESPACES, LeaderElector
from k8sco.kube.retention import Retention
from k8sco.render.constants import LEASE_NAME, SYSTEM_NAMESPACE
from k8sco.render.names import is_dns_label
from k8sco.render.podspec import ALLOW_DOCKER_ENV, docker_namespaces

WATCH_ENV = "K8SCO_WATCH_NAMESPACES"


@dataclass(frozen=True)
class ControllerSettings:
    """What ``k8sco controller`` was asked to do. ``namespaces``: None for every namespace,
    an empty list for the kubeconfig context's (or in-cluster: the pod's) namespace."""

    kubeconfig: str | None = None
    context: str | None = None
    namespaces: list[str] | None = None
    lease_namespace: str | None = None
    lease_name: str | None = None
    identity: str | None = None
    health_port: int | None = None
    log_level: str = "INFO"


def watched_namespaces(
    flag: str | None, all_namespaces: bool, env: Mapping[str, str]
) -> list[str] | None:
    """The namespaces to serve: None for all, [] for the context's own.

    ``-A`` or ``*`` (flag or ``K8SCO_WATCH_NAMESPACES``) means all; so does the variable set
    but empty, as the Deployment's comment has always said. The flag wins over the variable.
    """
    if all_namespaces:
        return None
    value = flag if flag is not None else env.get(WATCH_ENV)
    if value is None:
        return []
    names = [ns.strip() for ns in value.split(",") if ns.strip()]
    if not names or names == [ALL_NAMESPACES]:
        return None
    if ALL_NAMESPACES in names:
        source = "--namespace" if flag is not None else WATCH_ENV
        raise UsageError(f"{source}={value!r}: '*' (every namespace) cannot be combined with names")
    for name in names:
        if not is_dns_label(name):
            source = "--namespace" if flag is not None else WATCH_ENV
            raise UsageError(
                f"{source}={value!r}: {name!r} is not a namespace name (a DNS-1123 label)"
            )
    return names


def run(settings: ControllerSettings) -> None:
    """Run the controller until SIGTERM or SIGINT; releases the Lease on the way out."""
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Read at each Job's creation; checked here so that a bad value stops the start, not
    # every requires_docker node.
    docker_namespaces(os.environ.get(ALLOW_DOCKER_ENV))
    cluster = Cluster(settings.kubeconfig, settings.context, None, retries=8)
    watched = settings.namespaces
    if watched == []:
        watched = [cluster.namespace]
    me = settings.identity or f"{socket.gethostname()}-{secrets.token_hex(3)}"
    elector = LeaderElector(
        cluster,
        settings.lease_namespace or SYSTEM_NAMESPACE,
        settings.lease_name or LEASE_NAME,
        me,
        namespaces=watched,
    )
    ctl = Controller(
        cluster,
        watched,
        data=DataConfig.from_env(os.environ),
        retention=Retention.from_env(os.environ),
        workers=workers(os.environ),
        background_events=True,
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: ctl.stop.set())
    if settings.health_port is not None:
        serve_health(settings.health_port, ctl.stop, elector)
    where = "all namespaces" if watched is None else "namespaces " + ", ".join(watched)
    print(f"k8sco controller {me} watching {where}", file=sys.stderr, flush=True)
    ctl.run(elector=elector)


def serve_health(port: int, stop: threading.Event, elector: LeaderElector) -> ThreadingHTTPServer:
    """/healthz and /readyz: 200 while running (leader or standby), 503 once stopping."""

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = not stop.is_set()
            self.send_response(200 if ok else 503)
            self.end_headers()
            role = "leader" if elector.leading.is_set() else "standby"
            self.wfile.write(f"{'ok' if ok else 'stopping'} ({role})\n".encode())

        def log_message(self, *args: Any) -> None:
            pass  # probes every few seconds would drown the controller's own log

    server = ThreadingHTTPServer(("0.0.0.0", port), Health)
    threading.Thread(target=server.serve_forever, daemon=True, name="health").start()
    return server


def log_level(env: Mapping[str, str] = os.environ) -> str:
    return env.get("K8SCO_LOG_LEVEL", "INFO")


WORKERS_ENV = "K8SCO_WORKERS"
DEFAULT_WORKERS = 16
MAX_WORKERS = 64


def workers(env: Mapping[str, str] = os.environ) -> int:
    """How many Pipelines are reconciled at once (``K8SCO_WORKERS``, default 16): each
    Pipeline by one worker at a time, so one slow reconciliation holds up no other
    Pipeline while another worker is free. A reconciliation mostly waits for the API
    (its Job creates), so more workers than cores pay: 200 pipelines at once waited for a
    worker 10x less with 16 than with 4 (bench/many_pipelines.py). kube-controller-manager
    runs 5 Job syncs at once (``ConcurrentJobSyncs``), Argo 32 workflow workers."""
    text = env.get(WORKERS_ENV, "").strip()
    if not text:
        return DEFAULT_WORKERS
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_WORKERS:
        raise UsageError(
            f"{WORKERS_ENV}={text!r} is not a number of workers from 1 to {MAX_WORKERS}"
        )
    return count
