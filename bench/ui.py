"""The web UI at 10,000 nodes, measured in headless Chromium (Debian's chromium and
chromium-driver, installed by apt-get when missing; driven by Selenium).

A local run directory is written directly (no process runs): a Serial of ``--stages``
Parallels of ``--width`` Exec nodes, the first stages done, one failed node, the next stage
running. ``k8sco ui``'s server serves it in this process. Measured:

- ``tree rows``: from the navigation's start (performance.timeOrigin) to the first paint of
  the tree's rows with their states (the page's own mark, window.k8scoTiming.firstRows); the
  tree and its states arrive through server-sent events;
- ``click -> selected`` and ``click -> detail``: a click on a node while the run's
  states.json is rewritten with ``--rate`` node changes per second (by another process), to
  the row highlighted with the node's state, times and reason shown (what the page holds),
  and to its command and parameters filled in from /api/node.

Nothing is asserted; the numbers are printed (median and worst of ``--clicks``).

    .venv/bin/python bench/ui.py [--stages 100] [--width 100] [--rate 100] [--clicks 20]
                                 [--screenshot docs/ui/10k.png]
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import k8sco as co
from k8sco.engine import Graph, NodeState, State
from k8sco.local.rundir import RunDir
from k8sco.ui import server, sources

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from ui.browser import chromium


def tree(stages: int, width: int) -> co.Serial:
    root = co.Serial(env={"STAGE": "bench"})
    for s in range(stages):
        stage = co.Parallel()
        for w in range(width):
            stage[f"n{w}"] = co.Exec(f"echo {s}-{w}")
        root[f"stage{s}"] = stage
    return root


def initial_states(graph: Graph, now: float, stages: int) -> dict[str, NodeState]:
    states: dict[str, NodeState] = {}
    done_stages = stages // 2
    for path in graph.exec_paths:
        stage = int(path.split("/")[1][5:])
        if stage < done_stages:
            states[path] = NodeState(State.DONE, 1, now - 60, now - 30, 0)
        elif stage == done_stages:
            states[path] = NodeState(State.RUNNING, 1, now - 10)
    first_running = f"/stage{done_stages}/n0"
    states[first_running] = NodeState(State.ERROR, 1, now - 20, now - 5, 3, "exit code 3")
    return states


def churn(run: RunDir, graph: Graph, states: dict[str, NodeState], rate: int, stop: Any) -> None:
    """Rewrites states.json ``rate`` node changes a second (10 writes a second), from another
    process, as a runner would."""
    running = [p for p, s in states.items() if s.state is State.RUNNING]
    pending = [p for p in graph.exec_paths if p not in states]
    per_write = max(rate // 10, 1)
    while not stop.wait(0.1):
        now = time.time()
        for _ in range(per_write):
            if running:
                path = running.pop(0)
                states[path] = NodeState(State.DONE, 1, states[path].started, now, 0)
            if pending:
                path = pending.pop(0)
                states[path] = NodeState(State.RUNNING, 1, now)
                running.append(path)
        run.write_states({p: s.to_dict() for p, s in states.items()}, now=now, finished=None)


CLICK = """
const [path, done] = [arguments[0], arguments[arguments.length - 1]];
const row = document.querySelector('#tree-rows .row[data-path="' + path + '"]');
if (!row) { done(null); return; }
const params = document.querySelector('#d-params tbody');
const t0 = performance.now();
let selected = null;
const obs = new MutationObserver(() => {
  if (document.getElementById('d-path').textContent === path && params.querySelector('tr')) {
    obs.disconnect();
    done([selected, performance.now() - t0]);
  }
});
obs.observe(params, {childList: true});
row.click();
// The hash change selects the row, with its state and times, in the same task or the next.
const first = () => {
  const shown = document.getElementById('d-path').textContent === path
    && document.getElementById('d-facts').querySelector('dt');
  if (shown) selected = performance.now() - t0; else setTimeout(first, 0);
};
setTimeout(first, 0);
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stages", type=int, default=100)
    parser.add_argument("--width", type=int, default=100)
    parser.add_argument("--rate", type=int, default=100, help="node changes a second")
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--screenshot", metavar="FILE.png", help="the loaded tree, saved here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="k8sco-bench-ui-") as tmp:
        base = Path(tmp) / ".k8sco" / "runs"
        root = tree(args.stages, args.width)
        graph = Graph.from_tree(root)
        now = time.time()
        run = RunDir.create(base, root, graph.exec_paths, {"file": "bench.py", "func": "tree"}, now)
        states = initial_states(graph, now, args.stages)
        # A live run: this process is the "runner" whose pid states.json records.
        run.write_states({p: s.to_dict() for p, s in states.items()}, now=now, finished=None)
        settings = server.Settings(local=sources.LocalRuns(base), cluster=None)
        srv = server.serve(settings, 0)
        url = f"http://127.0.0.1:{srv.server_address[1]}/#/p/local:{run.run_id}"
        print(f"{len(graph.paths)} nodes; python {platform.python_version()}; {platform.machine()}")
        try:
            with chromium() as driver:
                driver.set_script_timeout(60)
                loads = []
                for _ in range(args.loads):
                    driver.get("about:blank")
                    driver.get(url)
                    deadline = time.monotonic() + 60
                    while (
                        driver.execute_script(
                            "return window.k8scoTiming && window.k8scoTiming.firstRows"
                        )
                        is None
                    ):
                        if time.monotonic() > deadline:
                            raise SystemExit("the tree never showed")
                        time.sleep(0.01)
                    timing = driver.execute_script("return window.k8scoTiming")
                    loads.append((timing["firstRows"], timing["tree"], timing["rows"]))
                if args.screenshot:
                    driver.save_screenshot(args.screenshot)
                first = [x[0] for x in loads]
                tree_at = statistics.median(x[1] for x in loads)
                print(
                    "tree rows with states, from navigation: "
                    f"median {statistics.median(first):.0f} ms, worst {max(first):.0f} ms "
                    f"({loads[0][2]} rows shown collapsed, tree event at {tree_at:.0f} ms)"
                )
                mp = multiprocessing.get_context("fork")
                stop = mp.Event()
                writer = mp.Process(
                    target=churn, args=(run, graph, states, args.rate, stop), daemon=True
                )
                writer.start()
                time.sleep(1.0)
                selected, detail = [], []
                visible = driver.execute_script(
                    "return Array.from(document.querySelectorAll('#tree-rows .row'))"
                    ".map(r => r.dataset.path)"
                )
                targets = [p for p in visible if p.count("/") == 2][: args.clicks] or visible[
                    : args.clicks
                ]
                for path in targets:
                    got = driver.execute_async_script(CLICK, path)
                    if got is None:
                        continue
                    selected.append(got[0])
                    detail.append(got[1])
                    time.sleep(0.1)
                stop.set()
                writer.join()
                if detail:
                    print(
                        f"click -> selected: median {statistics.median(selected):.1f} ms, "
                        f"worst {max(selected):.1f} ms; click -> detail: median "
                        f"{statistics.median(detail):.0f} ms, worst {max(detail):.0f} ms "
                        f"({len(detail)} clicks, {args.rate} node changes/s)"
                    )
        finally:
            srv.shutdown()
            srv.server_close()


if __name__ == "__main__":
    main()
