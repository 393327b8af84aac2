"""Rendering a 10,000-node pipeline to YAML: k8sco next to Hera (Argo Workflows) and to a
bare ``json.dumps``, in one process, on the same machine.

The pipeline is a Serial of 100 Parallels of 100 native-function nodes. k8sco renders it to
the Pipeline plus 10,000 Jobs. Hera builds what an Argo user writes for that shape: one
Workflow whose ``Steps`` template runs 100 parallel groups one after another, each group
100 steps of one script template (about 1.7 MB of YAML). (An Argo ``DAG`` can say the same
only with every task of a stage depending on all 100 tasks of the stage before: 990,000
names in ``depends``, a shape nobody writes by hand.)

Times are the best of ``--repeat`` runs, in CPU seconds of this process. Like is compared
with like: each side's own YAML writer; both sides' dicts through the same dumper (libyaml's
CSafeDumper, after Hera's import has installed its str representer, as in any process that
imports Hera); and k8sco's emitter on Hera's dict. Nothing is asserted; the numbers and
their ratios are printed. The goals: k8sco's tree + render + YAML at least 3x faster than
Hera's build + ``to_yaml``, and k8sco's render + YAML within 2.5x of ``json.dumps`` of the
same objects.

Hera is not a dependency of k8sco: install it beside k8sco, in its own venv (it brings
pydantic), e.g. with the ``bench`` extra::

    python -m venv /tmp/bench && /tmp/bench/bin/pip install -e '.[bench]'
    /tmp/bench/bin/python bench/render.py [--stages 100] [--width 100] [--repeat 5]
"""

# No `from __future__ import annotations`: Hera reads the script function's hints at run time.

import argparse
import gc
import json
import platform
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import yaml

import k8sco as co
from k8sco.render import dump_all, render_all, render_job

T = TypeVar("T")


def check(n: int, lo: int, hi: int) -> None:
    """The node's work (never run here): check the primes below n in [lo, hi)."""


def k8sco_tree(stages: int, width: int) -> co.Serial:
    with co.Serial() as root:
        for s in range(stages):
            with co.Parallel(name=f"stage {s}"):
                for i in range(width):
                    co.Exec(check, 10_000, i * 100, (i + 1) * 100).set(name=f"check {i}")
    return root


def hera_workflow(stages: int, width: int) -> Any:
    from hera.workflows import Steps, Workflow, script

    @script(image="python:3.11-slim")
    def hera_check(n: int, lo: int, hi: int) -> None:
        pass

    with (
        Workflow(name="primes", namespace="default", entrypoint="main") as workflow,
        Steps(name="main") as steps,
    ):
        for s in range(stages):
            with steps.parallel():
                for i in range(width):
                    hera_check(
                        name=f"stage-{s}-check-{i}",
                        arguments={"n": 10_000, "lo": i * 100, "hi": (i + 1) * 100},
                    )
    return workflow


