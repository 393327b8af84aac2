"""Every store has the same semantics: the filesystem store, and the S3 store against a
moto server over HTTP (conftest.py)."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path

import pytest

from k8sco.data.s3 import S3Config, S3Store, sign
from k8sco.data.stores import FileStore, Store, open_store
from k8sco.errors import DataError, DataNotFound


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "file":
        return FileStore(tmp_path / "store")
    env = request.getfixturevalue("s3_env")
    bucket = request.getfixturevalue("bucket")
    return open_store(f"s3://{bucket}/some/prefix", env)


def test_puts_gets_round_trip_and_byte_range(store: Store) -> None:
    data = bytes(range(256)) * 10
    store.puts("a/b.bin", data)
    assert store.gets("a/b.bin") == data
    assert store.gets("/a/b.bin") == data  # a leading '/' is ignored, as in Conducto
    assert store.gets("a/b.bin", (10, 20)) == data[10:20]
    assert store.gets("a/b.bin", (2550, 9999)) == data[2550:]
    assert store.gets("a/b.bin", (5, 5)) == b""
    assert store.gets("a/b.bin", (4000, 5000)) == b""  # past the end, as a file read
    assert store.size("a/b.bin") == 2560
    assert store.exists("a/b.bin")
    assert not store.exists("a/b")
    store.puts("a/b.bin", b"new")  # overwrite
    assert store.gets("a/b.bin") == b"new"
    store.puts("empty", b"")
    assert store.gets("empty") == b"" and store.size("empty") == 0


def test_missing_objects_raise_data_not_found(store: Store, tmp_path: Path) -> None:
    for call in (
        lambda: store.gets("nope"),
        lambda: store.gets("nope", (0, 0)),
        lambda: store.size("nope"),
        lambda: store.delete("nope"),
        lambda: store.get("nope", str(tmp_path / "out")),
    ):
        with pytest.raises(DataNotFound, match="'nope'") as info:
            call()
        assert isinstance(info.value, FileNotFoundError)
    assert not (tmp_path / "out").exists()


def test_get_and_put_files(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"x" * 3_000_000)
    store.put("big/file", str(src))
    dst = tmp_path / "dst.bin"
    store.get("big/file", str(dst))
    assert dst.read_bytes() == src.read_bytes()
    with pytest.raises(DataError, match="cannot read"):
        store.put("x", str(tmp_path / "missing"))


def test_list_is_a_recursive_prefix_match_on_every_backend(store: Store) -> None:
    for name in ("d/a", "d/b/c", "d/b/d", "dx/e", "f"):
        store.puts(name, b"1")
    assert store.list("d/") == ["d/a", "d/b/c", "d/b/d"]
    assert store.list("d") == ["d/a", "d/b/c", "d/b/d", "dx/e"]
    assert store.list("d/b") == ["d/b/c", "d/b/d"]
    assert store.list("") == ["d/a", "d/b/c", "d/b/d", "dx/e", "f"]
    assert store.list("zz") == []


def test_delete_one_and_recursive(store: Store) -> None:
    for name in ("d/a", "d/b/c", "dx/e"):
        store.puts(name, b"1")
    store.delete("d/a")
    assert store.list("") == ["d/b/c", "dx/e"]
    store.delete("d/", recursive=True)
    assert store.list("") == ["dx/e"]
    store.delete("", recursive=True)
    assert store.list("") == []


@pytest.mark.parametrize("name", ["", "/", "a/../b", "../x", "a//b", "./a", "a/./b"])
def test_names_that_could_escape_or_alias_are_refused(store: Store, name: str) -> None:
    with pytest.raises(DataError, match="name"):
        store.puts(name, b"1")


def test_file_store_writes_are_atomic_and_leave_no_temporary(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.puts("a", b"1")

    class Boom(Exception):
        pass

    def fail(f: object) -> None:
        raise Boom

    with pytest.raises(Boom):
        store._write("a", fail)
    assert store.gets("a") == b"1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_s3_keys_live_under_the_prefix(s3_env: dict[str, str], bucket: str) -> None:
    one = open_store(f"s3://{bucket}/one", s3_env)
    two = open_store(f"s3://{bucket}/one-two/", s3_env)
    root = open_store(f"s3://{bucket}", s3_env)
    one.puts("x", b"1")
    two.puts("y", b"2")
    assert one.list("") == ["x"]
    assert two.list("") == ["y"]
    assert root.list("") == ["one-two/y", "one/x"]
    assert one.object_url("x") == f"s3://{bucket}/one/x"


def test_s3_listing_pages_past_1000_keys(s3_env: dict[str, str], bucket: str) -> None:
    store = open_store(f"s3://{bucket}/p", s3_env)
    names = [f"k/{i:05d}" for i in range(1005)]
    for name in names:
        store.puts(name, b"")
    assert store.list("k/") == names
    store.delete("k", recursive=True)  # DeleteObjects in batches of 1000
    assert store.list("") == []


def test_s3_refusals_name_the_store(s3_env: dict[str, str], bucket: str) -> None:
    with pytest.raises(DataError, match="does not exist"):
        open_store("s3://no-such-bucket-k8sco/x", s3_env).puts("a", b"1")
    with pytest.raises(DataError, match="AWS_ACCESS_KEY_ID"):
        open_store(f"s3://{bucket}/x", {"K8SCO_S3_ENDPOINT": s3_env["K8SCO_S3_ENDPOINT"]})
    unreachable = {**s3_env, "K8SCO_S3_ENDPOINT": "http://127.0.0.1:9"}
    with pytest.raises(DataError, match="did not answer"):
        open_store(f"s3://{bucket}/x", unreachable).puts("a", b"1")


def test_sigv4_matches_the_aws_documented_example() -> None:
    # "Example: GET Object" of the S3 API reference, "Signature Calculations for the
    # Authorization Header: Transferring Payload in a Single Chunk (AWS Signature V4)".
    config = S3Config(
        endpoint="https://s3.amazonaws.com",
        region="us-east-1",
        access_key="AKIAIOSFODNN7EXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    )
    headers = sign(
        config,
        "GET",
        "examplebucket.s3.amazonaws.com",
        "/test.txt",
        {},
        {"Range": "bytes=0-9"},
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        datetime.datetime(2013, 5, 24, tzinfo=datetime.timezone.utc),
    )
    assert headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )


def test_sigv4_list_objects_example() -> None:
    # "Example: GET Bucket (List Objects)" of the same page: a signed query string.
    config = S3Config(
        endpoint="https://s3.amazonaws.com",
        region="us-east-1",
        access_key="AKIAIOSFODNN7EXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    )
    headers = sign(
        config,
        "GET",
        "examplebucket.s3.amazonaws.com",
        "/",
        {"max-keys": "2", "prefix": "J"},
        {},
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        datetime.datetime(2013, 5, 24, tzinfo=datetime.timezone.utc),
    )
    assert headers["authorization"].endswith(
        "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
    )


def test_open_store_urls(tmp_path: Path) -> None:
    assert isinstance(open_store(str(tmp_path)), FileStore)
    assert isinstance(open_store(tmp_path.as_uri()), FileStore)
    assert open_store(tmp_path.as_uri()).url == tmp_path.as_uri()
    with pytest.raises(DataError, match="not a data store"):
        open_store("gs://bucket/x")
    env = {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b", "K8SCO_S3_ADDRESSING": "virtual"}
    s3 = open_store("s3://bkt/pre", env)
    assert isinstance(s3, S3Store) and s3._host == "bkt.s3.us-east-1.amazonaws.com"


_ = Callable
