"""The YAML emitter: whatever it writes, YAML readers read back as the same data."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from k8sco.render.emit import dump, dump_all, quote

LOADERS = [yaml.SafeLoader, yaml.CSafeLoader] if yaml.__with_libyaml__ else [yaml.SafeLoader]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False)
    | st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40)
    | st.sampled_from(
        [
            "yes",
            "No",
            "ON",
            "off",
            "null",
            "~",
            "1",
            "0x1F",
            "1e3",
            "1:20",
            ".5",
            "2026-01-01",
            "- x",
            "a: b",
            "a #b",
            "x:",
            "&a",
            "*a",
            "!t",
            "|",
            ">",
            "@x",
            "`x",
            "%x",
            "'",
            '"',
            "",
            " ",
            "a\nb",
            "a\n",
            "a\n\n",
            "\ta",
            "a \nb",
            "\x85",
            "\u2028x",
            "\ufeffx",
            "=",
            "<<",
            "-",
            "?",
            ",",
            "[]",
        ]
    )
)
keys = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=20)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=25,
)


@pytest.mark.parametrize("loader", LOADERS, ids=lambda loader: loader.__name__)
@settings(max_examples=150, deadline=None)
@given(st.lists(st.dictionaries(keys, documents, min_size=1, max_size=5), min_size=1, max_size=3))
def test_round_trip(loader: Any, docs: list[dict[str, Any]]) -> None:
    text = dump_all(docs)
    assert list(yaml.load_all(text, Loader=loader)) == docs


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("primes", "primes"),
        ("/stage 1/check 3", "/stage 1/check 3"),
        ("k8sco.io/pipeline", "k8sco.io/pipeline"),
        ("primes.py:check", "primes.py:check"),
        ("yes", '"yes"'),
        ("True", '"True"'),
        ("1", '"1"'),
        ("500m", '"500m"'),
        ("--n=3", '"--n=3"'),
        ("a: b", '"a: b"'),
        ('{"a":1}', "'{\"a\":1}'"),
        ('it\'s "x"', "'it''s \"x\"'"),
        ("\u2028", '"\\u2028"'),
    ],
)
def test_quoting(text: str, written: str) -> None:
    assert quote(text) == written
    assert yaml.safe_load(f"k: {written}") == {"k": text}


def test_multi_line_strings_are_literal_blocks() -> None:
    doc = {"command": ["/bin/sh", "-c", "set -e\necho a\n\n  indented\necho b"], "end": "x\n"}
    text = dump(doc)
    assert "- |-\n  set -e\n  echo a\n\n    indented\n  echo b\n" in text
    assert "end: |\n  x\n" in text
    assert yaml.safe_load(text) == doc


def test_layout() -> None:
    doc = {"a": {"b": [1, {"c": True, "d": None}, []], "e": {}}, "f": 1.5e-5}
    assert dump(doc) == "a:\n  b:\n  - 1\n  - c: true\n    d: null\n  - []\n  e: {}\nf: 1.5e-05\n"
    assert yaml.safe_load(dump(doc)) == doc
    assert dump_all([{"a": 1}, {"b": 2}]) == "---\na: 1\n---\nb: 2\n"


def test_shared_parts_are_written_like_copies() -> None:
    import copy

    shared = {"a": [1, {"b": "x"}], "c": {"d": []}}
    items = [shared, shared]
    docs = [{"k": shared, "l": items, "m": [shared]} for _ in range(3)]
    assert dump_all(docs) == dump_all(copy.deepcopy(docs))
    assert list(yaml.safe_load_all(dump_all(docs))) == docs


def test_documents_made_on_the_fly() -> None:
    # Each document is dropped by its maker once written: its ids may come back for the
    # next one, which must not be taken for a part already written.
    def docs() -> Any:
        for i in range(50):
            yield {"spec": {"n": i, "items": [{"i": i}, {"i": i}]}}

    assert [d["spec"]["n"] for d in yaml.safe_load_all(dump_all(docs()))] == list(range(50))
    assert list(yaml.safe_load_all(dump_all(docs()))) == list(docs())
