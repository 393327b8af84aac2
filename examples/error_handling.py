"""
### Error handling
How a failure travels, as Conducto's documentation shows it (the errors are intentional):

* `stop_on_error` (a Serial's, default True): the first failing child stops the Serial and
  its later children never run; with `stop_on_error=False` they all run (a *finally*
  pattern for clean-up steps) and the Serial still ends in error.
* A Parallel runs all its children and ends in error if any failed.
* `suppress_errors=True`: the node's failures do not make its parent fail.

`python error_handling.py --local` exits 1: the pipeline failed, as it should.
"""

from __future__ import annotations

import k8sco as co

ERROR_DOC = "**_Intentional error in this node!_**"


def stop_on_error() -> co.Parallel:
    """
    A Serial stops at its first error unless `stop_on_error=False`, which runs every child
    and still reports the Serial as errored: the clean-up always runs.
    """
    with co.Parallel(doc=co.util.magic_doc()) as example:
        with co.Serial(name="stop_on_error_default"):
            co.Exec("echo doing some setup", name="setup")
            co.Exec("this_command_will_fail", name="bad_command", doc=ERROR_DOC)
            co.Exec("echo doing some cleanup", name="cleanup")
        with co.Serial(name="stop_on_error_false", stop_on_error=False):
            co.Exec("echo doing some setup", name="setup")
            co.Exec("this_command_will_fail", name="bad_command", doc=ERROR_DOC)
            co.Exec("echo doing some cleanup", name="finally_cleanup")
    return example


def check_coverage(percent: int, minimum: int = 80) -> None:
    """Fails (an exception is an error) when coverage is below the minimum."""
    print(f"coverage {percent}% (minimum {minimum}%)")
    if percent < minimum:
        raise SystemExit(f"coverage {percent}% is below {minimum}%")


def suppress_errors() -> co.Serial:
    """
    `suppress_errors=True` lets a Serial go on, and finish done, past a check that is
    allowed to fail: here a coverage gate that is only advisory for now.
    """
    with co.Serial(doc=co.util.magic_doc(doc_only=True)) as example:
        co.Exec("echo tests pass", name="test")
        co.Exec(
            check_coverage,
            65,
            params={"name": "coverage", "suppress_errors": True, "doc": ERROR_DOC},
        )
        co.Exec("echo deploying", name="deploy")
    return example


def error_handling() -> co.Parallel:
    ex = co.Parallel(doc=__doc__)
    ex["stop_on_error"] = stop_on_error()
    ex["suppress_errors"] = suppress_errors()
    return ex


if __name__ == "__main__":
    co.main(default=error_handling)
