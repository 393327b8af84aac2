"""FakeCluster: the API server, the job controller, the garbage collector and one node,
started and stopped together."""

from __future__ import annotations

import dataclasses
import math
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .admission import DenyRule
from .errors import ApiError
from .events import EventRecorder
from .faults import Faults, RequestCounter
from .gc import GarbageCollector
from .images import ImageStore
from .jobcontroller import JobController, JobControllerConfig
from .kubelet import Kubelet
from .loops import ApiFirst
from .quota import QuotaController
from .rbac import AggregationController, Rbac, bootstrap_policy
from .registry import Registry, WriteContext
from .resources import Resources
from .routes import Api
from .runners import ContainerRunner, ProcessRunner
from .scheduling import format_capacity, parse_resources
from .server import HttpServer
from .store import Store, clone
from .watch import Watch

T = TypeVar("T")


@dataclass(frozen=True)
class ClusterConfig:
    """Options of a FakeCluster; times are in seconds."""

    host: str = "127.0.0.1"
    port: int = 0  # 0: an ephemeral port
    kubelet: bool = True  # False: pods are never scheduled nor run
    runner: ContainerRunner | None = None  # default: ProcessRunner(path_map, base_env, ...)
    path_map: Mapping[str, str] = field(default_factory=dict)  # container path prefix → host dir
    base_env: Mapping[str, str] | None = None  # process environment under the pod's env
    default_working_dir: str | None = None  # container path used when workingDir is unset
    node_name: str = "fakenode"
    pod_backoff_base: float = 0.1  # Job pod re-creation back-off (the real one: 10 s)
    pod_backoff_max: float = 6.0  # its cap (the real one: 600 s)
    # How long the Job controller lets a Job's pod events and status updates gather before
    # it syncs the Job (the real syncJobBatchPeriod: 1 s).
    job_sync_batch_period: float = 0.05
    # Cap on pod termination grace periods; None: no cap (the pod's own, 30 s by default).
    max_grace_seconds: float | None = 3.0
    restart_delay: float = 0.1  # first container restart back-off (OnFailure / Always)
    history_window: int = 10_000  # watch events kept; older resourceVersions get 410
    bookmark_interval: float = 1.0  # between BOOKMARKs (the real apiserver: about 60 s)
    watch_timeout: float = 1800.0  # watches without timeoutSeconds end after this
    log_dir: str | None = None  # where container logs go; default: a temporary directory
    namespaces: tuple[str, ...] = ("default", "kube-system", "kube-public", "kube-node-lease")
    seed: int | None = None  # for generated names
    gc_delay: float = 2.0  # how late the GC deletes dependents of a deleted owner (Background)
    # Images on the node (None: every image is present) and images a pull can fetch (empty:
    # no registry is reachable). Names are normalised: "busybox" is
    # "docker.io/library/busybox:latest".
    node_images: frozenset[str] | None = None
    registry_images: frozenset[str] = frozenset()
    image_pull_backoff: float = 1.0  # first image pull back-off, doubling (the real one: 10 s)
    # What the node offers to pods' resource requests (the scheduler's NodeResourcesFit).
    node_capacity: Mapping[str, str] = field(
        default_factory=lambda: {"cpu": "64", "memory": "256Gi", "pods": "110"}
    )
    opaque_resource_versions: bool = True  # resourceVersions that do not parse as numbers
    # > 0: API requests go first, the simulated controllers' and kubelet's work waits for
    # them, each item at most this long (loops.ApiFirst). Benchmarks set it; tests do not.
    api_first: float = 0.0

    def __post_init__(self) -> None:
        # Checked here, where a test or a benchmark sets them: an infinite time crashed the
        # loop threads (Condition.wait raises OverflowError) and a negative one or NaN
        # quietly turned a simulated delay off.
        for name in _TIMES:
            value = getattr(self, name)
            if value is None and name == "max_grace_seconds":
                continue
            if not (isinstance(value, int | float) and 0 <= value < math.inf):
                raise ValueError(f"ClusterConfig.{name}: {value!r} is not a time from 0 (s)")
        if self.bookmark_interval == 0:  # a watch would send nothing but bookmarks
            raise ValueError("ClusterConfig.bookmark_interval: 0 is not a time above 0 (s)")


# ClusterConfig's times in seconds.
_TIMES = (
    "pod_backoff_base",
    "pod_backoff_max",
    "job_sync_batch_period",
    "max_grace_seconds",
    "restart_delay",
    "bookmark_interval",
    "watch_timeout",
    "gc_delay",
    "image_pull_backoff",
    "api_first",
)


