"""The conversation view (``#chat``): what was said, and the answers as they stream in.

:class:`ChatView` is one scrolling widget that draws lines (Textual's line API), not a tree
of widgets: on two cores, laying out and re-parsing a growing Markdown tree at every update
took most of a CPU away from the LLM. Each entry (a question, a notice, an answer) keeps
its rendered lines. Streamed tokens are batched a few times a second; an update renders
only the Markdown units the new text completed and the one still being written
(:mod:`.stream_markdown`), and draws only the lines on screen. The app tells the view what
happened; it keeps no state of the conversation beyond what it shows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

from rich.text import Text
from textual import on
from textual.events import Mount, Resize
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ..conversation import Message
from ..frames import Alert, Frame, Greeting, LLMToken, ToolUsed, decode_rate
from .stream_markdown import MarkdownSplitter, render_text, render_unit

__all__ = ["ChatView", "ShownTurn", "side_note"]


def side_note(frame: Frame) -> str | None:
    """A frame shown as a line between the turns: a tool's call, a timer's alert, the
    greeting."""
    if isinstance(frame, ToolUsed):
        failed = " (failed)" if frame.error else ""
        return f"tool {frame.name} {frame.arguments} → {frame.output}{failed}"
    if isinstance(frame, Alert):
        return f"⏰ {frame.text}"
    if isinstance(frame, Greeting):
        return frame.text
    return None


TOKEN_FLUSH_S = 0.25  # seconds between token batches: each is a screen update, and on two
# cores every update is taken from the LLM; 4 a second still reads as a stream
FALLBACK_WIDTH = 80  # cells to lay out at before the view has a size

E = TypeVar("E", "_Entry", "_Answer")


@dataclass(eq=False)
class _Entry:
    """A question, a notice or the words heard so far: plain text, styled by its kind."""

    kind: str
    text: str
    lines: list[Strip] = field(default_factory=list)

    @property
    def source(self) -> str:
        return self.text


@dataclass(eq=False)
class _Answer:
    """An answer: the Markdown units completed so far, rendered once each, and the unit
    still being written, rendered again at each update."""

    kind: str = "answer"
    units: list[str] = field(default_factory=list)
    body: list[Strip] = field(default_factory=list)
    tail: list[Strip] = field(default_factory=list)
    splitter: MarkdownSplitter = field(default_factory=MarkdownSplitter)

    @property
    def lines(self) -> list[Strip]:
        return self.body + self.tail

    @property
    def source(self) -> str:
        return "\n".join(self.units + ([self.splitter.pending] if self.splitter.pending else []))


@dataclass
class ShownTurn:
    """The entries of one turn in the conversation, and its answer's streaming figures."""

    user: _Entry | None = None
    answer: _Answer | None = None
    pending: str = ""
    """Tokens not yet shown (flushed a few times a second)."""
    streamed: list[str] = field(default_factory=list)
    """Every token's text, to tell whether the final answer says something else."""
    final: str | None = None
    """The whole answer, once done: shown in place of the streamed text if they differ."""
    n_tokens: int = 0
    first_token_s: float | None = None
    last_token_s: float | None = None

    @property
    def tokens_per_s(self) -> float | None:
        if self.first_token_s is None or self.last_token_s is None:
            return None
        return decode_rate(self.n_tokens, self.first_token_s, self.last_token_s) or None


