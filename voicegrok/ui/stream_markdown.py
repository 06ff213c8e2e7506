"""Streamed Markdown, cut into units that render on their own, each rendered once.

An answer arrives a few tokens at a time. Re-parsing and re-laying out the whole answer at
every screen update costs more with every token, and on two cores it was taken from the
LLM. So :class:`MarkdownSplitter` cuts the stream into *units* as they complete: a line (a
paragraph line, a heading, a list item, a blank line), a whole table, or a whole fenced code
block. :func:`render_unit` renders a unit to terminal lines once; only the unit still being
written is rendered again at the next update, so an update costs O(new text).
"""

from __future__ import annotations

import functools
import re

from markdown_it import MarkdownIt
from rich.console import Console, RenderableType
from rich.markdown import Markdown
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip

__all__ = ["MarkdownSplitter", "render_text", "render_unit"]

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_TABLE_ROW = re.compile(r"^ {0,3}\|")
_LIST_ITEM = re.compile(r"^( *)([-*+]|\d{1,9}[.)]) +(.*)$")
_MAX_INDENT = 12  # columns of nesting shown for indented lines; deeper ones stay at this


class MarkdownSplitter:
    """Cuts streamed Markdown into complete units.

    :meth:`feed` returns the units completed by the new text; :attr:`pending` is the unit
    still being written (an unfinished line, or an open table or code block)."""

    def __init__(self) -> None:
        self.pending = ""

    def feed(self, text: str) -> list[str]:
        """Add streamed text; the units it completes (without their final newline)."""
        self.pending += text
        units: list[str] = []
        p = self.pending
        start = 0  # where the unit being cut starts
        fence = ""  # the open code block's marker
        table = False
        i = 0
        while (nl := p.find("\n", i)) != -1:
            line = p[i:nl]
            if fence:
                closing = line.strip()
                if closing.startswith(fence) and not closing.strip(fence[0]):
                    units.append(p[start:nl])
                    start, fence = nl + 1, ""
            elif table and "|" not in line:  # rows may leave out their outer pipes
                units.append(p[start : i - 1])  # the table ends before this line...
                start, table = i, False
                continue  # ... which is cut on its own
            elif table:
                pass
            elif m := _FENCE.match(line):
                fence = m.group(1)
            elif _TABLE_ROW.match(line):
                table = True
            else:
                units.append(line)
                start = nl + 1
            i = nl + 1
        self.pending = p[start:]
        return units

    def close(self) -> list[str]:
        """The end of the stream: whatever is pending is a unit too."""
        units = self.feed("\n") if self.pending else []
        rest, self.pending = self.pending, ""
        return units + ([rest.rstrip("\n")] if rest.strip() else [])


@functools.cache
def _parser() -> MarkdownIt:
    return MarkdownIt().enable("strikethrough").enable("table")  # as Rich makes it


class _Markdown(Markdown):
    """Rich's Markdown, parsed by one parser made once. Rich makes a new MarkdownIt (its
    rules, its regular expressions, linkify's) for every Markdown: while an answer
    streamed, that was 101 of the UI's 262 py-spy samples in :func:`render_unit`, itself
    most of what the UI did (its main thread busy 475 of 660 samples over 3 s)."""

    def __init__(self, markup: str) -> None:  # Rich's, with its defaults
        self.markup = markup
        self.parsed = _parser().parse(markup)
        self.code_theme = "monokai"
        self.justify = None
        self.style = "none"
        self.hyperlinks = True
        self.inline_code_lexer = None
        self.inline_code_theme = "monokai"


def _lines(console: Console, renderable: RenderableType, width: int) -> list[Strip]:
    options = console.options.update(width=max(1, width), height=None)
    strips = [Strip(line) for line in console.render_lines(renderable, options, pad=False)]
    while strips and not strips[0].text.strip():  # Rich spaces blocks apart: we do it
        strips.pop(0)
    while strips and not strips[-1].text.strip():
        strips.pop()
    return strips


def _indented(strips: list[Strip], first: str, style: Style | None = None) -> list[Strip]:
    """``strips`` after a prefix on the first line, and as many spaces on the others."""
    pad = Segment(" " * len(first))
    head = Segment(first, style)
    return [
        Strip([head if n == 0 else pad, *strip], len(first) + strip.cell_length)
        for n, strip in enumerate(strips)
    ]


def render_unit(console: Console, unit: str, width: int) -> list[Strip]:
    """A unit of :class:`MarkdownSplitter` as terminal lines ``width`` cells wide at most
    (a blank line for a blank unit)."""
    if not unit.strip():
        return [Strip.blank(0)]
    if "\n" in unit:  # a table or a code block: Rich lays it out whole
        return _lines(console, _Markdown(unit), width)
    if m := _LIST_ITEM.match(unit):
        indent, marker, rest = m.groups()
        bullet = "• " if marker in "-*+" else f"{marker} "
        first = " " * min(len(indent), _MAX_INDENT) + bullet
        body = _lines(console, _Markdown(rest), width - len(first)) or [Strip.blank(0)]
        return _indented(body, first, Style(bold=True))
    indent = min(len(unit) - len(unit.lstrip(" ")), _MAX_INDENT)
    body = _lines(console, _Markdown(unit.strip()), width - indent)
    return _indented(body, " " * indent) if indent else body


def render_text(console: Console, text: Text, width: int) -> list[Strip]:
    """Plain text (a question, a notice) wrapped to ``width``."""
    return _lines(console, text, width) or [Strip.blank(0)]