def best(fn: Callable[[], T], repeat: int) -> tuple[float, T]:
    times, result = [], None
    for _ in range(repeat):
        gc.collect()
        # CPU time of this process: on a machine shared with other work, wall time would
        # measure the neighbours too.
        start = time.process_time()
        result = fn()
        times.append(time.process_time() - start)
    assert result is not None
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stages", type=int, default=100)
    parser.add_argument("--width", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--hera-yaml-repeat", type=int, default=1, help="Hera's to_yaml is slow")
    opts = parser.parse_args()
    n = opts.stages * opts.width
    r = opts.repeat

    t_tree, root = best(lambda: k8sco_tree(opts.stages, opts.width), r)
    t_render, docs = best(lambda: render_all(root, "primes", "default", uid="u-1"), r)
    t_emit, text = best(lambda: dump_all(docs), r)
    t_json, js = best(lambda: json.dumps(docs), r)
    t_json_each, _ = best(lambda: "\n".join(json.dumps(d) for d in docs), r)
    # What the controller does: one render_job per node, each Job with parts of its own.
    paths = [d["metadata"]["annotations"]["k8sco.io/path"] for d in docs[1:]]
    t_fresh, fresh = best(
        lambda: [render_job(root, p, "primes", "default", owner_uid="u-1") for p in paths], r
    )
    t_fresh_emit, _ = best(lambda: dump_all(fresh), r)
    t_fresh_json, _ = best(lambda: json.dumps(fresh), r)

    try:
        import hera  # installs a str representer into PyYAML's SafeRepresenter
    except ImportError:
        sys.exit("bench/render.py needs hera beside k8sco: pip install -e '.[bench]' (see --help)")

    t_hbuild, workflow = best(lambda: hera_workflow(opts.stages, opts.width), r)
    t_hdict, hdict = best(workflow.to_dict, r)
    t_hyaml, hyaml = best(workflow.to_yaml, opts.hera_yaml_repeat)
    dumper = yaml.CSafeDumper if yaml.__with_libyaml__ else yaml.SafeDumper
    t_c_k8sco, _ = best(lambda: yaml.dump_all(docs, Dumper=dumper, sort_keys=False), 1)
    t_c_hera, _ = best(lambda: yaml.dump(hdict, Dumper=dumper, sort_keys=False), 1)
    t_emit_hera, _ = best(lambda: dump_all([hdict]), r)
    t_json_hera, _ = best(lambda: json.dumps(hdict), r)

    groups = next(t["steps"] for t in hdict["spec"]["templates"] if t.get("steps"))
    steps = sum(len(group) for group in groups)
    jobs = len(docs) - 1
    k8sco_yaml = t_render + t_emit
    hera_yaml = t_hdict + t_hyaml  # to_yaml calls to_dict itself; this is what a user waits
    rows = [
        ("k8sco: build the tree", t_tree, ""),
        ("k8sco: render_all -> dicts (Pipeline + Jobs)", t_render, f"{jobs} Jobs"),
        ("k8sco: dicts -> YAML (k8sco emitter)", t_emit, f"{len(text) / 1e6:.1f} MB"),
        ("k8sco: render + YAML", k8sco_yaml, ""),
        ("json.dumps(same dicts), one call", t_json, f"{len(js) / 1e6:.1f} MB"),
        ("json.dumps(same dicts), one per document", t_json_each, ""),
        ("k8sco: render_job per node (own parts, controller)", t_fresh, ""),
        ("k8sco: those dicts -> YAML", t_fresh_emit, ""),
        ("json.dumps(those dicts)", t_fresh_json, ""),
        (f"yaml.dump_all(same dicts, {dumper.__name__})", t_c_k8sco, ""),
        ("Hera: build the Workflow", t_hbuild, f"{steps} steps in {len(groups)} groups"),
        ("Hera: Workflow.to_dict()", t_hdict, ""),
        ("Hera: Workflow.to_yaml()", t_hyaml, f"{len(hyaml) / 1e6:.1f} MB"),
        (f"yaml.dump(Hera's dict, {dumper.__name__})", t_c_hera, ""),
        ("k8sco emitter on Hera's dict", t_emit_hera, ""),
        ("json.dumps(Hera's dict)", t_json_hera, ""),
    ]
    print(
        f"{n} nodes ({opts.stages} x {opts.width}), CPU seconds, best of {r}; "
        f"Python {sys.version.split()[0]}, "
        f"{platform.machine()}, hera {getattr(hera, '__version__', '?')}"
    )
    for label, seconds, note in rows:
        print(f"  {label:<48} {seconds:8.3f} s  {note}")
    ratios = [
        (
            "Hera build+to_yaml / k8sco tree+render+YAML (goal >= 3)",
            (t_hbuild + t_hyaml) / (t_tree + k8sco_yaml),
        ),
        ("Hera to_yaml / k8sco render+YAML", t_hyaml / k8sco_yaml),
        ("Hera to_dict+CSafeDumper / k8sco render+YAML", (t_hdict + t_c_hera) / k8sco_yaml),
        ("k8sco render+YAML / json.dumps (goal <= 2.5)", k8sco_yaml / t_json),
        ("k8sco YAML alone / json.dumps", t_emit / t_json),
        ("Jobs with own parts: render+YAML / json.dumps", (t_fresh + t_fresh_emit) / t_fresh_json),
        ("CSafeDumper / k8sco emitter, same dicts", t_c_k8sco / t_emit),
    ]
    print("ratios:")
    for label, ratio in ratios:
        print(f"  {label:<56} {ratio:8.2f} x")
    del hera_yaml


if __name__ == "__main__":
    main()
