"""
### Environment variables and secrets
* `env=` on any node sets environment variables for it and its descendants (merged key by
  key, the child winning).
* Secrets reach every node as environment variables and never appear in the pipeline, its
  Jobs or its logs. Set them once, outside the pipeline:

      k8sco secrets set DEMO_PASSWORD              # on the cluster (prompts for the value)
      k8sco secrets set --local DEMO_PASSWORD      # for `k8sco run` on this machine

  or from Python, as Conducto's API does: `co.api.Secrets().put_user_secrets({...})`
  (`python env_secrets.py save_secret --password=...` below).
* `co.SecretRef("name", "key")` gives a node one key of any Secret of the namespace (on
  this machine: `k8sco secrets set --local --secret=name key=...`).
"""

from __future__ import annotations

import k8sco as co


def env_variables() -> co.Exec:
    """
    Environment variables: a dictionary of strings on any node.
    """
    env = {"NUM_THREADS": "4", "TEST_URL": "http://localhost:8080"}
    command = "env | grep -e NUM_THREADS -e TEST_URL | sort"
    return co.Exec(command, env=env, doc=co.util.magic_doc())


def user_secrets() -> co.Exec:
    """
    Every secret is in every node's environment. Print facts about a secret, never its value.
    """
    command = 'echo "DEMO_PASSWORD is set: ${#DEMO_PASSWORD} characters"'
    return co.Exec(command, doc=co.util.magic_doc())


def secret_ref() -> co.Exec:
    """
    One key of a named Secret, as a variable of this node only.
    """
    env = {"API_TOKEN": co.SecretRef("demo-api", "token")}
    command = 'test -n "$API_TOKEN" && echo "API_TOKEN is set: ${#API_TOKEN} characters"'
    return co.Exec(command, env=env, doc=co.util.magic_doc())


def save_secret(password: str) -> None:
    """Store DEMO_PASSWORD as Conducto's API does (k8sco: the cluster's Secret, or the local
    secrets file when there is no kubeconfig)."""
    co.api.Secrets().put_user_secrets({"DEMO_PASSWORD": password})


def env_secrets() -> co.Parallel:
    ex = co.Parallel(doc=__doc__)
    ex["env_variables"] = env_variables()
    ex["user_secrets"] = user_secrets()
    ex["secret_ref"] = secret_ref()
    return ex


if __name__ == "__main__":
    co.main(default=env_secrets)
