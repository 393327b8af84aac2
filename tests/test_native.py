"""Native functions: values to command-line text and back, and the checks ``co.Exec`` makes
when a function node is built."""

from __future__ import annotations

import datetime as dt
import pathlib
from pathlib import Path
from typing import Any, Literal, Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st

import k8sco as co
from k8sco import cmdline, modules, native

DATA = Path(__file__).parent / "data"
funcs = modules.import_file(str(DATA / "dispatch_funcs.py"))
Color, Point, UserId = funcs.Color, funcs.Point, funcs.UserId

TRICKY_STRINGS = ["a,b", "back\\slash", "", "[lead", "trail\\", ",", "\\,", " spaced ", "é,ü"]

ROUND_TRIPS: list[tuple[Any, Any]] = [
    (str, "hello, world"),
    (str, ""),
    (int, -30),
    (float, 2.5),
    (float, 1e-300),
    (bool, True),
    (bool, False),
    (list[int], [1, 2, 3]),
    (list[int], []),
    (list[str], TRICKY_STRINGS),
    (list[str], [""]),
    (list[str], ["[", "]"]),
    (tuple[int, ...], (4, 5)),
    (tuple[int, str], (1, "a,b")),
    (set[str], {"x", "y,z"}),
    (dict, {"a": [1, {"b": None}], "é": "x,y"}),
    (dict[str, int], {"n": 1}),
    (Optional[int], None),  # noqa: UP045 (the typing spelling is what is tested)
    (Optional[int], 0),  # noqa: UP045
    (int | None, None),
    (str | None, None),
    (str | None, ""),
    (str | None, "None"),
    (bool | None, None),
    (bool | None, True),
    (Color, Color.GREEN),
    (dt.datetime, dt.datetime(2020, 1, 2, 3, 4, 5, 6000, tzinfo=dt.timezone.utc)),
    (dt.datetime, dt.datetime(2020, 1, 2, 3, 4, 5)),
    (dt.date, dt.date(2020, 1, 2)),
    (dt.time, dt.time(3, 4, 5)),
    (pathlib.Path, Path("dir with space/f,1.txt")),
    (Point, Point(3, -4)),
    (Literal["fast", "slow"], "slow"),
    (Literal[1, 2], 2),
    (UserId, UserId(7)),
    (list[list[int]], [[1, 2], [], [3]]),
    (list[int | None], [1, None]),
    (list[Color], [Color.RED, Color.GREEN]),
    (bytes, "café".encode()),
    (str | int, 5),
    (str | int, "five"),
]


@pytest.mark.parametrize(("hint", "value"), ROUND_TRIPS, ids=lambda v: repr(v)[:40])
def test_a_value_decodes_to_itself(hint: Any, value: Any) -> None:
    assert native.fits(value, hint)
    back = native.decode(native.encode(value, hint), hint)
    assert back == value
    assert type(back) is type(value)


@pytest.mark.parametrize(
    ("name", "value", "arg"),
    [
        ("n", 30, "--n=30"),
        ("flag", True, "--flag"),
        ("flag", False, "--no-flag"),
        ("ints", [1, 2, 3], "--ints=1,2,3"),
        ("strs", ["a,b", "c"], "--strs=a\\,b,c"),
        ("strs", ["", "x"], '--strs=["", "x"]'),  # an empty item needs the JSON form
        ("maybe", None, "--maybe"),  # None is a bare flag ...
        ("maybe_flag", None, "--maybe_flag=null"),  # ... unless the bare flag means True
        ("when", dt.datetime(2020, 1, 2, 3, 4, 5), "--when=2020-01-02T03:04:05"),
        ("color", Color.GREEN, "--color=GREEN"),
        ("point", Point(1, 2), "--point=1:2"),
    ],
)
def test_the_command_line_form(name: str, value: Any, arg: str) -> None:
    hints = {
        "n": int,
        "flag": bool,
        "ints": list[int],
        "strs": list[str],
        "maybe": int | None,
        "maybe_flag": bool | None,
        "when": dt.datetime,
        "color": Color,
        "point": Point,
    }
    assert native.encode_arg(name, value, hints[name]) == arg


