"""
### **Node Parameters**
cpu, mem, stop_on_error, doc and skip.

Note: **_Errors in this node are intentional._**
"""

import utils

import k8sco as co


def cpu_and_mem() -> co.Exec:
    """`cpu` and `mem` limit what an Exec node gets."""
    return co.Exec(
        "echo not doing much", cpu=0.25, mem=0.25, image=utils.IMG, doc=co.util.magic_doc()
    )


def stop_on_error() -> co.Parallel:
    """A Serial stops at its first error unless `stop_on_error=False`."""
    error_doc = "**_Intentional error in this node!_**"
    with co.Parallel(image=utils.IMG, doc=co.util.magic_doc()) as stop_on_error_example:
        with co.Serial(name="stop_on_error_default"):
            co.Exec("echo doing some setup", name="setup")
            co.Exec("this_command_will_fail", name="bad_command", doc=error_doc)
            co.Exec("echo doing some cleanup", name="cleanup")
        with co.Serial(name="stop_on_error_false", stop_on_error=False):
            co.Exec("echo doing some setup", name="setup")
            co.Exec("this_command_will_fail", name="bad_command", doc=error_doc)
            co.Exec("echo doing some cleanup", name="finally_cleanup")
    return stop_on_error_example


def doc():
    """Nodes are documented with `doc`, in Markdown."""
    command = "echo doc example"
    with co.Parallel(image=utils.IMG, doc=co.util.magic_doc()) as doc_example:
        co.Exec(command, name="unformatted", doc="I can have unformatted text.")
        co.Exec(command, name="markdown", doc="### I _can_ **use** `markdown`.")
    return doc_example


def skip():
    """Nodes can be skipped with `skip=True`."""
    with co.Serial(image=utils.IMG, doc=co.util.magic_doc()) as skip_example:
        co.Exec("echo build some stuff", name="build")
        co.Exec("echo deploy prod", name="deploy prod", skip=True)
        co.Exec("echo send status email", name="send email")
    return skip_example


def examples() -> co.Parallel:
    ex = co.Parallel(doc=__doc__)
    ex["cpu_and_mem"] = cpu_and_mem()
    ex["stop_on_error"] = stop_on_error()
    ex["doc"] = doc()
    ex["skip"] = skip()
    return ex


if __name__ == "__main__":
    print(__doc__)
    co.Image.share_directory("CONDUCTO_DEMO", "..")
    co.main(default=examples)
