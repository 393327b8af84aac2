"""Leader election through a coordination.k8s.io/v1 Lease, as client-go does it.

The holder renews ``spec.renewTime`` every ``renew`` seconds; anyone may take the Lease
once it is ``duration`` seconds old. Every write carries the resourceVersion read just
before it, so two candidates racing for an expired Lease cannot both win: the second
gets 409 Conflict. ``k8sco apply`` reads the same Lease to tell whether a controller runs.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from k8sco.errors import ClusterError, Conflict, NotFound
from k8sco.kube.client import LEASES, Cluster
from k8sco.render.pipeline import parse_timestamp


def _micro(seconds: float) -> str:
    moment = dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> float | None:
    return parse_timestamp(text) if text else None


def is_fresh(lease: Mapping[str, Any], now: float) -> bool:
    """True while the Lease's holder is within its duration (pure)."""
    spec = lease.get("spec") or {}
    renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
    holder = spec.get("holderIdentity")
    duration = spec.get("leaseDurationSeconds") or 15
    return bool(holder) and renewed is not None and now < renewed + duration


def read(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        lease: dict[str, Any] = cluster.request(
            "GET", f"{cluster.ns_path(LEASES, 'leases', namespace)}/{name}", retry=False
        )
        return lease
    except NotFound:
        return None


class LeaderElector:
    """Acquires and renews one Lease for ``identity``; ``leading`` is set while it holds it."""

    def __init__(
        self,
        cluster: Cluster,
        namespace: str,
        name: str,
        identity: str,
        *,
        duration: int = 15,
        renew: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cluster, self.namespace, self.name, self.identity = cluster, namespace, name, identity
        self.duration, self.renew, self.clock = duration, renew, clock
        self.leading = threading.Event()
        self._last_renew = 0.0

    @property
    def _path(self) -> str:
        return self.cluster.ns_path(LEASES, "leases", self.namespace)

    def try_acquire(self) -> bool:
        """One attempt to take or renew the Lease; True when this candidate holds it."""
        now = self.clock()
        try:
            lease = read(self.cluster, self.namespace, self.name)
            if lease is None:
                body = {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": self._spec(now, now, 0),
                }
                self.cluster.request("POST", self._path, body=body, retry=False)
            else:
                spec = lease.get("spec") or {}
                mine = spec.get("holderIdentity") == self.identity
                if not mine and is_fresh(lease, now):
                    self.leading.clear()
                    return False
                acquired = _parse(spec.get("acquireTime")) if mine else now
                transitions = int(spec.get("leaseTransitions") or 0) + (0 if mine else 1)
                lease["spec"] = self._spec(acquired or now, now, transitions)
                self.cluster.request("PUT", f"{self._path}/{self.name}", body=lease, retry=False)
        except (Conflict, NotFound):
            self.leading.clear()
            return False
        except ClusterError:
            # Cannot tell: keep leading only while the last renewal is still within duration.
            if now >= self._last_renew + self.duration:
                self.leading.clear()
            return self.leading.is_set()
        self._last_renew = now
        self.leading.set()
        return True

    def _spec(self, acquired: float, renewed: float, transitions: int) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.duration,
            "acquireTime": _micro(acquired),
            "renewTime": _micro(renewed),
            "leaseTransitions": transitions,
        }

    def run(self, stop: threading.Event) -> None:
        """Keep trying (every ``renew`` seconds) until ``stop``; releases the Lease at the end."""
        while not stop.is_set():
            self.try_acquire()
            stop.wait(self.renew)
        if self.leading.is_set():
            self.release()

    def release(self) -> None:
        """Give the Lease up so a standby takes over at once instead of after ``duration``."""
        self.leading.clear()
        try:
            lease = read(self.cluster, self.namespace, self.name)
            if lease and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                lease["spec"]["holderIdentity"] = None
                lease["spec"]["renewTime"] = None
                self.cluster.request("PUT", f"{self._path}/{self.name}", body=lease, retry=False)
        except ClusterError:
            pass  # the Lease expires on its own
