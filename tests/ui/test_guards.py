"""The UI's guards: controls need the page's token, a JSON body and this server as Origin;
every request must name this server in Host; --read-only refuses every control; bound to a
non-loopback address, every request needs the printed access token. Secrets never reach
the page."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import k8sco as co
from k8sco.engine import Graph
from k8sco.ui import server, sources, views
from ui.helpers import base, finished_run, get, post, ui_server

CONTROL = "/api/control"


def test_a_control_without_the_pages_token_is_refused(tmp_path: Path) -> None:
    run_id = finished_run(tmp_path)
    body = {"p": f"local:{run_id}", "action": "stop"}
    with ui_server(tmp_path) as srv:
        status, answer = post(base(srv) + CONTROL, body)
        assert status == 403 and "X-K8sco-Token" in answer["error"]
        status, answer = post(base(srv) + CONTROL, body, {"X-K8sco-Token": "guess"})
        assert status == 403
        # With the token, the request reaches the control (the run is over: refused there).
        status, answer = post(
            base(srv) + CONTROL, body, {"X-K8sco-Token": srv.settings.control_token}
        )
        assert status == 400 and "has finished" in answer["error"]


def test_a_control_from_another_origin_or_as_a_form_is_refused(tmp_path: Path) -> None:
    run_id = finished_run(tmp_path)
    body = {"p": f"local:{run_id}", "action": "stop"}
    with ui_server(tmp_path) as srv:
        token = {"X-K8sco-Token": srv.settings.control_token}
        status, answer = post(base(srv) + CONTROL, body, {**token, "Origin": "http://evil.example"})
        assert status == 403 and "cross-site" in answer["error"]
        status, answer = post(
            base(srv) + CONTROL,
            b"p=x&action=stop",
            token,
            content_type="application/x-www-form-urlencoded",
        )
        assert status == 415
        status, answer = post(base(srv) + CONTROL, body, {**token, "Origin": base(srv)})
        assert status == 400 and "has finished" in answer["error"]  # same origin: accepted


def test_a_foreign_host_name_is_refused_even_for_reading(tmp_path: Path) -> None:
    with ui_server(tmp_path) as srv:
        status, _, body = get(base(srv) + "/api/events/list", {"Host": "rebound.example:80"})
        assert status == 403 and b"unexpected Host" in body
        status, _, _ = get(base(srv) + "/", {"Host": f"localhost:{srv.server_address[1]}"})
        assert status == 200
        # Through `kubectl port-forward 9000:8765`: another port, the same loopback name.
        status, _, _ = get(base(srv) + "/", {"Host": "127.0.0.1:9000"})
        assert status == 200
        status, _, _ = get(base(srv) + "/", {"Host": "127.0.0.1.evil.example:9000"})
        assert status == 403


def test_read_only_refuses_every_control_and_offers_none(tmp_path: Path) -> None:
    run_id = finished_run(tmp_path)
    ref = f"local:{run_id}"
    with ui_server(tmp_path, read_only=True) as srv:
        token = {"X-K8sco-Token": srv.settings.control_token}
        for action in ("stop", "rerun", "delete"):
            status, answer = post(base(srv) + CONTROL, {"p": ref, "action": action}, token)
            assert status == 403 and "read-only" in answer["error"]
        status, _, page = get(base(srv) + "/")
        assert b'name="k8sco-read-only" content="true"' in page
        status, _, node = get(f"{base(srv)}/api/node?p={ref}&path=/work/fails")
        assert json.loads(node)["controls"] == []


def test_a_public_address_needs_the_printed_token(tmp_path: Path) -> None:
    settings = server.Settings(
        local=sources.LocalRuns(tmp_path / ".k8sco" / "runs"),
        cluster=None,
        host="0.0.0.0",
        access_token="s3cret-token",
    )
    srv = server.serve(settings, 0)
    try:
        assert srv.url.endswith("?token=s3cret-token")
        url = f"http://127.0.0.1:{srv.server_address[1]}/"
        status, _, _ = get(url)
        assert status == 401
        status, _, _ = get(url + "?token=wrong")
        assert status == 401
        status, headers, _ = get(url + "?token=s3cret-token")
        assert status == 200
        cookie = headers["Set-Cookie"].split(";")[0]
        assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
        status, _, _ = get(url + "api/node?p=x&path=/", {"Cookie": cookie})
        assert status == 400  # past the guard: an unknown pipeline
        request = urllib.request.Request(url + "static/app.js", headers={"Cookie": "k8sco_ui=no"})
        try:
            urllib.request.urlopen(request, timeout=10)
            raise AssertionError("a wrong cookie was accepted")
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
            exc.close()
    finally:
        srv.shutdown()
        srv.server_close()


def test_only_loopback_addresses_go_without_a_token() -> None:
    assert server.is_loopback("127.0.0.1") and server.is_loopback("::1")
    assert server.is_loopback("localhost")
    assert not server.is_loopback("0.0.0.0") and not server.is_loopback("10.1.2.3")


def test_a_secrets_value_never_reaches_the_page() -> None:
    with co.Serial(env={"TOKEN": co.SecretRef("github", "token"), "PLAIN": "1"}) as root:
        co.Exec("echo $TOKEN", name="use", env={"PLAIN": "2"})
    graph = Graph.from_tree(root)
    node = views.node_view(root, graph, "/use", {}, now=0.0)
    params = {p["name"]: (p["value"], p["from"]) for p in node["params"]}
    assert params["env.TOKEN"] == ({"secret": "github", "key": "token"}, "/")
    assert params["env.PLAIN"] == ("2", "/use")
