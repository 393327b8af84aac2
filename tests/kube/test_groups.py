"""The controller's side of shared containers (k8sco/kube/groups.py): a group Job's report
read from its pod's termination message, or from its log's delimiter lines, once per Job."""

from __future__ import annotations

from typing import Any

import k8sco as co
from k8sco import sequence
from k8sco.engine import State
from k8sco.kube.groups import GroupReports
from k8sco.reconcile.observe import job_state

LOG = (
    b"[k8sco-sequence] start 0 10.000 /g/a\nA\n[k8sco-sequence] end 0 11.000 0\n"
    b"[k8sco-sequence] start 1 11.000 /g/b\nB\n[k8sco-sequence] end 1 12.500 2\n"
    b"[k8sco-sequence] done\n"
)


class Api:
    def __init__(self, message: str | None) -> None:
        self.message = message
        self.calls: list[tuple[str, str]] = []

    def ns_path(self, group_path: str, plural: str, namespace: str | None = None) -> str:
        return f"{group_path}/namespaces/{namespace}/{plural}"

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        self.calls.append((method, path))
        if path.endswith("/log"):
            return LOG
        terminated = {"exitCode": 1, "message": self.message} if self.message else {"exitCode": 1}
        pod = {
            "metadata": {"name": "g-pod", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"containerStatuses": [{"state": {"terminated": terminated}}]},
        }
        return {"items": [pod]}


def tree() -> co.Node:
    with co.Serial() as root, co.Serial(name="g", same_container=co.SameContainer.NEW):
        co.Exec("echo A", name="a")
        co.Exec("echo B; exit 2", name="b")
        co.Exec("echo C", name="c")
    return root


def failed_group_job() -> dict[str, Any]:
    return {
        "metadata": {
            "name": "p-g",
            "namespace": "ns",
            "uid": "u-1",
            "annotations": {"k8sco.io/path": "/g", sequence.ANNOTATION_SEQUENCE: "3"},
        },
        "status": {"failed": 1, "conditions": [{"type": "Failed", "status": "True"}]},
    }


def test_outcomes_come_from_the_termination_message_read_once() -> None:
    outcomes = {0: sequence.Outcome(0, 10.0, 11.0), 1: sequence.Outcome(2, 11.0, 12.5)}
    api = Api(sequence.encode_message(outcomes, complete=True))
    groups = GroupReports(api)
    jobs = {"/g": failed_group_job(), "/g/a": failed_group_job()}  # the watch's and a create's
    for _ in range(2):
        seen = groups.expand(tree(), jobs)
        assert set(seen) == {"/g/a", "/g/b"}
        assert job_state(seen["/g/a"]).state is State.DONE
        assert job_state(seen["/g/b"]).reason == "exit code 2"
    assert api.calls == [("GET", "/api/v1/namespaces/ns/pods")]  # kept by the Job's uid


def test_without_a_message_the_log_says_the_outcomes() -> None:
    api = Api(None)  # the runner's marker, or a pod killed before it wrote
    seen = GroupReports(api).expand(tree(), {"/g": failed_group_job()})
    assert [m for m, p in api.calls] == ["GET", "GET"] and api.calls[1][1].endswith("/log")
    b = job_state(seen["/g/b"])
    assert (b.state, b.started, b.reason) == (State.ERROR, 11.0, "exit code 2")
    assert "/g/c" not in seen  # the runner reached its end without running it


def test_pipelines_without_groups_are_passed_through_untouched() -> None:
    jobs = {"/x": {"metadata": {"name": "p-x"}, "status": {}}}
    groups = GroupReports(Api(None))
    assert groups.expand(tree(), jobs) is jobs
    assert not groups.present(jobs)


def test_why_a_group_pod_cannot_start_is_its_first_nodes() -> None:
    waiting = {"/g": ("ErrImagePull: nope", 5.0), "/x": ("Unschedulable", 1.0)}
    moved = GroupReports(Api(None)).rekey(tree(), waiting)
    assert moved == {"/g/a": ("ErrImagePull: nope", 5.0), "/x": ("Unschedulable", 1.0)}
    assert GroupReports(Api(None)).rekey(tree(), {"/x": 1}) == {"/x": 1}


def test_a_pod_not_found_is_looked_for_again() -> None:
    outcomes = {0: sequence.Outcome(0, 10.0, 11.0)}
    api = Api(sequence.encode_message(outcomes, complete=True))
    real = api.request
    api.request = lambda method, path, **kw: {"items": []}  # type: ignore[method-assign]
    groups = GroupReports(api)
    assert groups.report(failed_group_job()) is None
    api.request = real  # type: ignore[method-assign]
    found = groups.report(failed_group_job())
    assert found is not None and found.outcomes[0].code == 0


def test_a_deleted_group_job_leaves_no_copy_under_the_member_it_was_created_for() -> None:
    # The controller caches a Job it creates under the node it created it for, a member;
    # the watch files it under its head. A copy left after its deletion made a reset or a
    # rerun of the group wait for it forever.
    from .test_controller import KEY, PIPES, World

    with co.Serial(same_container=co.SameContainer.NEW) as root:
        co.Exec("echo one", name="one")
        co.Exec("echo two", name="two")
    w = World(root)
    w.ctl._replace("pipelines", "default", w.api.items(PIPES))
    w.ctl.sync(KEY)
    cached = dict(w.ctl.jobs[KEY])
    assert list(cached) == ["/one"] and sequence.is_group_job(cached["/one"])
    w.ctl._apply_event("jobs", "ADDED", cached["/one"])
    assert set(w.ctl.jobs[KEY]) == {"/", "/one"}
    w.ctl._apply_event("jobs", "DELETED", cached["/one"])
    assert dict(w.ctl.jobs[KEY]) == {}
