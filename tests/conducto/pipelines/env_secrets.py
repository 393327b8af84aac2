"""
### **Environment variables and secrets**
"""

import utils

import k8sco as co


def env_variables() -> co.Exec:
    """Environment variables: the env argument of any node, a dict of strings."""
    env = {
        "NUM_THREADS": "4",
        "TEST_URL": "http://localhost:8080",
    }
    command = "env | grep -e NUM_THREADS -e TEST_URL | sort"
    return co.Exec(command, env=env, image=utils.IMG, doc=co.util.magic_doc())


def user_secrets() -> co.Exec:
    """User secrets, put while the tree is built, injected into every exec node."""
    user_secrets = {
        "COMPAT_PASSWORD": "ReallyGoodPassword",
        "COMPAT_SSN": "Never in code",
    }

    secrets = co.api.Secrets()
    secrets.put_user_secrets(user_secrets)

    command = "env | grep -e COMPAT_PASSWORD -e COMPAT_SSN | sort"
    return co.Exec(command, image=utils.IMG, doc=co.util.magic_doc())


def examples() -> co.Parallel:
    ex = co.Parallel(doc=__doc__)
    ex["env_variables"] = env_variables()
    ex["user_secrets"] = user_secrets()
    return ex


if __name__ == "__main__":
    print(__doc__)
    co.Image.share_directory("CONDUCTO_DEMO", "..")
    co.main(default=examples)
