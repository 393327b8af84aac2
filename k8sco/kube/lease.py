"""Leader election through a coordination.k8s.io/v1 Lease, as client-go does it.

Modelled on client-go's ``tools/leaderelection/leaderelection.go`` (``tryAcquireOrRenew``,
``renew``) and ``tools/leaderelection/resourcelock/leaselock.go``:

- Every decision uses times observed on this machine, never the remote clock. A candidate
  records *when it saw the Lease record change* (``observedTime``) and may take the Lease only
  ``leaseDurationSeconds`` after that local moment; ``renewTime`` is written for people
  (``kubectl get lease``) and never compared with the local clock. That is what makes the
  election "tolerant to arbitrary clock skew" (client-go's ``leaderelection/doc.go``).
- The leader must renew within ``renew_deadline`` (shorter than the duration) or it stops
  acting: :attr:`LeaderElector.leading` turns false on its own at the deadline, even while
  the renewing thread is stuck in a request, so the controller's worker stops writing before
  a standby can take over.
- Every write carries the resourceVersion read just before it, so two candidates racing for
  an expired Lease cannot both win: the second gets 409 Conflict. There is no fencing: a
  short window with two leaders is made harmless by the controller's writes themselves
  (AlreadyExists on Job creation, resourceVersion-guarded status).

The holder also publishes which namespaces it serves (annotation ``k8sco.io/namespaces``:
``*`` or a comma-separated list), so that ``k8sco apply`` hands a Pipeline to it only when
it will run it (:func:`find_controller`).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from k8sco.errors import ClusterError, Conflict, NotFound, UsageError
from k8sco.kube.client import LEASES, Cluster

_log = logging.getLogger(__name__)

ANNOTATION_NAMESPACES = "k8sco.io/namespaces"
ALL_NAMESPACES = "*"

# client-go's defaults (leaderelection.go: LeaseDuration 15s, RenewDeadline 10s,
# RetryPeriod 2s), as kube-controller-manager uses them.
LEASE_DURATION = 15.0
RENEW_DEADLINE = 10.0
RETRY_PERIOD = 2.0
# client-go's JitterFactor: RenewDeadline must exceed it times RetryPeriod.
_JITTER = 1.2


def _micro(seconds: float) -> str:
    moment = dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _record(lease: Mapping[str, Any]) -> tuple[Any, ...]:
    """What client-go compares to notice a change (its ``observedRawRecord``): the holder's
    fields, not the resourceVersion (an unrelated metadata write is not a renewal)."""
    spec = lease.get("spec") or {}
    return (
        spec.get("holderIdentity"),
        spec.get("acquireTime"),
        spec.get("renewTime"),
        spec.get("leaseDurationSeconds"),
        spec.get("leaseTransitions"),
    )


def served_namespaces(lease: Mapping[str, Any]) -> list[str] | None:
    """The namespaces the Lease's holder serves (None: every namespace). A holder that
    publishes nothing (k8sco before 0.2) served only its own namespace."""
    meta = lease.get("metadata") or {}
    value = (meta.get("annotations") or {}).get(ANNOTATION_NAMESPACES)
    if value is None:
        return [str(meta.get("namespace", ""))]
    if value.strip() == ALL_NAMESPACES:
        return None
    return [ns.strip() for ns in value.split(",") if ns.strip()]


def read(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        lease: dict[str, Any] = cluster.request(
            "GET", f"{cluster.ns_path(LEASES, 'leases', namespace)}/{name}", retry=False
        )
        return lease
    except NotFound:
        return None


class Leadership:
    """Whether this candidate may act as leader: set by a successful renewal, and only until
    ``renew_deadline`` after it on the local clock (it lapses by itself). Offers the
    ``is_set``/``wait`` of a :class:`threading.Event`."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._until: float | None = None
        self._cond = threading.Condition()

    def extend(self, until: float) -> None:
        with self._cond:
            self._until = until
            self._cond.notify_all()

    def clear(self) -> None:
        with self._cond:
            self._until = None

    def is_set(self) -> bool:
        until = self._until
        return until is not None and self._clock() < until

    def wait(self, timeout: float | None = None) -> bool:
        """Block until set (True) or ``timeout`` real seconds have passed (False)."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self.is_set():
                remaining = None if end is None else end - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True


class LeaderElector:
    """Acquires and renews one Lease for ``identity``; ``leading`` is set while it holds it.

    ``duration`` (seconds) is how long a standby waits, after it last saw the record change,
    before taking the Lease; ``renew_deadline`` how long the leader keeps acting without a
    successful renewal; ``retry`` how often it tries. ``clock`` (monotonic seconds) measures
    all three; ``wall`` only stamps ``acquireTime``/``renewTime`` for people to read.
    ``namespaces`` (None: every one) is published on the Lease for ``k8sco apply``.
    """

    def __init__(
        self,
        cluster: Cluster,
        namespace: str,
        name: str,
        identity: str,
        *,
        duration: float = LEASE_DURATION,
        renew_deadline: float = RENEW_DEADLINE,
        retry: float = RETRY_PERIOD,
        namespaces: list[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        # The checks of client-go's NewLeaderElector.
        if not duration > renew_deadline:
            raise UsageError(
                f"lease duration {duration}s must be longer than the renew deadline "
                f"{renew_deadline}s"
            )
        if not renew_deadline > _JITTER * retry:
            raise UsageError(
                f"renew deadline {renew_deadline}s must be longer than {_JITTER} x the retry "
                f"period {retry}s"
            )
        self.cluster, self.namespace, self.name, self.identity = cluster, namespace, name, identity
        self.duration, self.renew_deadline, self.retry = duration, renew_deadline, retry
        self.namespaces = namespaces
        self.clock, self.wall = clock, wall
        self.leading = Leadership(clock)
        self._observed: tuple[Any, ...] | None = None
        self._observed_time = 0.0

    @property
    def _path(self) -> str:
        return self.cluster.ns_path(LEASES, "leases", self.namespace)

    def _observe(self, lease: Mapping[str, Any], now: float) -> None:
        record = _record(lease)
        if record != self._observed:
            self._observed, self._observed_time = record, now

    def try_acquire(self) -> bool:
        """One attempt to take or renew the Lease; True when this candidate holds it."""
        now = self.clock()
        # A request must not outlive the renew deadline, or a hung renewal would keep an
        # expired leader waiting instead of trying again.
        timeout = max(self.retry, 0.5)
        try:
            lease = self._get(timeout)
            if lease is None:
                body: dict[str, Any] = {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace},
                }
                self._stamp(body, None, takeover=False)
                written = self.cluster.request(
                    "POST", self._path, body=body, retry=False, timeout=timeout
                )
            else:
                self._observe(lease, now)
                spec = lease.get("spec") or {}
                holder = spec.get("holderIdentity")
                mine = holder == self.identity
                if holder and not mine and now < self._observed_time + self._duration_of(lease):
                    self.leading.clear()
                    return False
                self._stamp(lease, spec if mine else None, takeover=not mine)
                written = self.cluster.request(
                    "PUT", f"{self._path}/{self.name}", body=lease, retry=False, timeout=timeout
                )
        except (Conflict, NotFound):
            self.leading.clear()
            return False
        except ClusterError:
            # Cannot tell. Leadership lapses by itself at the renew deadline.
            return self.leading.is_set()
        self._observe(written, now)
        self.leading.extend(now + self.renew_deadline)
        return True

    def _get(self, timeout: float) -> dict[str, Any] | None:
        try:
            lease: dict[str, Any] = self.cluster.request(
                "GET", f"{self._path}/{self.name}", retry=False, timeout=timeout
            )
            return lease
        except NotFound:
            return None

    def _duration_of(self, lease: Mapping[str, Any]) -> float:
        # client-go waits the duration the holder wrote (its LeaderElectionRecord's
        # LeaseDurationSeconds), not its own.
        written = (lease.get("spec") or {}).get("leaseDurationSeconds")
        return float(written) if written else self.duration

    def _stamp(
        self, lease: dict[str, Any], mine: Mapping[str, Any] | None, *, takeover: bool
    ) -> None:
        """Write this candidate's record into ``lease``: a renewal (``mine``, the current
        spec) keeps ``acquireTime`` and the transition count; a takeover of an existing Lease
        counts one more transition, as client-go does."""
        wall = _micro(self.wall())
        old = lease.get("spec") or {}
        transitions = int(old.get("leaseTransitions") or 0) + (1 if takeover else 0)
        lease["spec"] = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(math.ceil(self.duration), 1),
            "acquireTime": (mine or {}).get("acquireTime") or wall,
            "renewTime": wall,
            "leaseTransitions": transitions,
        }
        meta = lease.setdefault("metadata", {})
        annotations = meta.get("annotations") or {}
        annotations[ANNOTATION_NAMESPACES] = (
            ALL_NAMESPACES if self.namespaces is None else ",".join(self.namespaces)
        )
        meta["annotations"] = annotations

    def run(self, stop: threading.Event) -> None:
        """Try every ``retry`` seconds until ``stop``; releases the Lease at the end."""
        while not stop.is_set():
            try:
                self.try_acquire()
            except Exception as exc:
                # A dead election thread leaves a controller that never leads again and never
                # exits (client-go's elector likewise retries until its context ends). Whatever
                # failed, leadership lapses by itself at the renew deadline; try again.
                _log.warning("lease %s/%s: renewal failed: %s", self.namespace, self.name, exc)
            stop.wait(self.retry)
        if self.leading.is_set():
            self.release()

    def release(self) -> None:
        """Give the Lease up so a standby takes over at once instead of after ``duration``
        (client-go's ``ReleaseOnCancel``)."""
        self.leading.clear()
        try:
            lease = self._get(max(self.retry, 0.5))
            if lease and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                lease["spec"]["holderIdentity"] = None
                lease["spec"]["renewTime"] = None
                self.cluster.request("PUT", f"{self._path}/{self.name}", body=lease, retry=False)
        except ClusterError:
            pass  # the Lease expires on its own


@dataclass(frozen=True)
class Verdict:
    """What :func:`find_controller` saw: whether a controller in the cluster will run a
    Pipeline of the namespace asked about, and why not when it will not."""

    alive: bool
    reason: str


def find_controller(
    cluster: Cluster,
    namespace: str,
    lease_namespace: str,
    lease_name: str,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    poll: float = 1.0,
) -> Verdict:
    """Whether a controller holds the Lease, is renewing it now, and serves ``namespace``.

    Liveness is seen, not computed: the record must change while we look (at most one lease
    duration plus a poll, on the local clock), as a standby candidate would judge it. The
    remote ``renewTime`` is never compared with the local clock, so a skewed client or
    controller clock cannot mislead it. No Lease, or a released one, answers at once.
    Reads only (``get`` on that one Lease is all the k8sco-user role grants, so no watch).
    """
    where = f"{lease_namespace}/{lease_name}"
    lease = read(cluster, lease_namespace, lease_name)
    if lease is None:
        return Verdict(False, f"there is no controller Lease {where}")
    if not (lease.get("spec") or {}).get("holderIdentity"):
        return Verdict(False, f"nobody holds the controller Lease {where}")
    served = served_namespaces(lease)
    if served is not None and namespace not in served:
        return Verdict(
            False,
            f"the cluster's controller serves only namespaces {', '.join(served)}, not {namespace}",
        )
    first = _record(lease)
    duration = float((lease.get("spec") or {}).get("leaseDurationSeconds") or LEASE_DURATION)
    deadline = clock() + duration + poll
    while clock() < deadline:
        sleep(poll)
        again = read(cluster, lease_namespace, lease_name)
        if again is None or not (again.get("spec") or {}).get("holderIdentity"):
            return Verdict(False, f"the controller Lease {where} was given up")
        if _record(again) != first:
            return Verdict(True, f"the controller holding {where} is renewing it")
    return Verdict(False, f"the controller Lease {where} was not renewed for {duration:.0f}s")
