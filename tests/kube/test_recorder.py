"""The controller's Events, written by a thread of their own as client-go's recorder writes
them (k8sco/kube/recorder.py): a reconciliation never waits for an Event's POST, at most
MAX_QUEUED wait to be written and the rest are dropped, a refused Event is given up on, and
a stopping controller gives the queue a moment."""

from __future__ import annotations

import threading
from typing import Any

import k8sco as co
from k8sco.kube.controller import Controller
from k8sco.kube.recorder import EventRecorder
from k8sco.render.pipeline import render_pipeline

from .fakeapi import FakeApi, api_error


class Api:
    """Takes Events; each POST waits for ``gate`` while it is clear, and the ones named in
    ``refuse`` get a 422."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Semaphore(0)
        self.written: list[str] = []
        self.refuse: set[str] = set()

    def request(self, method: str, path: str, *, body: Any = None, **_: Any) -> Any:
        assert (method, path) == ("POST", "/api/v1/namespaces/ns/events")
        self.started.release()
        assert self.gate.wait(10)
        if body["reason"] in self.refuse:
            raise api_error(422, "Event is invalid")
        self.written.append(body["reason"])
        return body

    def ns_path(self, group_path: str, plural: str, namespace: str | None = None) -> str:
        return f"{group_path}/namespaces/{namespace}/{plural}"


def event(reason: str) -> dict[str, Any]:
    return {"kind": "Event", "metadata": {"namespace": "ns"}, "reason": reason}


def test_without_a_thread_the_event_is_written_before_record_returns() -> None:
    api = Api()
    recorder = EventRecorder(api)
    recorder.record(event("NodesStarted"))
    assert api.written == ["NodesStarted"]
    recorder.stop(1)
    recorder.record(event("Late"))
    assert api.written == ["NodesStarted"]


def test_record_returns_while_the_api_is_still_writing() -> None:
    api = Api()
    api.gate.clear()  # the API server takes its time
    counted: list[int] = []
    recorder = EventRecorder(api, background=True, written=lambda: counted.append(1))
    recorder.record(event("NodesStarted"))
    recorder.record(event("NodesSucceeded"))
    assert api.started.acquire(timeout=10)  # the first POST is under way, record returned
    assert api.written == [] and not recorder.flush(0.05)
    api.gate.set()
    assert recorder.flush(10)
    assert api.written == ["NodesStarted", "NodesSucceeded"]  # one writer: in order
    assert counted == [1, 1]
    recorder.stop(1)


def test_past_max_queued_unwritten_events_new_ones_are_dropped() -> None:
    api = Api()
    api.gate.clear()
    recorder = EventRecorder(api, background=True, max_queued=3)
    recorder.record(event("e0"))
    assert api.started.acquire(timeout=10)  # e0 is being written: out of the queue
    for i in range(1, 6):
        recorder.record(event(f"e{i}"))
    assert recorder.dropped == 2
    api.gate.set()
    assert recorder.flush(10)
    assert api.written == ["e0", "e1", "e2", "e3"]
    recorder.stop(1)


def test_an_event_the_server_refuses_is_given_up_on_and_the_next_is_written() -> None:
    api = Api()
    api.refuse.add("Bad")
    recorder = EventRecorder(api, background=True)
    recorder.record(event("Bad"))
    recorder.record(event("Good"))
    assert recorder.flush(10)
    assert api.written == ["Good"]
    recorder.stop(1)


def test_stop_writes_what_is_queued_then_records_nothing_more() -> None:
    api = Api()
    recorder = EventRecorder(api, background=True)
    recorder.record(event("PipelineSucceeded"))
    recorder.stop(10)
    recorder.record(event("Late"))
    assert api.written == ["PipelineSucceeded"]


def test_stop_gives_a_hung_api_server_no_more_than_its_timeout() -> None:
    api = Api()
    api.gate.clear()
    recorder = EventRecorder(api, background=True)
    recorder.record(event("NodesStarted"))
    recorder.record(event("NodesSucceeded"))
    assert api.started.acquire(timeout=10)
    recorder.stop(0.05)  # returns: the writer is still in its POST
    api.gate.set()
    thread = recorder._thread
    assert thread is not None
    thread.join(10)
    assert not thread.is_alive()
    assert api.written == ["NodesStarted"]  # the one in flight; the queued one is dropped


def test_a_reconciliation_does_not_wait_for_its_events() -> None:
    pipes = "/apis/k8sco.io/v1alpha1/namespaces/default/pipelines"
    jobs = "/apis/batch/v1/namespaces/default/jobs"
    now = [1_800_000_000.0]
    gate = threading.Event()
    api = FakeApi(lambda: now[0])
    answer = api.request

    def request(method: str, path: str, **kwargs: Any) -> Any:
        if path.endswith("/events"):
            assert gate.wait(10)  # an API server slow to take Events
        return answer(method, path, **kwargs)

    api.request = request  # type: ignore[method-assign]
    root = co.Serial()
    root["a"] = co.Exec("echo a")
    api.put(pipes, render_pipeline(root, "demo", "default", image="img:1"))
    ctl = Controller(api, "default", clock=lambda: now[0], background_events=True)

    def sync() -> None:
        ctl._replace("pipelines", "default", api.items(pipes))
        ctl._replace("jobs", "default", api.items(jobs))
        ctl.sync(("default", "demo"))

    sync()  # the Job is created
    (job,) = api.items(jobs)
    api.objects[f"{jobs}/{job['metadata']['name']}"]["status"] = {"active": 1, "ready": 1}
    now[0] += 5
    sync()  # the node runs: the status says so, and an Event is due, but not written yet
    assert api.count("PATCH", "/status") == 2 and api.count("POST", "/events") == 0
    gate.set()
    assert ctl.recorder.flush(10)
    assert api.count("POST", "/events") == 1 and ctl.stats.events == 1
    ctl.recorder.stop(1)
