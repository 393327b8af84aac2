"""The page in a real browser (headless Chromium, installed by apt-get when missing): the
list shows a local run in progress, its tree shows the nodes' states, a click on a node
shows its detail and its log followed live, with a <ConductoMarkdown> block rendered as
elements (its HTML kept as text), a failed node's rerun pressed on the page runs it again
while the run goes on, and a node goes from running to done on the page. On
the fake cluster: a Pipeline's tree with its Jobs, a failed node's log from its pod, and
its rerun pressed on the page, after which it runs again and passes."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from k8sco.render.names import job_name
from ui.browser import chromium
from ui.cluster import World
from ui.helpers import base, start_run, ui_server

pytestmark = pytest.mark.slow


def wait(driver: Any, what: str, condition: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            logs = driver.get_log("browser")
            raise AssertionError(f"the page never showed {what}; browser log: {logs}")
        time.sleep(0.05)


def row(driver: Any, path: str) -> Any:
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, f'#tree-rows .row[data-path="{path}"]')
    return found[0] if found else None


def row_state(driver: Any, path: str) -> str | None:
    r = row(driver, path)
    return r.find_element("css selector", ".st").text if r is not None else None


def test_the_page_shows_a_live_run_its_tree_and_a_nodes_log(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    proc = start_run(tmp_path)
    try:
        runs = tmp_path / ".k8sco" / "runs"
        deadline = time.monotonic() + 60
        while not (runs / "latest").exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        run_id = os.readlink(runs / "latest")
        with ui_server(tmp_path) as srv, chromium() as driver:
            driver.get(base(srv) + "/")
            link = wait(
                driver,
                "the run in the list",
                lambda: driver.find_elements(By.CSS_SELECTOR, f'tr[data-ref="local:{run_id}"]'),
            )
            assert "pipe.py:main" in link[0].text
            if os.environ.get("K8SCO_UI_SCREENSHOTS"):
                driver.save_screenshot(os.environ["K8SCO_UI_SCREENSHOTS"] + "/list.png")
            link[0].click()
            # Collapsed by default except running and failing branches: /work is open.
            wait(driver, "/work/waits running", lambda: row_state(driver, "/work/waits"))
            wait(driver, "the failed node", lambda: row_state(driver, "/work/fails") == "✗ error")
            assert row_state(driver, "/work/waits") == "▶ running"
            assert row_state(driver, "/work/report") == "✓ done"
            assert driver.find_element(By.ID, "p-stop").is_displayed()  # the run is live

            # Filter by state, search by path: the matches and their ancestors only.
            def shown() -> list[str]:
                rows = driver.find_elements(By.CSS_SELECTOR, "#tree-rows .row")
                return [r.get_attribute("data-path") for r in rows]

            Select(driver.find_element(By.ID, "filter")).select_by_value("e")
            wait(driver, "the failed branch only", lambda: shown() == ["/", "/work", "/work/fails"])
            Select(driver.find_element(By.ID, "filter")).select_by_value("")
            driver.find_element(By.ID, "search").send_keys("REP")
            wait(driver, "the search's match", lambda: shown() == ["/", "/work", "/work/report"])
            driver.find_element(By.ID, "search").clear()
            driver.execute_script(
                "document.getElementById('search').dispatchEvent(new Event('input'))"
            )
            wait(driver, "the whole tree again", lambda: len(shown()) == 5)

            row(driver, "/work/report").click()
            log = driver.find_element(By.ID, "d-log")
            wait(driver, "the report's log", lambda: log.find_elements(By.CSS_SELECTOR, "h1"))
            assert log.find_element(By.CSS_SELECTOR, ".plain").text == "plain"
            block = log.find_element(By.CSS_SELECTOR, ".markdown")
            assert block.find_element(By.CSS_SELECTOR, "h1").text == "Result"
            assert block.find_element(By.CSS_SELECTOR, "em").text == "ok"
            assert "<b>x</b>" in block.text and not block.find_elements(By.CSS_SELECTOR, "b")
            params = driver.find_element(By.ID, "d-params").text
            assert "env.STAGE ci /" in params and "env.LEVEL 2 /work" in params
            assert driver.find_element(By.ID, "d-command").text.startswith("echo plain;")

            # Rerun the failed node of the run in progress from the page: it runs again.
            row(driver, "/work/fails").click()
            wait(driver, "the failed node's log", lambda: "broken" in log.text)
            driver.find_element(By.ID, "d-rerun").click()
            wait(
                driver,
                "the rerun's answer",
                lambda: "under /work/fails (1)" in driver.find_element(By.ID, "toast").text,
            )
            fails_log = runs / run_id / "logs" / "work.fails.log"
            wait(driver, "a second attempt", lambda: fails_log.read_text() == "broken\n" * 2)

            row(driver, "/work/waits").click()
            wait(driver, "the running node's log", lambda: "waiting" in log.text)
            (tmp_path / "go").touch()
            wait(driver, "/work/waits done", lambda: row_state(driver, "/work/waits") == "✓ done")
            wait(driver, "the rest of its log", lambda: "released" in log.text)
            assert log.text.splitlines() == ["waiting", "released"]
            wait(
                driver,
                "the stop button gone",
                lambda: not driver.find_element(By.ID, "p-stop").is_displayed(),
            )
            if os.environ.get("K8SCO_UI_SCREENSHOTS"):
                driver.save_screenshot(os.environ["K8SCO_UI_SCREENSHOTS"] + "/tree.png")
        assert proc.wait(timeout=60) == 1
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()


def test_a_cluster_pipeline_its_jobs_a_log_and_rerun_from_the_page(world: World) -> None:
    from selenium.webdriver.common.by import By

    with chromium() as driver:
        driver.get(base(world.srv) + "/")
        link = wait(
            driver,
            "the Pipeline in the list",
            lambda: driver.find_elements(By.CSS_SELECTOR, f'tr[data-ref="{world.ref}"]'),
        )
        assert "default @ " in link[0].text
        link[0].click()
        wait(driver, "/flaky failed", lambda: row_state(driver, "/flaky") == "✗ error")
        assert row_state(driver, "/hello") == "✓ done"
        assert row(driver, "/flaky").find_element(By.CSS_SELECTOR, ".job").text == job_name(
            "demo", "/flaky"
        )
        row(driver, "/flaky").click()
        log = driver.find_element(By.ID, "d-log")
        wait(driver, "the pod's log", lambda: "trying" in log.text)
        facts = driver.find_element(By.ID, "d-facts").text
        assert "failed: exit code 1" in facts and job_name("demo", "/flaky") in facts
        rerun = driver.find_element(By.ID, "d-rerun")
        assert rerun.is_displayed()
        (world.directory / "ok").write_text("second try\n")
        rerun.click()
        wait(
            driver,
            "the rerun's answer",
            lambda: "rerunning" in driver.find_element(By.ID, "toast").text,
        )
        wait(driver, "/flaky done", lambda: row_state(driver, "/flaky") == "✓ done", 60)
        # The log of the new run, followed anew.
        wait(driver, "the new pod's log", lambda: "second try" in log.text)
        assert log.text.splitlines() == ["trying", "second try"]
        wait(driver, "the phase", lambda: driver.find_element(By.ID, "p-phase").text == "Succeeded")
        if os.environ.get("K8SCO_UI_SCREENSHOTS"):
            driver.save_screenshot(os.environ["K8SCO_UI_SCREENSHOTS"] + "/cluster.png")
