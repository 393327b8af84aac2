"""``<ConductoMarkdown>`` blocks in a node's output, rendered on a terminal.

Conducto's nodes mark output for its web app with ``<ConductoMarkdown>…</ConductoMarkdown>``
(``conducto/nb``: the opening tag may carry text on its own line, the closing tag starts a
line). ``k8sco logs`` renders those blocks with rich when stdout is a terminal and passes
every byte through unchanged when it is piped, so scripts see what the node printed.

:class:`MarkdownSplitter` is the pure part: lines in, plain and markdown segments out, as
soon as each is complete, so ``logs -f`` shows plain lines at once and a block when it closes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO

OPEN = "<ConductoMarkdown>"
CLOSE = "</ConductoMarkdown>"


@dataclass(frozen=True)
class Segment:
    text: str
    markdown: bool


class MarkdownSplitter:
    """Splits a stream of lines into plain text and markdown blocks."""

    def __init__(self) -> None:
        self._block: list[str] | None = None  # lines of the open block, if one is open

    def feed(self, line: str) -> list[Segment]:
        """The segments that ``line`` (ending in ``\\n`` or not) completes."""
        out: list[Segment] = []
        rest = line
        while rest:
            if self._block is None:
                before, tag, after = rest.partition(OPEN)
                if not tag:
                    out.append(Segment(rest, False))
                    break
                if before.strip():
                    out.append(Segment(before + "\n", False))
                self._block = []
                rest = after
            else:
                inside, tag, after = rest.partition(CLOSE)
                self._block.append(inside)
                if not tag:
                    break
                out.append(Segment("".join(self._block), True))
                self._block = None
                rest = after.lstrip("\r\n") if not after.strip() else after
        return out

    def close(self) -> list[Segment]:
        """What is left at the end of the output: a block never closed is still shown."""
        block, self._block = self._block, None
        return [Segment("".join(block), True)] if block else []


class LogWriter:
    """Writes a node's output to ``out`` (a binary stream): unchanged unless ``terminal``,
    when markdown blocks are rendered with rich."""

    def __init__(self, out: IO[bytes], *, terminal: bool, width: int | None = None) -> None:
        self._out = out
        self._terminal = terminal
        self._width = width
        self._splitter = MarkdownSplitter()
        self._partial = b""

    def write(self, data: bytes) -> None:
        if not self._terminal:
            self._out.write(data)
            self._out.flush()
            return
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for raw in lines:
            self._emit(self._splitter.feed(raw.decode("utf-8", "replace") + "\n"))

    def close(self) -> None:
        if self._terminal:
            if self._partial:
                self._emit(self._splitter.feed(self._partial.decode("utf-8", "replace")))
                self._partial = b""
            self._emit(self._splitter.close())
        self._out.flush()

    def _emit(self, segments: list[Segment]) -> None:
        for segment in segments:
            if not segment.markdown:
                self._out.write(segment.text.encode("utf-8", "replace"))
                continue
            self._out.write(self._render(segment.text).encode("utf-8", "replace"))
        self._out.flush()

    def _render(self, text: str) -> str:
        import io

        from rich.console import Console  # rich loads only when there is markdown to show
        from rich.markdown import Markdown

        buffer = io.StringIO()
        console = Console(file=buffer, force_terminal=True, width=self._width, highlight=False)
        console.print(Markdown(text.strip("\n")))
        return buffer.getvalue()
