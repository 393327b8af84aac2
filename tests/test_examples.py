"""Every example runs on the local runner (``k8sco run``, a real process), and its nodes'
output, read back with ``k8sco logs``, is what the example promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from kube_schemas import REPO, golden, validate_k8s, validate_pipeline

from k8sco.cli.app import cli
from k8sco.containers import dist

EXAMPLES = REPO / "examples"
GOLDEN = REPO / "tests" / "golden"
K8SCO = [sys.executable, "-m", "k8sco"]


@pytest.fixture(autouse=True)
def _work_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # .k8sco/ goes here, never into the repo
    # The local secrets file too: never the user's own (k8sco.local.secrets.path).
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def k8sco(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*K8SCO, *args], capture_output=True, text=True, check=False, cwd=cwd or os.getcwd()
    )


def examples() -> list[Path]:
    """examples/*.py, and examples/NAME/NAME.py: an example with files of its own."""
    folders = [d / f"{d.name}.py" for d in EXAMPLES.iterdir() if d.is_dir()]
    return [*EXAMPLES.glob("*.py"), *(p for p in folders if p.is_file())]


def test_every_example_is_tested() -> None:
    untested = [p.name for p in examples() if f"test_{p.stem}" not in globals()]
    assert not untested, f"add a test_<name> here that runs each of {untested}"


def test_primes() -> None:
    run = k8sco("run", str(EXAMPLES / "primes.py"))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "(5 done)" in run.stdout
    assert k8sco("logs", "/seive").stdout == "[2, 3, 5, 7, 11, 13, 17, 19, 23, 29]\n"
    assert k8sco("logs", "/check/10-20").stdout == "[10, 20): 4 primes, ok\n"
    assert k8sco("logs", "/report").stdout == "all primes below 30 checked\n"
    # The node's command, typed in a terminal in the example's directory, does the same.
    called = k8sco("call", "primes.py:seive", "--n=30", cwd=EXAMPLES)
    assert called.stdout == k8sco("logs", "/seive").stdout


def test_primes_with_an_argument() -> None:
    run = k8sco("run", f"{EXAMPLES / 'primes.py'}:primes", "--n=50")
    assert run.returncode == 0, run.stdout + run.stderr
    assert k8sco("logs", "/seive").stdout.endswith("41, 43, 47]\n")
    assert k8sco("logs", "/check/32-48").stdout == "[32, 48): 4 primes, ok\n"


def test_primes_as_a_script() -> None:
    printed = subprocess.run(
        [sys.executable, str(EXAMPLES / "primes.py")], capture_output=True, text=True, check=True
    )
    assert printed.stdout.splitlines()[:2] == [
        "Serial /",
        "  Exec /seive: k8sco call primes.py:seive --n=30",
    ]
    local = subprocess.run(
        [sys.executable, str(EXAMPLES / "primes.py"), "--n=20", "--local"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert local.returncode == 0, local.stdout + local.stderr
    assert k8sco("logs", "/seive").stdout == "[2, 3, 5, 7, 11, 13, 17, 19]\n"


def test_payload() -> None:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import payload
    finally:
        sys.path.remove(str(EXAMPLES))
    run = k8sco("run", str(EXAMPLES / "payload.py"))
    assert run.returncode == 0, run.stdout + run.stderr
    order = k8sco("logs", "/order").stdout.splitlines()
    assert order[0] == "label: order 17"
    assert order[1] == "tags: ['rush', 'a,b']"
    assert json.loads(order[2].removeprefix("payload: ")) == payload.ORDER
    assert order[3] == "total: 42.00"
    assert k8sco("logs", "/empty").stdout == "label: None\ntags: []\npayload: {}\ntotal: 0.00\n"


def test_nested() -> None:
    run = k8sco("run", str(EXAMPLES / "nested.py"))
    assert run.returncode == 1
    summary = run.stdout.split("\n\n", 1)[1]
    assert "error /test/unit/u2: exit code 1" in summary
    assert "  | assert 1 + 1 == 3" in summary
    assert "error (suppressed) /build/optional: exit code 1" in summary
    status = {line.split()[0]: line.split()[2:] for line in k8sco("status").stdout.splitlines()[1:]}
    assert status["/"][0] == "error"
    assert status["build"][0] == "done"  # optional failed, but its errors are suppressed
    assert status["flaky"][0] == "done" and status["flaky"][-2:] == ["2", "attempts"]
    assert status["u2"][0] == "error"
    assert status["u3"][0] == "done"  # a sibling of the failure still ran
    assert status["integration"] == ["pending"]  # the Serial stopped at the failure
    assert status["cleanup"][0] == "done"  # the root does not stop on errors
    assert status["docs"] == ["skipped"]
    assert k8sco("logs", "/test/unit/u3").stdout == "u3 still runs\n"
    assert k8sco("logs", "/build/flaky").stdout == (
        "first attempt fails\n[k8sco] attempt 2\nsecond attempt passes\n"
    )


def status_rows() -> dict[str, list[str]]:
    """``k8sco status`` of the latest run: each node's name (spaces and all) -> its kind,
    state and the rest of its line."""
    rows: dict[str, list[str]] = {}
    for line in k8sco("status").stdout.splitlines()[1:]:
        words = line.split()
        at = next(i for i, w in enumerate(words) if w in ("Exec", "Serial", "Parallel"))
        rows[" ".join(words[:at])] = words[at:]
    return rows


def test_node_params() -> None:
    run = k8sco("run", str(EXAMPLES / "node_params.py"))
    assert run.returncode == 0, run.stdout + run.stderr
    status = status_rows()
    assert status["deploy prod"][1] == "skipped"
    assert status["send email"][1] == "done"  # the Serial went on past the skipped node
    # doc, from the constructor, from magic_doc() and set as an attribute, is in the status.
    assert "-- Node parameters" in " ".join(status["/"])
    assert "-- `cpu` (cores) and `mem` (GB) size" in " ".join(status["cpu_and_mem"])
    assert "-- Set as **attributes**" in " ".join(status["small"])
    # env set as an attribute beats the parent's SIZE and merges with the root's STAGE.
    assert k8sco("logs", "/attributes/small").stdout == "size: small, stage: example\n"
    # describe(name, count=1): no hint, so 7 arrives as "7"; count's default makes it an int.
    assert k8sco("logs", "/attributes/native").stdout == "7 is a str, count is a int\n" * 2
    printed = subprocess.run(
        [sys.executable, str(EXAMPLES / "node_params.py")], capture_output=True, text=True
    )
    assert "    Exec /attributes/native: k8sco call node_params.py:describe --name=7 --count=2" in (
        printed.stdout.splitlines()
    )


def test_error_handling() -> None:
    run = k8sco("run", str(EXAMPLES / "error_handling.py"))
    assert run.returncode == 1, run.stdout + run.stderr
    summary = run.stdout.split("\n\n", 1)[1]
    assert "error /stop_on_error/stop_on_error_default/bad_command: exit code 127" in summary
    assert "error (suppressed) /suppress_errors/coverage: exit code 1" in summary
    log = k8sco("logs", "/stop_on_error").stdout
    assert "doing some cleanup" in log  # the finally_cleanup of stop_on_error=False ran ...
    assert log.count("doing some cleanup") == 1  # ... and the default Serial's did not
    assert k8sco("logs", "/suppress_errors/deploy").stdout == "deploying\n"
    assert k8sco("logs", "/suppress_errors/coverage").stdout == (
        "coverage 65% (minimum 80%)\ncoverage 65% is below 80%\n"
    )
    status = status_rows()
    assert status["suppress_errors"][1] == "done"  # its failed coverage check is suppressed
    assert status["stop_on_error"][1] == "error"
    assert status["stop_on_error_false"][1] == "error"  # ran everything, still failed
    assert status["cleanup"] == ["Exec", "pending"]  # the default Serial stopped
    assert status["finally_cleanup"][1] == "done"


def test_env_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No cluster: co.api.Secrets() then keeps its secrets in the local file (k8sco.api).
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    example = str(EXAMPLES / "env_secrets.py")
    run = k8sco("run", example)
    assert run.returncode == 1  # the Secret that co.SecretRef names is not there yet
    assert "names key 'token' of Secret 'demo-api'" in run.stdout
    saved = subprocess.run(
        [sys.executable, example, "save_secret", "--password=hunter22"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert saved.returncode == 0, saved.stdout + saved.stderr
    assert k8sco("secrets", "set", "--local", "--secret=demo-api", "token=abc123").returncode == 0
    run = k8sco("run", example)
    assert run.returncode == 0, run.stdout + run.stderr
    assert k8sco("logs", "/env_variables").stdout == (
        "NUM_THREADS=4\nTEST_URL=http://localhost:8080\n"
    )
    assert k8sco("logs", "/user_secrets").stdout == "DEMO_PASSWORD is set: 8 characters\n"
    assert k8sco("logs", "/secret_ref").stdout == "API_TOKEN is set: 6 characters\n"
    # Values stay out of the run's record; the pipeline never held them.
    record = "".join(
        p.read_text(errors="replace") for p in Path(".k8sco").rglob("*") if p.is_file()
    )
    assert "hunter22" not in record and "abc123" not in record


def test_markdown() -> None:
    run = k8sco("run", str(EXAMPLES / "markdown.py"))
    assert run.returncode == 0, run.stdout + run.stderr
    # Piped, the markup stays as the node printed it.
    assert k8sco("logs", "/table").stdout == (
        "ran 3 suites\n<ConductoMarkdown>\n### Test results\n\n| suite | result |\n|---|---|\n"
        "| unit | FAILED |\n| integration | OK |\n| docs | OK |\n</ConductoMarkdown>\n"
    )
    assert "<ConductoMarkdown>\n**Build** took _42_ seconds" in k8sco("logs", "/shell").stdout
    # On a terminal it is rendered: no tags, no Markdown syntax, the table drawn.
    on_tty = logs_on_a_terminal("/table")
    assert "ran 3 suites" in on_tty and "Test results" in on_tty
    assert "ConductoMarkdown" not in on_tty and "###" not in on_tty and "|---|" not in on_tty
    assert "integration" in on_tty


def logs_on_a_terminal(path: str) -> str:
    """``k8sco logs PATH`` with its stdout on a pseudo-terminal, as a person sees it."""
    import pty

    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([*K8SCO, "logs", path], stdout=follower, stderr=subprocess.PIPE)
    finally:
        os.close(follower)  # the child holds its own copy
    chunks = []
    try:
        while chunk := os.read(leader, 65536):  # read while it writes: a pty's buffer is small
            chunks.append(chunk)
    except OSError:  # EIO: the child exited and the terminal is drained
        pass
    finally:
        os.close(leader)
    _, err = proc.communicate()
    assert proc.returncode == 0, err
    return b"".join(chunks).decode(errors="replace")


IMAGES = EXAMPLES / "images" / "images.py"


def test_images() -> None:
    run = k8sco("run", str(IMAGES))
    assert run.returncode == 0, run.stdout + run.stderr
    assert k8sco("logs", "/existing_image").stdout == "42\n"
    # copy_dir="./code": the node runs in that folder here, as in its image on a cluster.
    assert k8sco("logs", "/copy_local_code").stdout == "app tests: 1 passed\n"
    assert k8sco("logs", "/dockerfile").stdout == "app tests: 1 passed\n"


def render_images(monkeypatch: pytest.MonkeyPatch, *args: str) -> list[dict[str, Any]]:
    """``k8sco render`` of the images example, its images named as for an installed k8sco:
    from a checkout, an image's tag hashes k8sco's own wheel (k8sco.containers.dist), which
    every change to k8sco/ would change, and the golden file with it."""
    monkeypatch.setattr(dist, "checkout_root", lambda: None)
    result = CliRunner().invoke(cli, ["render", str(IMAGES), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    if not args:
        golden(GOLDEN / "images.yaml", result.stdout)
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    validate_pipeline(docs[0])
    for doc in docs[1:]:
        validate_k8s(doc)
    return docs


def job_images(docs: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """Each Job's node path -> its image and working directory."""
    out = {}
    for doc in docs[1:]:
        container = doc["spec"]["template"]["spec"]["containers"][0]
        out[doc["metadata"]["annotations"]["k8sco.io/path"]] = (
            container["image"],
            container["workingDir"],
        )
    return out


def test_images_render(monkeypatch: pytest.MonkeyPatch) -> None:
    images = job_images(render_images(monkeypatch))
    assert set(images) == {"/existing_image", "/copy_local_code", "/dockerfile", "/dockerfile_text"}
    # Each co.Image its own tag; the same folder copied onto two bases, two images.
    assert len({image for image, _ in images.values()}) == 4


def git(*args: str, cwd: Path) -> str:
    # Fixed names and dates: the same files make the same commit, on any machine.
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "k8sco",
        "GIT_AUTHOR_EMAIL": "k8sco@example.com",
        "GIT_COMMITTER_NAME": "k8sco",
        "GIT_COMMITTER_EMAIL": "k8sco@example.com",
        "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_images_from_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work, bare = tmp_path / "work", tmp_path / "app.git"
    work.mkdir()
    git("init", "--quiet", "--initial-branch=main", cwd=work)
    (work / "app_test.py").write_text("print('from git')\n")
    git("add", "app_test.py", cwd=work)
    git("commit", "--quiet", "-m", "first", cwd=work)
    git("clone", "--quiet", "--bare", str(work), str(bare), cwd=tmp_path)
    url = bare.as_uri()

    first = job_images(render_images(monkeypatch, f"--repo={url}", "--branch=main"))
    assert first["/clone_from_git"][0].startswith("k8sco-")  # built by k8sco, named by hash
    assert first["/clone_from_git"][1] == "/app"  # the clone's root is the node's folder
    again = job_images(render_images(monkeypatch, f"--repo={url}", "--branch=main"))
    assert again == first  # nothing cloned or built: the tag is a hash of the inputs

    (work / "app_test.py").write_text("print('from git, second commit')\n")
    git("commit", "--quiet", "-am", "second", cwd=work)
    git("push", "--quiet", str(bare), "main", cwd=work)
    second = job_images(render_images(monkeypatch, f"--repo={url}", "--branch=main"))
    assert second["/clone_from_git"][0] != first["/clone_from_git"][0]  # a new commit
    del second["/clone_from_git"], first["/clone_from_git"]
    assert second == first  # the other images did not change
