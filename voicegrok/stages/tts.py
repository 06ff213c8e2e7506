"""Text-to-speech stage: a clause in, its audio out (one chunk per sentence, as produced)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from ..audio import trim_pcm16
from ..engines import TextToSpeech
from ..frames import Frame, LLMToken, SpokenClause, TTSAudio
from ..threads import EngineThread


def pause_after(clause: str) -> float:
    """Milliseconds of silence to keep after a clause, by how it ends: a sentence keeps the
    voice's own pause, a comma a shorter one, and a first clause cut between two words
    almost none (it is the same sentence going on)."""
    end = clause.rstrip("\"'”’)]*_ ")[-1:]
    if end and end in ".!?…":
        return 220.0
    if end and end in ",;:—–-":
        return 120.0
    return 30.0


class TTSStage:
    """Synthesizes clauses in order.

    The voice's silence around each clause is cut to what the clause's ending calls for
    (see :func:`pause_after`), so a first clause cut early costs no extra pause, and
    speech starts with the first sound, not 40-50 ms of silence.

    With ``lead_s`` set (live playback), a later clause is synthesized only when the audio
    already made is within ``lead_s`` of running out at real-time pace: on two cores,
    synthesis running far ahead of the speaker only takes the CPU from the LLM (and is
    wasted when the person interrupts). The first clause is never held back.
    """

    accepts = (SpokenClause,)
    passes_while_busy = (LLMToken,)
    """Tokens are for display: they must not wait while a clause waits for the speaker."""

    def __init__(
        self,
        engine: TextToSpeech,
        thread: EngineThread | None = None,
        *,
        lead_s: float | None = None,
    ) -> None:
        self._engine = engine
        self._thread = thread or EngineThread("tts")
        self._lead_s = lead_s
        self._turn = -1
        self._first_audio_s = 0.0
        self._audio_s = 0.0

    async def _pace(self, turn_id: int) -> None:
        if self._turn != turn_id:
            self._turn, self._audio_s = turn_id, 0.0
            return
        if self._lead_s is None or self._audio_s == 0.0:
            return
        ahead = self._audio_s - (time.perf_counter() - self._first_audio_s)
        if ahead > self._lead_s:
            await asyncio.sleep(ahead - self._lead_s)

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        assert isinstance(frame, SpokenClause)
        yield frame
        if not frame.spoken:
            return
        await self._pace(frame.turn_id)
        text = frame.spoken
        rate = self._engine.sample_rate_hz
        tail_ms = pause_after(text)
        async for raw in self._thread.stream(lambda: self._engine.synthesize(text)):
            pcm = trim_pcm16(raw, rate, lead_ms=10, tail_ms=tail_ms)
            if self._audio_s == 0.0:
                self._first_audio_s = time.perf_counter()
            self._audio_s += len(pcm) / 2 / rate
            yield TTSAudio(
                turn_id=frame.turn_id, pcm=pcm, sample_rate_hz=rate, clause_index=frame.index
            )
