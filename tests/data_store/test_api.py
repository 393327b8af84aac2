"""co.data.pipeline / co.data.user: Conducto's API, the store read from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

import k8sco as co
from k8sco.errors import DataError, DataNotFound


@pytest.fixture
def scopes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.setenv("K8SCO_DATA_PIPELINE", str(tmp_path / "pipe"))
    monkeypatch.setenv("K8SCO_DATA_USER", (tmp_path / "user").as_uri())
    return tmp_path / "pipe", tmp_path / "user"


def test_aliases_are_conductos() -> None:
    assert co.temp_data is co.data.pipeline
    assert co.perm_data is co.data.user


def test_scopes_are_separate_stores(scopes: tuple[Path, Path]) -> None:
    pipe, user = scopes
    co.data.pipeline.puts("x", b"pipeline")
    co.data.user.puts("x", b"user")
    assert (pipe / "x").read_bytes() == b"pipeline"
    assert (user / "x").read_bytes() == b"user"
    assert co.data.pipeline.gets("x", byte_range=[0, 4]) == b"pipe"
    assert co.data.pipeline.size("x") == 8 and co.data.pipeline.exists("x")
    assert co.data.pipeline.list("") == ["x"]
    assert co.data.pipeline.url("x") == (pipe / "x").as_uri()
    co.data.pipeline.delete("x")
    assert not co.data.pipeline.exists("x") and co.data.user.exists("x")


def test_puts_refuses_anything_but_bytes(scopes: tuple[Path, Path]) -> None:
    with pytest.raises(ValueError, match="Expected object of type bytes"):
        co.data.pipeline.puts("x", "text")  # type: ignore[arg-type]


def test_bad_byte_range(scopes: tuple[Path, Path]) -> None:
    co.data.pipeline.puts("x", b"123")
    with pytest.raises(DataError, match="byte_range"):
        co.data.pipeline.gets("x", byte_range=[3, 1])
    with pytest.raises(DataError, match="byte_range"):
        co.data.pipeline.gets("x", byte_range=[1])


def test_pipeline_scope_outside_a_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("K8SCO_DATA_PIPELINE", raising=False)
    with pytest.raises(DataError, match="needs a pipeline"):
        co.data.pipeline.exists("x")


def test_user_scope_defaults_to_k8sco_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("K8SCO_DATA_USER", raising=False)
    monkeypatch.setenv("K8SCO_HOME", str(tmp_path / "home"))
    co.data.user.puts("models/m", b"1")
    assert (tmp_path / "home/data/models/m").read_bytes() == b"1"


def test_caches(scopes: tuple[Path, Path], tmp_path: Path) -> None:
    src = tmp_path / "build"
    (src / "sub").mkdir(parents=True)
    (src / "sub/a.txt").write_text("hello")
    assert not co.data.user.cache_exists("deps", "abc")
    co.data.user.save_cache("deps", "abc", str(src))
    co.data.user.save_cache("deps", "def", str(src))
    assert co.data.user.cache_exists("deps", "abc")
    assert co.data.user.list("conducto-cache/deps/") == [
        "conducto-cache/deps/abc.tar.gz",
        "conducto-cache/deps/def.tar.gz",
    ]
    out = tmp_path / "restored"
    co.data.user.restore_cache("deps", "abc", str(out))
    assert (out / "build/sub/a.txt").read_text() == "hello"
    co.data.user.clear_cache("deps", "abc")
    assert not co.data.user.cache_exists("deps", "abc")
    assert co.data.user.cache_exists("deps", "def")
    co.data.user.clear_cache("deps")
    assert co.data.user.list("conducto-cache/") == []
    with pytest.raises(DataNotFound, match="Cache not found"):
        co.data.user.restore_cache("deps", "abc", str(out))


def test_api_over_s3(monkeypatch: pytest.MonkeyPatch, s3_env: dict[str, str], bucket: str) -> None:
    for k, v in s3_env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("K8SCO_DATA_PIPELINE", f"s3://{bucket}/ns/pipelines/uid-1/data")
    co.data.pipeline.puts("r/a", b"abc")
    assert co.data.pipeline.gets("r/a", byte_range=[1, 3]) == b"bc"
    assert co.data.pipeline.list("r") == ["r/a"]
    assert co.data.pipeline.url("r/a") == f"s3://{bucket}/ns/pipelines/uid-1/data/r/a"