def test_flags_and_words_a_person_types_also_decode() -> None:
    assert native.decode(None, bool) is True
    assert [native.decode(w, bool) for w in ("true", "1", "yes", "false", "0", "no")] == [
        True,
        True,
        True,
        False,
        False,
        False,
    ]
    assert native.decode("[1, 2]", list[int]) == [1, 2]  # a JSON array typed by hand
    assert native.decode("null", int | None) is None
    assert native.decode("null", str | None) == "null"  # for text, only a bare flag is None
    assert native.decode("2020-01-02T03:04:05Z", dt.datetime).tzinfo == dt.timezone.utc


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("abc", int),
        ("1.5", int),
        ("maybe", bool),
        ("1,x", list[int]),
        ("[1", list[int]),
        ("1,2,3", tuple[int, str]),
        ("[]", dict),
        ('{"n": "x"}', dict[str, int]),
        ("BLUE", Color),
        ("medium", Literal["fast", "slow"]),
        ("2020-13-01", dt.date),
        (None, int),
    ],
)
def test_text_that_does_not_decode_raises_value_error(text: str | None, hint: Any) -> None:
    with pytest.raises(ValueError):
        native.decode(text, hint)


# Any text argv can carry: everything but NUL, and no lone surrogates (not UTF-8).
# Shell-significant fragments are mixed in so they come up often, not by chance.
ARGV_TEXT = st.lists(
    st.one_of(
        st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0")),
        st.sampled_from([" ", "'", '"', "\n", "$(id)", ";", "`ls`", "\\", ",", "[", "--x=", "é"]),
    ),
    max_size=5,
).map("".join)


@given(ARGV_TEXT)
def test_any_text_round_trips(value: str) -> None:
    assert native.decode(native.encode(value, str), str) == value
    assert native.decode(native.encode(value, str | None), str | None) == value


@given(st.lists(ARGV_TEXT, max_size=6))
def test_any_list_of_text_round_trips(values: list[str]) -> None:
    assert native.decode(native.encode(values, list[str]), list[str]) == values
    as_tuple = tuple(values)
    assert native.decode(native.encode(as_tuple, tuple[str, ...]), tuple[str, ...]) == as_tuple


@given(ARGV_TEXT, st.lists(ARGV_TEXT, max_size=4))
def test_any_text_round_trips_through_the_nodes_arguments(text: str, texts: list[str]) -> None:
    node = co.Exec(funcs.kinds, s=text, strs=texts)
    args = node.command[3:]
    assert isinstance(args, list)
    received = cmdline.parse_arguments(funcs.kinds, args, label="kinds")
    assert received == {"s": text, "strs": texts}


# --- checks when a function node is built -------------------------------------------------


def add(a: int, b: int = 1) -> int:
    return a + b


def myfunc(mykwarg: str) -> None:
    print(mykwarg)


def with_star_args(*names: str) -> None:
    print(names)


def with_star_kwargs(**options: str) -> None:
    print(options)


def mixed(choice: int | str) -> None:
    print(choice)


