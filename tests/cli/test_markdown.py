"""``<ConductoMarkdown>`` blocks: rendered on a terminal, passed through when piped."""

from __future__ import annotations

import io

from k8sco.cli.markdown import LogWriter, MarkdownSplitter, Segment

OUTPUT = (
    b"plain before\n"
    b"\n<ConductoMarkdown># Title\n"
    b"some **bold** text\n"
    b"</ConductoMarkdown>\n"
    b"plain after\n"
)


def _split(text: str) -> list[Segment]:
    splitter = MarkdownSplitter()
    out: list[Segment] = []
    for line in text.splitlines(keepends=True):
        out.extend(splitter.feed(line))
    return out + splitter.close()


def test_blocks_are_split_from_plain_lines_as_conducto_nb_prints_them() -> None:
    segments = _split(OUTPUT.decode())
    assert segments == [
        Segment("plain before\n", False),
        Segment("\n", False),
        Segment("# Title\nsome **bold** text\n", True),
        Segment("plain after\n", False),
    ]


def test_tags_inside_one_line_and_an_unclosed_block() -> None:
    assert _split("a <ConductoMarkdown>*x*</ConductoMarkdown> b\n<ConductoMarkdown>y\n") == [
        Segment("a \n", False),
        Segment("*x*", True),
        Segment(" b\n", False),
        Segment("y\n", True),
    ]


def test_piped_output_is_unchanged_byte_for_byte() -> None:
    out = io.BytesIO()
    writer = LogWriter(out, terminal=False)
    for i in range(0, len(OUTPUT), 7):  # chunks that cut lines and tags
        writer.write(OUTPUT[i : i + 7])
    writer.close()
    assert out.getvalue() == OUTPUT


def test_on_a_terminal_markdown_is_rendered_and_tags_are_gone() -> None:
    out = io.BytesIO()
    writer = LogWriter(out, terminal=True, width=60)
    for i in range(0, len(OUTPUT), 5):
        writer.write(OUTPUT[i : i + 5])
    writer.close()
    text = out.getvalue().decode()
    assert "ConductoMarkdown" not in text
    assert "**bold**" not in text and "bold" in text  # rendered, not raw markdown
    assert "\x1b[" in text  # with terminal styling
    assert text.index("plain before") < text.index("Title") < text.index("plain after")
