"""
### **Error Resolution**
Note: **_Errors in this node are intentional._**
"""

import utils

import k8sco as co


def flaky_error():
    """A test that fails; its Serial stops before deploying."""
    skip_doc = "**_Click the Skip button to let this pipeline continue!_**"
    with co.Serial(image=utils.IMG, doc=co.util.magic_doc()) as test_and_deploy:
        with co.Parallel(name="test"):
            co.Exec("echo test app 1", name="test1")
            co.Exec("echo test app 2 && force_fail", name="test2", doc=skip_doc)
        co.Exec("echo deploying all apps", name="deploy")
    return test_and_deploy


def specification_error():
    """A typo in an environment variable's name."""
    env = {"CRATCH_DIR": "/tmp"}
    with co.Serial(image=utils.IMG, env=env, doc=co.util.magic_doc()) as spec_error:
        co.Exec("echo first do this", name="do_this")
        co.Exec('ls -ld "$SCRATCH_DIR"', name="env_error")
        co.Exec("echo then do that", name="do_that")
    return spec_error


def debug_error():
    """A bug in the code the node runs."""
    return co.Exec("python code/debug_me.py", image=utils.IMG, doc=co.util.magic_doc())


def examples() -> co.Parallel:
    ex = co.Parallel(doc=__doc__)
    ex["flaky_error"] = flaky_error()
    ex["specification_error"] = specification_error()
    ex["debug_error"] = debug_error()
    return ex


if __name__ == "__main__":
    print(__doc__)
    co.Image.share_directory("CONDUCTO_DEMO", "..")
    co.main(default=examples)