class ChatView(ScrollView, can_focus=False):
    """The conversation, scrolled to its end as it grows (unless scrolled back to read)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "chat--user",
        "chat--partial",
        "chat--notice",
        "chat--error",
    }
    DEFAULT_CSS = """
    ChatView { scrollbar-gutter: stable; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._turns: dict[int, ShownTurn] = {}
        self._streaming: set[int] = set()
        """Turns with tokens (or a final text) not yet shown."""
        self._open: set[int] = set()
        """Turns whose answer has begun and not ended: while one runs, the view follows it
        in steps (:meth:`_layout`)."""
        self._entries: list[_Entry | _Answer] = []
        self._partial: _Entry | None = None
        """The words heard so far, before the turn's transcript replaces them."""
        self._lines: list[Strip] = []
        """Every entry's lines, in order."""
        self._starts: list[int] = []
        """Where each entry's lines start in ``_lines``, for the entries laid out so far."""
        self._dirty_from: int | None = None
        """The first entry whose lines changed since the last layout."""
        self._width = 0
        self.on_flush: Callable[[], None] | None = None
        """Called when streamed tokens are about to be shown (the speed goes with them)."""

    @on(Mount)
    def _start_flushing(self) -> None:
        self.set_interval(TOKEN_FLUSH_S, self._flush_tokens)

    # ------------------------------------------------------------------ what was said

    def hearing(self) -> None:
        """Someone started speaking: a placeholder until words are heard."""
        if self._partial is None:
            self._partial = self._add(_Entry("partial", "…"))
            self._layout()

    def show_partial(self, text: str) -> None:
        """The words heard so far (a transcript that may still change)."""
        if self._partial is None:
            self._partial = self._add(_Entry("partial", ""))
        self._partial.text = f"… {text}"
        self._draw(self._partial)
        self._layout()

    def start_turn(self, turn_id: int) -> None:
        self._turns[turn_id] = ShownTurn()

    def retract(self, turn_id: int) -> None:
        """The turn was not one after all (the person went on speaking): it goes."""
        shown = self._turns.pop(turn_id, None)
        self._streaming.discard(turn_id)
        self._open.discard(turn_id)
        if shown is not None:
            for entry in (shown.user, shown.answer):
                if entry is not None:
                    self._remove(entry)
            self._layout()

    def show_question(self, turn_id: int, text: str) -> None:
        """The turn's final transcript (or typed question), with an empty answer below it."""
        shown = self._turns.setdefault(turn_id, ShownTurn())
        if self._partial is not None:
            self._remove(self._partial)
            self._partial = None
        self._open.clear()  # an answer cut short never ends: the next question ends it
        shown.user = self._add(_Entry("user", f"you: {text}"))
        shown.answer = self._add(_Answer())
        self._layout()

    def show_past(self, messages: list[Message]) -> None:
        """Turns of a kept conversation, shown as they were (each answer rendered once)."""
        for message in messages:
            if message["role"] == "user":
                self._add(_Entry("user", f"you: {message['content']}"))
            else:
                answer = _Answer()
                self._append(answer, answer.splitter.feed(message["content"]))
                self._append(answer, answer.splitter.close())
                self._add(answer)
        self._layout()

    def notice(self, text: str, kind: str) -> None:
        """A line between the turns; ``kind`` is ``notice`` or ``error``."""
        self._add(_Entry(kind, text))
        self._layout()

    async def clear(self) -> None:
        """A new conversation: every turn and notice goes."""
        self._turns.clear()
        self._streaming.clear()
        self._open.clear()
        self._entries.clear()
        self._partial = None
        self._dirty_from = 0
        self._layout()

    @property
    def text(self) -> str:
        """What the conversation says, entry by entry (answers as their Markdown source)."""
        return "\n".join(e.source for e in self._entries)

    @property
    def rendered(self) -> str:
        """The conversation as drawn: every line, scrolled into view or not."""
        return "\n".join(line.text.rstrip() for line in self._lines)

    # ------------------------------------------------------------------ the answers

    def add_token(self, frame: LLMToken) -> ShownTurn | None:
        """Queue a token for the next flush; the turn it belongs to, if it is shown."""
        shown = self._turns.get(frame.turn_id)
        if shown is not None:
            shown.pending += frame.text
            shown.streamed.append(frame.text)
            shown.n_tokens += 1
            shown.last_token_s = frame.at_s
            if shown.first_token_s is None:
                shown.first_token_s = frame.at_s
            self._streaming.add(frame.turn_id)
            self._open.add(frame.turn_id)
        return shown

    def finish_answer(self, turn_id: int, text: str) -> None:
        """The whole answer: shown at the next flush."""
        shown = self._turns.get(turn_id)
        if shown is not None:
            shown.final = text
            self._streaming.add(turn_id)

    @property
    def settled(self) -> bool:
        """Every streamed token is on the screen: none waits for the next flush."""
        return not self._streaming

    def _flush_tokens(self) -> None:
        if self._streaming and self.on_flush is not None:
            self.on_flush()  # in the same screen update as the tokens
        for turn_id in list(self._streaming):
            shown = self._turns.get(turn_id)
            answer = shown.answer if shown is not None else None
            if shown is None or answer is None:
                continue  # tokens before the question is shown wait for it
            self._streaming.discard(turn_id)
            text, shown.pending = shown.pending, ""
            self._append(answer, answer.splitter.feed(text))
            if shown.final is not None:
                final, shown.final = shown.final, None
                if final.strip() != "".join(shown.streamed).strip():  # e.g. cleaned up
                    answer.units, answer.body, answer.splitter = [], [], MarkdownSplitter()
                    self._append(answer, answer.splitter.feed(final))
                self._append(answer, answer.splitter.close())
                self._open.discard(turn_id)
            answer.tail = self._tail(answer)
            self._changed(answer)
        self._layout()

    def _append(self, answer: _Answer, units: list[str]) -> None:
        """Completed units: rendered once, a run of blank lines shown as one."""
        for unit in units:
            blank = not unit.strip()
            if blank and (not answer.units or not answer.units[-1].strip()):
                continue
            answer.units.append(unit)
            answer.body += render_unit(self.app.console, unit, self._render_width)

    def _tail(self, answer: _Answer) -> list[Strip]:
        pending = answer.splitter.pending
        if not pending.strip():
            return []
        return render_unit(self.app.console, pending.rstrip("\n"), self._render_width)

    # ------------------------------------------------------------------ lines

    @property
    def _render_width(self) -> int:
        return self._width or FALLBACK_WIDTH

    def _add(self, entry: E) -> E:
        self._entries.append(entry)
        self._draw(entry)
        self._changed(entry)
        return entry

    def _remove(self, entry: _Entry | _Answer) -> None:
        if entry in self._entries:
            self._changed(entry)
            self._entries.remove(entry)

    def _changed(self, entry: _Entry | _Answer) -> None:
        i = self._entries.index(entry) if entry in self._entries else len(self._entries)
        self._dirty_from = i if self._dirty_from is None else min(self._dirty_from, i)

    def _draw(self, entry: _Entry | _Answer) -> None:
        console, width = self.app.console, self._render_width
        if isinstance(entry, _Answer):
            units, entry.units, entry.body = entry.units, [], []
            self._append(entry, units)
            entry.tail = self._tail(entry)
            return
        style = self.get_component_rich_style(f"chat--{entry.kind}", partial=True)
        lines = render_text(console, Text(entry.text, style=style), width)
        entry.lines = ([Strip.blank(0)] if entry.kind in ("user", "partial") else []) + lines

    def _layout(self) -> None:
        """The lines of the entries that changed (and of those after them) replace theirs;
        only those are drawn again.

        While the view shows the end of the conversation it keeps doing so; an answer
        streaming there is followed in steps: when its last line goes past the bottom,
        the view moves up by a third of its height, and the lines that follow fill the
        space left below (left there when the answer ends: nothing jumps). A new line then
        changes nothing else on the screen; the view moving for each line meant drawing
        all of it again, and growing the scrolled height for each line meant laying out
        the whole screen again (on two cores, both were taken from the LLM). So the
        scrolled height too grows in steps of a third of the view."""
        k = self._dirty_from
        if k is None:
            return
        self._dirty_from = None
        following = self.scroll_y >= self.max_scroll_y - 1
        first = self._starts[k] if k < len(self._starts) else len(self._lines)
        old, was_n = self._lines[first:], len(self._lines)
        del self._lines[first:]
        del self._starts[k:]
        for entry in self._entries[k:]:
            self._starts.append(len(self._lines))
            self._lines += entry.lines
        for was, now in zip(old, self._lines[first:], strict=False):  # rendered once: same
            if was is not now:
                break
            first += 1
        n, view, top = len(self._lines), self.scrollable_content_region.height, None
        step, height = max(1, view // 3), self.virtual_size.height
        if following and view > 0:
            top = round(self.scroll_y)
            if n > top + view:  # past the bottom: a step up while an answer streams
                top = n - view + (step if self._open else 0)
            elif n <= top:  # what was shown is gone (a new conversation)
                top = max(0, n - view)
            # (on the first screen: its lines, in steps, never more than a screen)
            height = max(n, top + view) if top else min(view, -(-n // step) * step)
        elif n > height or n < height - step:  # grown past its end, or much shorter
            height = n + (step if self._open else 0)
        size = Size(self._render_width, height)
        if size != self.virtual_size:
            self.virtual_size = size
        if top is None:
            self.refresh()
        elif top != round(self.scroll_y):
            self.scroll_to(y=top, animate=False, immediate=True, force=True)
            self.refresh()
        else:  # only the lines that changed, or were there and are gone
            y, end = max(0, first - top), min(self.size.height, max(n, was_n) - top)
            if end > y:
                self.refresh(Region(0, y, self.size.width, end - y))

    @on(Resize)
    def _resized(self) -> None:
        width = self.scrollable_content_region.width
        if width > 0 and width != self._width:
            self._width = width
            for entry in self._entries:
                self._draw(entry)
            self._dirty_from = 0
        elif self._dirty_from is None:  # the same lines; the scrolled height follows the view
            self._dirty_from = len(self._entries)
        self._layout()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        for entry in self._entries:
            if not isinstance(entry, _Answer):
                self._draw(entry)
        self._dirty_from = 0 if self._entries else None
        if self.is_mounted:
            self._layout()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        index = scroll_y + y
        if index >= len(self._lines):
            return Strip.blank(width, self.rich_style)
        line = self._lines[index].crop_extend(scroll_x, scroll_x + width, self.rich_style)
        return line.apply_style(self.rich_style)
