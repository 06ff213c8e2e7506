"""Clause stage: streamed tokens in, speakable clauses out as soon as each one is complete."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import ClassVar

from ..frames import Frame, LLMDone, LLMToken, SpokenClause
from ..text import ClauseSplitter, speakable


class ClauseStage:
    accepts: ClassVar[tuple[type[Frame], ...]] = (LLMToken, LLMDone)
    passes_while_busy: ClassVar[tuple[type[Frame], ...]] = ()
    inline: ClassVar[bool] = True
    """Never waits: run in the pipeline's worker, not a task per frame."""

    def __init__(self, *, first_min_words: int = 1, max_words: int = 24) -> None:
        self._first_min_words = first_min_words
        self._max_words = max_words
        self._turn: int | None = None
        self._splitter = self._new_splitter()
        self._count = 0

    def _new_splitter(self) -> ClauseSplitter:
        return ClauseSplitter(first_min_words=self._first_min_words, max_words=self._max_words)

    def _clauses(self, turn_id: int, pieces: list[str]) -> list[SpokenClause]:
        out = []
        for piece in pieces:
            out.append(
                SpokenClause(
                    turn_id=turn_id, index=self._count, text=piece, spoken=speakable(piece)
                )
            )
            self._count += 1
        return out

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        if frame.turn_id != self._turn:  # a new turn (an interrupted one leaves no state)
            self._turn = frame.turn_id
            self._splitter = self._new_splitter()
            self._count = 0
        if isinstance(frame, LLMToken):
            yield frame
            for clause in self._clauses(frame.turn_id, self._splitter.feed(frame.text)):
                yield clause
        else:
            for clause in self._clauses(frame.turn_id, self._splitter.flush()):
                yield clause
            yield frame
