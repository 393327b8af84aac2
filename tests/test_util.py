"""``co.util``: Conducto's helpers, with Conducto 0.1.28's behaviour."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest

import k8sco as co
from k8sco.errors import UsageError


def documented() -> str:
    """Build the thing.

    It has two steps:
      - one
      - two
    """
    return co.util.magic_doc()


def documented_doc_only() -> str:
    """Only this."""
    return co.util.magic_doc(doc_only=True)


def commented() -> str:
    # Explains the step
    # over two lines.
    return co.util.magic_doc(comment=True)


def no_docstring() -> str:
    return co.util.magic_doc(doc_only=True)


def test_magic_doc_is_the_docstring_unindented_then_the_source_without_it() -> None:
    doc = documented()
    head, _, code = doc.partition("\n\n```python\n")
    assert head == "Build the thing.\n\nIt has two steps:\n  - one\n  - two"
    assert code.endswith("\n```")
    assert code.startswith("def documented() -> str:\n")
    assert "Build the thing" not in code
    assert "return co.util.magic_doc()" in code


def test_doc_only_and_comment() -> None:
    assert documented_doc_only() == "Only this."
    assert commented() == "Explains the step\nover two lines."


def test_a_function_without_docstring_uses_the_module_docstring() -> None:
    assert no_docstring() == __doc__.strip()


def test_func_names_another_function() -> None:
    assert co.util.magic_doc(func=documented_doc_only, doc_only=True) == "Only this."
    with pytest.raises(UsageError, match="func must be a function"):
        co.util.magic_doc(func=3)  # type: ignore[arg-type]


def test_a_nested_function_is_found_through_its_code() -> None:
    def inner() -> str:
        """Inner doc."""
        return co.util.magic_doc(doc_only=True)

    assert inner() == "Inner doc."


def test_doc_reaches_the_node() -> None:
    def pipeline() -> co.Serial:
        """The pipeline's doc."""
        return co.Serial(doc=co.util.magic_doc(doc_only=True))

    assert pipeline().params["doc"] == "The pipeline's doc."


def test_unindent_matches_conducto() -> None:
    text = "first\n    a\n      b\n    c\n"
    assert co.util.unindent(text) == "first\na\n  b\nc"
    assert co.util.unindent(textwrap.dedent("  x  ")) == "x"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        ("", False),
        ("0", False),
        ("false", False),
        ("None", False),
        ("F", False),
        ("1", True),
        ("yes", True),
        ("anything", True),
    ],
)
def test_env_bool_reads_like_conducto(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: bool
) -> None:
    if value is None:
        monkeypatch.delenv("K8SCO_TEST_FLAG", raising=False)
    else:
        monkeypatch.setenv("K8SCO_TEST_FLAG", value)
    assert co.util.env_bool("K8SCO_TEST_FLAG") is expected


def test_makedatenodes_groups_by_month_past_ten_dates() -> None:
    root = co.Serial()
    days = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(12)]
    for parent, day in co.util.makedatenodes(root, days, makeLeafNode=True, nodeType=co.Serial):
        parent["run"] = co.Exec(f"echo {day}")
    assert sorted(root.children) == ["2020-01"]
    month = root["2020-01"]
    assert isinstance(month, co.Serial)
    assert list(month.children) == [str(d) for d in sorted(days, reverse=True)]
    assert "/2020-01/2020-01-12/run" in root


def test_makeyyyymmnodes_without_leaf_yields_the_parent() -> None:
    root = co.Parallel()
    seen = list(co.util.makeyyyymmnodes(root, [202001, 202002]))
    assert [(node is root, value) for node, value in seen] == [(True, 202002), (True, 202001)]