class FakeCluster:
    """A fake Kubernetes cluster on 127.0.0.1, for the official client and kubectl.

    ``with FakeCluster(path_map={"/app": str(tmp_path)}) as cluster:
    cluster.write_kubeconfig(path)`` — see README.md for the whole API.
    """

    def __init__(self, config: ClusterConfig | None = None, **options: Any) -> None:
        self.config = dataclasses.replace(config or ClusterConfig(), **options)
        cfg = self.config
        self.errors: list[str] = []  # tracebacks from the controllers' loops
        self.store = Store(cfg.history_window, opaque_rvs=cfg.opaque_resource_versions)
        self.resources = Resources()
        self.registry = Registry(self.store, self.resources, cfg.seed)
        self.faults = Faults()
        self.requests = RequestCounter()
        self.closing = threading.Event()
        self._own_log_dir = cfg.log_dir is None
        self.log_dir = Path(cfg.log_dir or tempfile.mkdtemp(prefix="fakecluster-logs-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        recorder = EventRecorder(self.registry)
        self.job_controller = JobController(
            self.registry,
            recorder,
            self.errors,
            JobControllerConfig(
                cfg.pod_backoff_base, cfg.pod_backoff_max, cfg.job_sync_batch_period
            ),
        )
        self.gc = GarbageCollector(self.registry, self.errors, cfg.gc_delay)
        self.quota = QuotaController(self.registry, self.errors)
        self.rbac = Rbac(self.store)
        self.aggregation = AggregationController(self.registry, self.errors)
        self.kubelet: Kubelet | None = None
        if cfg.kubelet:
            runner = cfg.runner or ProcessRunner(
                cfg.path_map, cfg.base_env, cfg.default_working_dir
            )
            self.kubelet = Kubelet(
                self.registry,
                recorder,
                runner,
                self.log_dir,
                self.errors,
                cfg.node_name,
                cfg.max_grace_seconds,
                cfg.restart_delay,
                ImageStore(cfg.node_images, cfg.registry_images, cfg.image_pull_backoff),
                parse_resources(cfg.node_capacity),
            )
        watch = Watch(self.store, self.registry, self.faults, self.closing, cfg.bookmark_interval)
        self.api = Api(
            self.registry,
            watch,
            self.faults,
            self.requests,
            self.closing,
            self.kubelet,
            cfg.watch_timeout,
            self.rbac,
        )
        self._gate = ApiFirst(cfg.api_first) if cfg.api_first > 0 else None
        for each in self._loops():
            each.loop.gate = self._gate
        self._http: HttpServer | None = None
        self._started = False

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeCluster:
        if self._started:
            return self
        self._started = True
        for loop in self._loops():
            self.store.subscribe(loop.on_event)
        ctx = WriteContext(internal=True)
        for name in self.config.namespaces:
            self.registry.create(
                self.registry.rt(("", "namespaces")), "", {"metadata": {"name": name}}, ctx
            )
        for obj in bootstrap_policy():
            rt = self.resources.by_kind(obj["apiVersion"], obj["kind"])
            assert rt is not None
            self.registry.create(rt, "", obj, ctx)
        if self.kubelet is not None:
            self.registry.create(self.registry.rt(("", "nodes")), "", self._node(), ctx)
        for loop in self._loops():
            loop.loop.start()
        self._http = HttpServer(self.api, self.config.host, self.config.port, self._gate)
        self.api.server_address = "{}:{}".format(*self._http.address)
        self._http.start()
        return self

    def stop(self) -> None:
        """Close every connection and stream, stop the controllers, kill every process."""
        if not self._started:
            return
        self._started = False
        self.closing.set()
        self.store.close()
        if self._http is not None:
            self._http.stop()
        self.job_controller.loop.stop()
        self.gc.loop.stop()
        self.quota.loop.stop()
        self.aggregation.loop.stop()
        if self.kubelet is not None:
            self.kubelet.stop()  # also kills and reaps every container process
        if self._own_log_dir:
            shutil.rmtree(self.log_dir, ignore_errors=True)

    def __enter__(self) -> FakeCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loops(self) -> list[Any]:
        loops: list[Any] = [self.job_controller, self.gc, self.quota, self.aggregation]
        if self.kubelet is not None:
            loops.append(self.kubelet)
        return loops

    # -- addresses and clients ------------------------------------------------------------

    @property
    def host(self) -> str:
        assert self._http is not None, "the cluster is not started"
        return self._http.address[0]

    @property
    def port(self) -> int:
        assert self._http is not None, "the cluster is not started"
        return self._http.address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def token(self, user: str, groups: Sequence[str] = ()) -> str:
        """A bearer token the server maps to ``user`` and ``groups`` (plus the groups the
        apiserver adds: system:authenticated, and system:serviceaccounts[:NS] for accounts)."""
        return self.rbac.issue(user, groups)

    def kubeconfig(
        self,
        namespace: str = "default",
        context: str = "fakecluster",
        user: str | None = None,
        groups: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Without ``user``: no credentials, and the server treats the client as a cluster
        admin. With it: a bearer token for that user, authorized by the RBAC objects."""
        credentials = {"token": self.token(user, groups)} if user else {}
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": credentials}],
            "contexts": [
                {
                    "name": context,
                    "context": {"cluster": context, "user": context, "namespace": namespace},
                }
            ],
            "current-context": context,
            "preferences": {},
        }

    def write_kubeconfig(
        self,
        path: str | Path,
        namespace: str = "default",
        context: str = "fakecluster",
        user: str | None = None,
        groups: Sequence[str] = (),
    ) -> Path:
        """Write a kubeconfig (plain http; a token only with ``user``) for kubectl and the
        clients."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        config = self.kubeconfig(namespace, context, user, groups)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def api_client(self, user: str | None = None, groups: Sequence[str] = ()) -> Any:
        """A ``kubernetes.client.ApiClient`` for this cluster (as ``user`` if given, else as
        a cluster admin); close it (or use ``with``)."""
        import kubernetes.client

        configuration = kubernetes.client.Configuration()
        configuration.host = self.url
        if user:
            configuration.api_key = {"authorization": self.token(user, groups)}
            configuration.api_key_prefix = {"authorization": "Bearer"}
        return kubernetes.client.ApiClient(configuration)

    # -- admission ------------------------------------------------------------------------

    def deny_admission(
        self,
        resource: str,
        match: Callable[[dict[str, Any]], bool] | None = None,
        message: str = "denied by policy",
        code: int = 403,
        name: str = "deny.fakecluster.test",
        operations: Sequence[str] = ("CREATE",),
    ) -> DenyRule:
        """Refuse writes to ``resource`` ("jobs", "jobs.batch", "pods") whose object
        ``match`` accepts (all if None), as a validating admission webhook ``name`` that
        answers allowed=false with ``message`` and ``code``. Returns the rule; pass it to
        :meth:`allow_admission` to lift it."""
        rule = DenyRule(resource, match, message, code, name, tuple(operations))
        self.registry.deny_rules.append(rule)
        return rule

    def allow_admission(self, rule: DenyRule | None = None) -> None:
        """Lift one denying rule, or all of them."""
        rules = self.registry.deny_rules
        rules[:] = [] if rule is None else [r for r in rules if r is not rule]

    # -- in-process access for tests ------------------------------------------------------

    def objects(self, resource: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Stored objects of ``resource`` ("pods", "jobs.batch", "pipelines.k8sco.io")."""
        plural, _, group = resource.partition(".")
        rt = self.registry.rt((group, plural))
        return [clone(self.registry.present(rt, o)) for o in self.store.objects(rt.key, namespace)]

    def get(self, resource: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        plural, _, group = resource.partition(".")
        obj = self.store.get((group, plural), namespace, name)
        return clone(obj) if obj is not None else None

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create ``obj`` as an API client would (defaults, validation, admission)."""
        rt = self.resources.by_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
        if rt is None:
            raise ApiError(
                404, "NotFound", f"no resource for {obj.get('apiVersion')} {obj.get('kind')}"
            )
        namespace = (obj.get("metadata") or {}).get("namespace") or (
            "default" if rt.namespaced else ""
        )
        created: dict[str, Any] = clone(self.registry.create(rt, namespace, clone(obj)))
        return created

    def wait_for(
        self, predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.02
    ) -> T:
        """Poll ``predicate`` until it returns something truthy; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(f"condition not met within {timeout}s")
            time.sleep(interval)

    @property
    def internal_errors(self) -> list[str]:
        """Tracebacks of unexpected exceptions in the server and the controllers."""
        return self.api.internal_errors + self.errors

    def _node(self) -> dict[str, Any]:
        from .meta import now

        stamp = now()
        capacity = format_capacity(parse_resources(self.config.node_capacity))
        return {
            "metadata": {
                "name": self.config.node_name,
                "labels": {
                    "kubernetes.io/hostname": self.config.node_name,
                    "kubernetes.io/os": "linux",
                },
            },
            "spec": {},
            "status": {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "KubeletReady",
                        "message": "kubelet is posting ready status",
                        "lastHeartbeatTime": stamp,
                        "lastTransitionTime": stamp,
                    }
                ],
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                "capacity": capacity,
                "allocatable": capacity,
                "nodeInfo": {
                    "kubeletVersion": "v1.32.0",
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                },
            },
        }
