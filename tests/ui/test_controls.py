"""``k8sco ui``'s live controls (reset, skip, unskip, modify) on a local run in progress:
the page offers them, and ``POST /api/control`` runs the CLI's code (a skipped failure lets
the run succeed; a bad modification is refused in one line and changes nothing)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from ui.helpers import Events, base, get, post, start_run, ui_server


def test_live_controls_of_a_local_run_from_the_page(tmp_path: Path) -> None:
    proc = start_run(tmp_path)
    try:
        runs = tmp_path / ".k8sco" / "runs"
        deadline = time.monotonic() + 60
        while not (runs / "latest").exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        ref = "local:" + os.readlink(runs / "latest")
        run_id = ref.partition(":")[2]
        with ui_server(tmp_path) as srv:
            _, _, page = get(base(srv) + "/")
            for action in ("reset", "skip", "unskip", "modify"):
                assert f'data-action="{action}"'.encode() in page
            events = Events(f"{base(srv)}/api/events/tree?p={ref}")
            tree = events.until("tree")
            assert {"reset", "skip", "unskip", "modify"} <= set(tree["controls"])
            events.until("states", lambda s: s["states"][3] == "e" and s["states"][4] == "r")
            token = {"X-K8sco-Token": srv.settings.control_token}
            tree_file = runs / run_id / "tree.json"
            before = tree_file.read_text()

            status, body = post(
                base(srv) + "/api/control",
                {"p": ref, "action": "modify", "path": "/work/waits", "set": "cpu=0"},
                token,
            )
            assert status == 400 and "/work/waits: parameter 'cpu'" in body["error"]
            assert tree_file.read_text() == before

            status, body = post(
                base(srv) + "/api/control",
                {"p": ref, "action": "modify", "path": "/work/report", "set": "retries=2\nmem=1"},
                token,
            )
            assert status == 200, body
            assert body["message"].startswith(f"run {run_id}: modified /work/report")

            status, body = post(
                base(srv) + "/api/control",
                {"p": ref, "action": "skip", "path": "/work/fails"},
                token,
            )
            assert status == 200 and body["message"] == f"run {run_id}: skipped /work/fails"
            events.until("states", lambda s: s["states"][3] == "s")
            events.close()
        (tmp_path / "go").touch()
        assert proc.wait(timeout=60) == 0  # the skipped failure no longer fails the run
    finally:
        (tmp_path / "go").touch()
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
