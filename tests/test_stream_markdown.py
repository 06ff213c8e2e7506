"""Streamed Markdown is cut into units that render on their own, and rendered once each."""

from __future__ import annotations

import pytest
from rich.console import Console

from voicegrok.ui.stream_markdown import MarkdownSplitter, render_unit

ANSWER = (
    "Here is a plan for **two days**:\n\n"
    "## Day 1\n"
    "- Morning: the *Tenement Museum*\n"
    "  - book ahead\n"
    "1. Lunch in Chinatown\n\n"
    "| Day | Place | Cost |\n| --- | --- | --- |\n| 1 | High Line | free |\n"
    "Enjoy!\n"
    "```python\nprint('a')\n\nprint('b')\n```\n"
    "The end"
)
UNITS = [
    "Here is a plan for **two days**:",
    "",
    "## Day 1",
    "- Morning: the *Tenement Museum*",
    "  - book ahead",
    "1. Lunch in Chinatown",
    "",
    "| Day | Place | Cost |\n| --- | --- | --- |\n| 1 | High Line | free |",
    "Enjoy!",
    "```python\nprint('a')\n\nprint('b')\n```",
    "The end",
]


def test_units_are_lines_tables_and_code_blocks_however_the_text_is_streamed() -> None:
    for step in (1, 3, 7, len(ANSWER)):
        splitter = MarkdownSplitter()
        units: list[str] = []
        for i in range(0, len(ANSWER), step):
            units += splitter.feed(ANSWER[i : i + step])
        units += splitter.close()
        assert units == UNITS, step
        assert splitter.pending == ""


def test_the_unit_being_written_is_pending() -> None:
    splitter = MarkdownSplitter()
    assert splitter.feed("| a | b |\n| - | - |\n| 1 ") == []
    assert splitter.pending == "| a | b |\n| - | - |\n| 1 "  # an open table waits whole
    assert splitter.feed("| 2 |\n\nNext") == ["| a | b |\n| - | - |\n| 1 | 2 |", ""]
    assert splitter.pending == "Next"
    assert splitter.close() == ["Next"]


def test_a_table_whose_rows_leave_out_their_outer_pipes_stays_one_unit() -> None:
    splitter = MarkdownSplitter()
    units = splitter.feed("| Day | Cost |\n|---|---|\nOne | $5\nTwo | $9 |\nEnjoy!\n")
    assert units == ["| Day | Cost |\n|---|---|\nOne | $5\nTwo | $9 |", "Enjoy!"]


def test_units_render_as_markdown_not_as_their_source() -> None:
    console = Console(width=60, color_system=None)

    def text(unit: str, width: int = 60) -> list[str]:
        return [line.text.rstrip() for line in render_unit(console, unit, width)]

    assert text("- Morning: the *Tenement Museum*") == ["• Morning: the Tenement Museum"]
    assert text("  - book ahead") == ["  • book ahead"]
    assert text("3. Lunch") == ["3. Lunch"]
    assert text("") == [""]
    table = text("| Day | Place |\n| --- | --- |\n| 1 | High Line |")
    assert any("High Line" in line and "|" not in line for line in table)
    wrapped = text("- " + "word " * 20, width=30)
    assert len(wrapped) > 1 and all(line.startswith("  ") for line in wrapped[1:])  # hanging
    assert all(len(line) <= 30 for line in wrapped)


@pytest.mark.parametrize(
    "unit",
    [
        "A **bold** plan with `code`, ~~no~~ and a [link](https://example.com).",
        "| Day | Place | Cost |\n| --- | --- | --- |\n| 1 | High Line | free |",
        "```python\nprint('hi')\n```",
        "### A heading",
    ],
)
def test_the_parser_made_once_renders_as_rich_does(unit: str) -> None:
    """Rich made a new parser for each Markdown (most of the UI's work while an answer
    streamed); the one made once must draw the same."""
    from rich.markdown import Markdown

    from voicegrok.ui.stream_markdown import _lines, _Markdown

    console = Console(width=80, color_system="truecolor")
    ours = _lines(console, _Markdown(unit), 80)
    rich = _lines(console, Markdown(unit), 80)
    assert [s.text for s in ours] == [s.text for s in rich]
    assert [list(s) for s in ours] == [list(s) for s in rich]
    assert [t.type for t in _Markdown(unit).parsed] == [t.type for t in Markdown(unit).parsed]
