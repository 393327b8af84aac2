"""Job names: DNS-1123 labels of at most 63 characters, deterministic, distinct per path."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k8sco.errors import PipelineError
from k8sco.render.names import (
    check_pipeline_name,
    check_unique,
    is_dns_label,
    job_name,
    path_hash,
    pipeline_name_from,
    slug,
)

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

node_names = st.text(
    alphabet=st.characters(exclude_categories=["Cs", "Cc"], exclude_characters="/"),
    min_size=1,
    max_size=80,
)
paths = st.lists(node_names, min_size=0, max_size=6).map(lambda parts: "/" + "/".join(parts))
pipelines = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True)


def test_readable_layout() -> None:
    name = job_name("primes", "/stage 1/check 3")
    assert name.startswith("primes-stage-1-check-3-")
    assert len(name) == len("primes-stage-1-check-3-") + 10
    assert job_name("primes", "/") == f"primes-{path_hash('primes', '/')}"


@pytest.mark.parametrize(
    "pair",
    [
        ("/A", "/a"),
        ("/x y", "/x-y"),
        ("/x.y", "/x_y"),
        ("/日本", "/中国"),
        ("/café", "/cafe"),
        ("/a/b", "/a b"),
        ("/" + "n" * 300 + "1", "/" + "n" * 300 + "2"),
    ],
)
def test_paths_that_slug_alike_get_distinct_names(pair: tuple[str, str]) -> None:
    first, second = (job_name("pipe", p) for p in pair)
    assert first != second
    assert is_dns_label(first) and is_dns_label(second)


def test_long_names_keep_the_leaf() -> None:
    name = job_name("a-rather-long-pipeline-name-for-testing", "/stage/" + "x" * 100 + "/leaf")
    assert len(name) == 63
    assert name.startswith("a-rather-long-pipeline-nam")
    assert name[:-11].endswith("-leaf")


def test_long_pipeline_names_share_no_job_names() -> None:
    # Both truncate to the same prefix; the hash covers the whole pipeline name.
    a, b = "p" * 62 + "a", "p" * 62 + "b"
    assert job_name(a, "/x") != job_name(b, "/x")
    assert len(job_name(a, "/x")) <= 63


@settings(max_examples=500)
@given(pipelines, paths)
def test_always_a_dns_label_and_deterministic(pipeline: str, path: str) -> None:
    name = job_name(pipeline, path)
    assert len(name) <= 63
    assert DNS_LABEL.match(name), name
    assert job_name(pipeline, path) == name


@settings(max_examples=200)
@given(pipelines, st.sets(paths, min_size=2, max_size=50))
def test_distinct_paths_distinct_names(pipeline: str, path_set: set[str]) -> None:
    names = check_unique(pipeline, path_set)
    assert len(set(names.values())) == len(path_set)


@pytest.mark.parametrize("bad", ["", "Primes", "-x", "x-", "a_b", "a.b", "x" * 64, "日本"])
def test_bad_pipeline_names(bad: str) -> None:
    with pytest.raises(PipelineError, match="pipeline name"):
        check_pipeline_name(bad)


def test_the_error_suggests_a_name() -> None:
    with pytest.raises(PipelineError, match="'my-pipe'"):
        check_pipeline_name("My_Pipe")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("primes", "primes"),
        ("run_primes", "run-primes"),
        ("MyPipeline", "mypipeline"),
        ("__", "pipeline"),
        ("日本", "pipeline"),
        ("x" * 100, "x" * 40),
    ],
)
def test_names_derived_from_functions(text: str, expected: str) -> None:
    assert pipeline_name_from(text) == expected
    check_pipeline_name(pipeline_name_from(text))


def test_slug() -> None:
    assert slug("/Stage 1/Ünïcode  test!") == "stage-1-unicode-test"
    assert slug("/") == ""
