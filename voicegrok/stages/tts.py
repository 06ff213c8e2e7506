"""Text-to-speech stage: a clause in, its audio out (one chunk per sentence, as produced)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import ClassVar

from ..audio import trim_pcm16
from ..engines import TextToSpeech
from ..frames import Frame, LLMToken, SpokenClause, TTSAudio
from ..threads import CoreShare, EngineThread

SENTENCE_PAUSE_MS = 220.0
"""Silence kept after a clause that ends a sentence (``.!?…``): the voice's own pause."""
COMMA_PAUSE_MS = 120.0
"""Silence kept after a clause that ends on a comma, semicolon, colon or dash: a shorter one."""
RUN_ON_PAUSE_MS = 30.0
"""Silence kept after a clause cut between two words: almost none, the sentence goes on."""
LEAD_SILENCE_MS = 10.0
"""Silence kept before a clause's first sound: speech starts at once."""


def pause_after(clause: str) -> float:
    """Milliseconds of silence to keep after a clause, by how it ends: a sentence keeps the
    voice's own pause, a comma a shorter one, and a first clause cut between two words
    almost none (it is the same sentence going on)."""
    end = clause.rstrip("\"'”’)]*_ ")[-1:]
    if end and end in ".!?…":
        return SENTENCE_PAUSE_MS
    if end and end in ",;:—–-":
        return COMMA_PAUSE_MS
    return RUN_ON_PAUSE_MS


class TTSStage:
    """Synthesizes clauses in order.

    The voice's silence around each clause is cut to what the clause's ending calls for
    (see :func:`pause_after`), so a first clause cut early costs no extra pause, and
    speech starts with the first sound, not with the voice's leading silence.

    With ``lead_s`` set (live playback), a later clause is synthesized just in time: when
    the audio already made would run out, at real-time pace, within ``lead_s`` plus the
    time this clause should take to synthesize (estimated from its length and the voice's
    measured speed). On two cores, synthesis running ahead of the speaker only takes the CPU
    from the LLM (it drops to one thread while speech is made). Once ``cores`` says the
    LLM is idle, clauses are made up to ``max_ahead_s`` ahead (robust to hiccups, not
    much wasted when the person interrupts). The first clause is never held back, and is
    synthesized as ``urgent`` (with every core, the LLM pausing meanwhile): the person is
    waiting for it, while the LLM's next words are not needed before it has been heard.
    """

    accepts: ClassVar[tuple[type[Frame], ...]] = (SpokenClause,)
    inline: ClassVar[bool] = False
    passes_while_busy: ClassVar[tuple[type[Frame], ...]] = (LLMToken,)
    """Tokens are for display: they must not wait while a clause waits for the speaker.
    (Transcripts passing too made the open-speaker echo test fail 3 times in 8, against
    none in 6 without: they wait.)"""

    max_ahead_s = 8.0
    """Seconds of audio made ahead of the speaker at most once the LLM is idle."""
    safety = 1.5
    """Margin on the estimated synthesis time."""
    initial_rtf = 0.1
    """Seconds of synthesis per second of audio assumed until a clause has been timed."""
    initial_chars_per_s = 14.0
    """Characters of text per second of audio assumed until then (a usual speaking rate)."""
    smoothing = 0.3
    """Weight of each timed clause in the running estimates (exponential smoothing)."""
    min_timed_s = 0.3
    """Clauses with less audio than this (seconds) are not learned from: too short to time."""
    poll_s = 0.05
    """Longest sleep (seconds) while a clause waits for the speaker to need it."""

    def __init__(
        self,
        engine: TextToSpeech,
        thread: EngineThread | None = None,
        *,
        lead_s: float | None = None,
        cores: CoreShare | None = None,
    ) -> None:
        self._engine = engine
        self._thread = thread or EngineThread("tts")
        self._silent: set[int] = set()
        self._lead_s = lead_s
        self._cores = cores
        self._turn = -1
        self._first_audio_s = 0.0
        self._audio_s = 0.0
        self._rtf = self.initial_rtf
        """Seconds of synthesis per second of audio (measured, smoothed)."""
        self._chars_per_s = self.initial_chars_per_s
        """Characters of text per second of audio (measured, smoothed)."""

    def _synthesis_s(self, text: str) -> float:
        return len(text) / self._chars_per_s * self._rtf * self.safety

    async def _pace(self, turn_id: int, text: str) -> None:
        if self._turn != turn_id:
            self._turn, self._audio_s = turn_id, 0.0
            return
        if self._lead_s is None or self._audio_s == 0.0:
            return
        needed = self._lead_s + self._synthesis_s(text)
        while True:
            ahead = self._audio_s - (time.perf_counter() - self._first_audio_s)
            llm_busy = self._cores is None or self._cores.llm_busy()
            if ahead <= needed or (ahead <= self.max_ahead_s and not llm_busy):
                return
            await asyncio.sleep(min(self.poll_s, ahead - needed))

    def _learn(self, text: str, audio_s: float, took_s: float) -> None:
        if audio_s < self.min_timed_s:
            return
        a = self.smoothing
        self._rtf = (1 - a) * self._rtf + a * (took_s / audio_s)
        self._chars_per_s = (1 - a) * self._chars_per_s + a * (len(text) / audio_s)

    def silence_turn(self, turn_id: int) -> None:
        """Say nothing for ``turn_id``: its answer is wanted as text only."""
        self._silent.add(turn_id)
        self._silent = {t for t in self._silent if t > turn_id - 64}

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        assert isinstance(frame, SpokenClause)
        yield frame
        if not frame.spoken or frame.turn_id in self._silent:
            return
        text = frame.spoken
        await self._pace(frame.turn_id, text)
        urgent = self._audio_s == 0.0  # nothing of this answer is playing yet
        rate = self._engine.sample_rate_hz
        tail_ms = pause_after(text)
        started_s = time.perf_counter()
        made_s = took_s = 0.0
        async for raw in self._thread.stream(
            lambda: self._engine.synthesize(text, urgent=urgent), priority=0 if urgent else 1
        ):
            made_s += len(raw) / 2 / rate
            took_s = time.perf_counter() - started_s
            pcm = trim_pcm16(raw, rate, lead_ms=LEAD_SILENCE_MS, tail_ms=tail_ms)
            if self._audio_s == 0.0:
                self._first_audio_s = time.perf_counter()
            self._audio_s += len(pcm) / 2 / rate
            yield TTSAudio(
                turn_id=frame.turn_id, pcm=pcm, sample_rate_hz=rate, clause_index=frame.index
            )
        if made_s:
            self._learn(text, made_s, took_s)
