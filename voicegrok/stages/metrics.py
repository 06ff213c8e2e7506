"""Metrics stage (last in the pipeline): watches a turn go by and adds its TurnMetrics."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import ClassVar

from ..frames import (
    Frame,
    LLMDone,
    LLMToken,
    SpokenClause,
    TTSAudio,
    TurnMetrics,
    TurnStarted,
    UserText,
)


@dataclass
class _Turn:
    speech_end_s: float
    source: str
    transcript_s: float | None = None
    first_token_s: float | None = None
    first_clause_s: float | None = None
    first_audio_s: float | None = None
    clauses: int = 0
    audio_s: float = 0.0


def _ms(later: float | None, earlier: float | None) -> float | None:
    return None if later is None or earlier is None else (later - earlier) * 1000.0


class MetricsStage:
    accepts: ClassVar[tuple[type[Frame], ...]] = (Frame,)
    passes_while_busy: ClassVar[tuple[type[Frame], ...]] = ()
    inline: ClassVar[bool] = True
    """Never waits: run in the pipeline's worker, not a task per frame."""

    def __init__(self) -> None:
        self._turns: dict[int, _Turn] = {}

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        yield frame
        if isinstance(frame, TurnStarted):
            self._turns = {frame.turn_id: _Turn(frame.speech_end_s, frame.source)}
            return
        turn = self._turns.get(frame.turn_id)
        if turn is None:
            return
        if isinstance(frame, UserText) and frame.final and turn.transcript_s is None:
            turn.transcript_s = frame.at_s
        elif isinstance(frame, LLMToken) and turn.first_token_s is None:
            turn.first_token_s = frame.at_s
        elif isinstance(frame, SpokenClause):
            turn.clauses += 1
            if turn.first_clause_s is None and frame.spoken:
                turn.first_clause_s = frame.at_s
        elif isinstance(frame, TTSAudio):
            turn.audio_s += frame.duration_s
            if turn.first_audio_s is None:
                turn.first_audio_s = frame.at_s
        elif isinstance(frame, LLMDone):
            del self._turns[frame.turn_id]
            now = time.perf_counter()
            yield TurnMetrics(
                at_s=now,
                turn_id=frame.turn_id,
                source=turn.source,
                stt_ms=_ms(turn.transcript_s, turn.speech_end_s)
                if turn.source == "speech"
                else None,
                llm_first_token_ms=_ms(turn.first_token_s, turn.transcript_s),
                first_clause_ms=_ms(turn.first_clause_s, turn.first_token_s),
                tts_first_audio_ms=_ms(turn.first_audio_s, turn.first_clause_s),
                first_audio_ms=_ms(turn.first_audio_s, turn.speech_end_s),
                total_ms=(now - turn.speech_end_s) * 1000.0,
                tokens_per_s=frame.tokens_per_s,
                n_tokens=frame.n_tokens,
                clauses=turn.clauses,
                audio_s=turn.audio_s,
            )