def test_a_function_node_carries_its_arguments_on_its_command() -> None:
    node = co.Exec(add, 2, b=3)
    assert node.command[:2] == ["k8sco", "call"]
    assert str(node.command[2]).endswith("test_native.py:add")
    assert node.command[3:] == ["--a=2", "--b=3"]
    assert co.Exec(add, 2).command[3:] == ["--a=2"]  # defaults stay in the function


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {}, r"add\(\): missing a required argument: 'a'"),
        ((1, 2, 3), {}, r"add\(\): too many positional arguments"),
        ((1,), {"c": 3}, r"add\(\): got an unexpected keyword argument 'c'"),
        (("30",), {}, r"add\(\): parameter 'a' expects int, got str '30'"),
        ((True,), {}, r"parameter 'a' expects int, got bool True"),
    ],
)
def test_a_call_that_does_not_fit_the_signature_fails_when_built(
    args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        co.Exec(add, *args, **kwargs)


@pytest.mark.parametrize(
    ("func", "message"),
    [
        (with_star_args, r"'names' is \*args/\*\*kwargs"),
        (with_star_kwargs, r"'options' is \*args/\*\*kwargs"),
        (lambda n: n, "must be defined at module level"),
    ],
)
def test_functions_a_command_line_cannot_call_are_refused(func: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        co.Exec(func)


def test_a_nested_function_is_refused() -> None:
    def inner(n: int) -> int:
        return n

    with pytest.raises(TypeError, match=r"inner\(\) must be defined at module level"):
        co.Exec(inner, 1)


@pytest.mark.parametrize(
    ("func", "kwargs", "message"),
    [
        (funcs.show, {"value": "nul\0inside"}, "cannot carry NUL"),
        (funcs.show, {"value": "lone \udc80"}, "lone surrogates"),
        (mixed, {"choice": "5"}, "would arrive as 5"),  # int | str cannot tell "5" from 5
        (funcs.kinds, {"mapping": {1: "x"}}, "expects dict"),  # JSON would make the key "1"
    ],
)
def test_values_that_would_not_arrive_as_themselves_are_refused(
    func: Any, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        co.Exec(func, **kwargs)


def test_node_parameters_of_a_function_node_go_in_params_or_set() -> None:
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'cpu'.*\.set\(\.\.\.\)"):
        co.Exec(add, 1, cpu=2)
    node = co.Exec(add, 1, params={"cpu": 2})
    assert node.get("cpu") == 2
    assert node.command[3:] == ["--a=1"]
    with pytest.raises(TypeError, match="unexpected keyword argument 'name'"):
        co.Exec(myfunc, name="one", mykwarg="A")


def test_set_names_a_function_node_inside_a_with_block() -> None:
    with co.Serial() as s:
        co.Exec(myfunc, mykwarg="A").set(name="one")
    node = s["one"]
    assert node.path == "/one"
    assert isinstance(node, co.Exec)
    assert node.command[3:] == ["--mykwarg=A"]


def test_booleans_become_flags_and_only_given_arguments_are_emitted() -> None:
    node = co.Exec(funcs.options, 3, verbose=True)
    assert node.command[3:] == ["--max_n=3", "--verbose"]
    assert co.Exec(funcs.options, 3, verbose=False, label=None).command[3:] == [
        "--max_n=3",
        "--no-verbose",
        "--label",
    ]


def takes_text(x: str) -> None:
    pass


def clash(x: bool, no_x: str) -> None:
    pass


def test_an_argument_beyond_the_os_limit_is_refused_when_the_node_is_built() -> None:
    co.Exec(takes_text, "x" * 100_000)  # a large argument is fine
    with pytest.raises(co.PipelineTypeError, match="parameter 'x': its argument is 131,076 bytes"):
        co.Exec(takes_text, "x" * (128 * 1024))


def test_a_bool_and_its_no_name_clash() -> None:
    with pytest.raises(co.PipelineTypeError, match="'x' \\(a bool\\) and 'no_x' clash"):
        co.Exec(clash, True, "s")


@pytest.mark.parametrize("func", [print, lambda: 1, str.upper], ids=["builtin", "lambda", "method"])
def test_what_a_command_line_cannot_call_is_a_k8sco_error(func: Any) -> None:
    with pytest.raises(co.PipelineTypeError, match="must be"):
        co.Exec(func)


# --- no type hint: Conducto's rules (conducto/glue/method.py) ------------------------------


def seed_func(a, mykwarg, count=4, show_sum=False, ratio=0.5, opt=None):  # type: ignore[no-untyped-def]
    return a, mykwarg, count, show_sum, ratio, opt


def test_an_unhinted_parameter_without_a_default_takes_any_value_as_its_text() -> None:
    node = co.Exec(seed_func, 1, mykwarg="A")  # the seed's own example
    assert node.command[3:] == ["--a=1", "--mykwarg=A"]
    node = co.Exec(seed_func, [1, "x,y"], mykwarg=None, opt=True)
    assert node.command[3:] == ["--a=1,x\\,y", "--mykwarg=None", "--opt=True"]
    # ... and the function receives a str: what str(value) gave.
    assert cmdline.parse_arguments(seed_func, node.command[3:], "t") == {
        "a": "1,x\\,y",
        "mykwarg": "None",
        "opt": "True",
    }


def test_an_unhinted_parameter_with_a_default_takes_the_defaults_class() -> None:
    node = co.Exec(seed_func, "a", "b", count=7, show_sum=True, ratio=2)
    assert node.command[5:] == ["--count=7", "--show_sum", "--ratio=2.0"]
    got = cmdline.parse_arguments(seed_func, node.command[3:], "t")
    assert (got["count"], got["show_sum"], got["ratio"]) == (7, True, 2.0)
    assert co.Exec(seed_func, "a", "b", show_sum=False).command[5:] == ["--no-show_sum"]
    for flags, expected in [
        (["--show_sum"], True),
        (["--show-sum"], True),
        (["--no-show_sum"], False),
        (["--no-show-sum"], False),
        (["--show_sum=false"], False),
    ]:
        got = cmdline.parse_arguments(seed_func, ["--a=x", "--mykwarg=y", *flags], "t")
        assert got["show_sum"] is expected
    with pytest.raises(co.DecodeError, match="--count='x' is not a valid int"):
        cmdline.parse_arguments(seed_func, ["--a=x", "--mykwarg=y", "--count=x"], "t")


def test_a_value_whose_text_decodes_as_the_defaults_class_is_taken_as_conducto_does() -> None:
    node = co.Exec(seed_func, "a", "b", count="5")
    assert node.command[5:] == ["--count=5"]
    assert cmdline.parse_arguments(seed_func, node.command[3:], "t")["count"] == 5
    with pytest.raises(co.PipelineTypeError, match="'count' expects int, got str 'five' \\(the"):
        co.Exec(seed_func, "a", "b", count="five")


def test_a_hinted_parameter_keeps_its_strict_check() -> None:
    with pytest.raises(co.PipelineTypeError, match=r"'mykwarg' expects str, got int 1$"):
        co.Exec(myfunc, mykwarg=1)


def plain(n: int, x: float, s: str, loose=None, k: int = 3) -> None:  # type: ignore[no-untyped-def]
    """Parameters that bind_arguments encodes on its fast path (int, float, str, no hint)."""


@given(
    st.integers(),
    st.floats(),
    st.text(),
    st.one_of(st.text(), st.integers()),
    st.integers(),
    st.booleans(),
)
def test_plain_arguments_encode_as_the_general_rules_say(
    n: int, x: float, s: str, loose: Any, k: int, by_name: bool
) -> None:
    _, hints = native.signature(plain)
    values = {"n": n, "x": x, "s": s, "loose": loose, "k": k}
    expected: list[str] | str = []
    for name, value in values.items():
        arg = native.encode_arg(name, value, hints[name])
        if "\0" in arg or any(0xD800 <= ord(c) <= 0xDFFF for c in arg):
            expected = "cannot carry"
            break
        assert isinstance(expected, list)
        expected.append(arg)
    args, kwargs = ((), values) if by_name else ((n, x, s), {"loose": loose, "k": k})
    if isinstance(expected, str):
        with pytest.raises(native.NotEncodable, match=expected):
            native.bind_arguments(plain, args, kwargs)
    else:
        assert native.bind_arguments(plain, args, kwargs) == expected


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((1, 2.0), {}, "missing a required argument: 's'"),
        ((1, 2.0, "a", None, 4, 5), {}, "too many positional arguments"),
        ((1, 2.0, "a"), {"n": 2}, "multiple values for argument 'n'"),
        ((1, 2.0, "a"), {"nope": 2}, "got an unexpected keyword argument 'nope'"),
    ],
)
def test_a_call_that_does_not_bind_says_why(
    args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(native.NotEncodable, match=f"plain\\(\\): {message}"):
        native.bind_arguments(plain, args, kwargs)
