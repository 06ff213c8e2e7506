"""The conversation view (``#chat``): what was said, and the answers as they stream in.

:class:`ChatView` owns the widgets of every turn (the transcript so far while someone
speaks, the question, the answer's Markdown) and the notices in between. Streamed tokens
are batched: a few Markdown updates a second, then the whole answer once it is done. The
app tells it what happened; it keeps no state of the conversation beyond its widgets.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from textual import on
from textual.containers import VerticalScroll
from textual.css.query import NoMatches
from textual.events import Mount
from textual.widgets import Markdown, Static

from ..frames import LLMToken, decode_rate

__all__ = ["ChatView", "ShownTurn"]

TOKEN_FLUSH_S = 0.08  # seconds between token batches: each Markdown update re-parses the answer


@dataclass
class ShownTurn:
    """The widgets of one turn in the conversation, and its answer's streaming figures."""

    user: Static | None = None
    answer: Markdown | None = None
    pending: str = ""
    """Tokens not yet handed to the Markdown widget (flushed a few times a second)."""
    final: str | None = None
    """The whole answer, once done: replaces the streamed text (one clean parse)."""
    n_tokens: int = 0
    first_token_s: float | None = None
    last_token_s: float | None = None

    @property
    def tokens_per_s(self) -> float | None:
        if self.first_token_s is None or self.last_token_s is None:
            return None
        return decode_rate(self.n_tokens, self.first_token_s, self.last_token_s) or None


class ChatView(VerticalScroll):
    """The conversation, scrolled to its end as it grows."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._turns: dict[int, ShownTurn] = {}
        self._partial: Static | None = None
        """The words heard so far, before the turn's transcript replaces them."""
        self._flushing = False
        """Tokens taken from a turn are being rendered (``settled`` waits for that)."""

    @on(Mount)
    def _start_flushing(self) -> None:
        self.set_interval(TOKEN_FLUSH_S, self._flush_tokens)

    # ------------------------------------------------------------------ what was said

    def hearing(self) -> None:
        """Someone started speaking: a placeholder until words are heard."""
        if self._partial is None:
            self._partial = Static("…", classes="partial")
            self.mount(self._partial)
            self.scroll_end(animate=False)

    def show_partial(self, text: str) -> None:
        """The words heard so far (a transcript that may still change)."""
        if self._partial is None:
            self._partial = Static("", classes="partial")
            self.mount(self._partial)
        self._partial.update(f"… {text}")
        self.scroll_end(animate=False)

    def start_turn(self, turn_id: int) -> None:
        self._turns[turn_id] = ShownTurn()

    def retract(self, turn_id: int) -> None:
        """The turn was not one after all (the person went on speaking): it goes."""
        shown = self._turns.pop(turn_id, None)
        if shown is not None:
            for widget in (shown.user, shown.answer):
                if widget is not None:
                    widget.remove()

    def show_question(self, turn_id: int, text: str) -> None:
        """The turn's final transcript (or typed question), with an empty answer below it."""
        shown = self._turns.setdefault(turn_id, ShownTurn())
        if self._partial is not None:
            self._partial.remove()
            self._partial = None
        shown.user = Static(f"you: {text}", classes="user")
        shown.answer = Markdown("", classes="answer")
        self.mount(shown.user, shown.answer)
        self.scroll_end(animate=False)

    def notice(self, text: str, kind: str) -> None:
        """A line between the turns; ``kind`` is its class (``notice`` or ``error``)."""
        self.mount(Static(text, classes=kind, markup=False))
        self.scroll_end(animate=False)

    async def clear(self) -> None:
        """A new conversation: every turn and notice goes."""
        await self.remove_children()
        self._turns.clear()
        self._partial = None

    # ------------------------------------------------------------------ the answers

    def add_token(self, frame: LLMToken) -> ShownTurn | None:
        """Queue a token for the next flush; the turn it belongs to, if it is shown."""
        shown = self._turns.get(frame.turn_id)
        if shown is not None:
            shown.pending += frame.text
            shown.n_tokens += 1
            shown.last_token_s = frame.at_s
            if shown.first_token_s is None:
                shown.first_token_s = frame.at_s
        return shown

    def finish_answer(self, turn_id: int, text: str) -> None:
        """The whole answer: shown at the next flush, in place of the streamed tokens."""
        shown = self._turns.get(turn_id)
        if shown is not None:
            shown.final = text

    @property
    def settled(self) -> bool:
        """Every streamed token is on the screen: none waits for the next flush, and no
        Markdown update is still being rendered."""
        return not self._flushing and all(
            not t.pending and t.final is None for t in self._turns.values()
        )

    async def _flush_tokens(self) -> None:
        self._flushing = True
        try:
            with contextlib.suppress(NoMatches):  # the app is closing
                await self._append_tokens()
        finally:
            self._flushing = False

    async def _append_tokens(self) -> None:
        for shown in list(self._turns.values()):
            if shown.answer is None or not (shown.pending or shown.final is not None):
                continue
            if not shown.answer.is_mounted:
                continue  # mounting is not awaited: an update before it was lost for good
            if shown.final is not None:
                final, shown.final, shown.pending = shown.final, None, ""
                await shown.answer.update(final)
            else:
                text, shown.pending = shown.pending, ""
                await shown.answer.append(text)
            self.scroll_end(animate=False)
