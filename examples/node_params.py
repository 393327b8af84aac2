"""
### Node parameters
Serial, Parallel and Exec nodes take parameters the way Conducto's documentation sets them:

* as constructor arguments: `co.Exec("...", cpu=0.25, mem=0.25)`,
* as attributes, after the node is made: `node.doc = "..."`, `node.env = {...}`,
* from the function that builds the node: `doc=co.util.magic_doc()`.

`skip=True` leaves a node out of a run (its Serial goes on past it); the other parameters
are inherited by descendants, `env` merged key by key.
"""

from __future__ import annotations

import k8sco as co


def cpu_and_mem() -> co.Exec:
    """
    `cpu` (cores) and `mem` (GB) size an Exec node; the defaults are 1 and 2. On a
    cluster they are its pod's requests and limits.
    """
    return co.Exec("echo not doing much", cpu=0.25, mem=0.25, doc=co.util.magic_doc())


def skip() -> co.Serial:
    """
    A node with `skip=True` does not run, and its Serial carries on past it: a step
    that someone runs by hand, such as a production deploy.
    """
    with co.Serial(doc=co.util.magic_doc(doc_only=True)) as skip_example:
        co.Exec("echo build some stuff", name="build")
        co.Exec("echo deploy staging", name="deploy staging")
        co.Exec("echo deploy prod", name="deploy prod", skip=True)
        co.Exec("echo send status email", name="send email")
    return skip_example


def describe(name, count=1, loud=False):
    """
    A native function's arguments: `name` has no hint and no default, so it arrives as a
    string; `count=1` makes it an int and `loud=False` a flag.
    """
    for _ in range(count):
        line = f"{name} is a {type(name).__name__}, count is a {type(count).__name__}"
        print(line.upper() if loud else line)


def attributes() -> co.Parallel:
    """
    Parameters are attributes too. A native-function node takes its node parameters this
    way (or through `.set()`), since its keyword arguments are the function's.
    """
    output = co.Parallel(doc=co.util.magic_doc(doc_only=True), env={"SIZE": "large"})
    output["small"] = co.Exec('echo "size: $SIZE, stage: $STAGE"')
    output["small"].cpu = 0.5
    output["small"].mem = 0.5
    output["small"].env = {"SIZE": "small"}
    output["small"].doc = "Set as **attributes**; `SIZE` beats the parent's."

    output["native"] = co.Exec(describe, 7, count=2)
    output["native"].doc = co.util.magic_doc(func=describe)
    output["native"].mem = 0.5
    return output


def node_params() -> co.Parallel:
    ex = co.Parallel(doc=__doc__, env={"STAGE": "example"})
    ex["cpu_and_mem"] = cpu_and_mem()
    ex["skip"] = skip()
    ex["attributes"] = attributes()
    return ex


if __name__ == "__main__":
    co.main(default=node_params)
