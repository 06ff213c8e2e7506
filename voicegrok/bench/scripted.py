"""The person the latency bench plays: asks the recorded questions into the live loop at
real-time pace, hears each answer out, then speaks over one; and the speaker that notes
when that answer's playback stopped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sized
from typing import Protocol

import numpy as np

from ..adapters.virtual import VirtualSpeaker, paced_chunks
from ..audio import FloatAudio

__all__ = ["RATE_HZ", "Listener", "TimedSpeaker", "person"]

RATE_HZ = 16000
"""Sample rate of the recordings and of the microphone the person speaks into."""
_BLOCK_S = 0.02
"""The person's silences come in blocks of this many seconds, like a microphone's."""
_SILENCE = np.zeros(int(RATE_HZ * _BLOCK_S), dtype=np.float32)
_LEAD_IN = np.zeros(RATE_HZ // 2, dtype=np.float32)
"""Silence before each question."""
_ONSET_LEVEL = 0.02
"""Amplitude that marks the first sound of the words spoken over an answer."""


class Listener(Protocol):
    """The live session, as the person sees it."""

    @property
    def answering(self) -> bool:
        """An answer is being made or played."""
        ...


class TimedSpeaker(VirtualSpeaker):
    """A virtual speaker that notes when playback is first stopped (cleared, or paused
    while the interruption is confirmed) after ``onset_s`` (also when it had just run dry
    between two clauses: the answer is stopped all the same)."""

    onset_s: float | None = None
    """When the first sound of the words spoken over the answer is heard (perf_counter)."""
    stopped_s: float | None = None
    """When playback was first stopped after ``onset_s`` (perf_counter)."""

    def _stopping(self) -> None:
        now = time.perf_counter()
        if self.onset_s is not None and self.stopped_s is None and now >= self.onset_s:
            self.stopped_s = now

    def clear(self) -> None:
        self._stopping()
        super().clear()

    def pause(self) -> None:
        self._stopping()
        super().pause()


async def _silence_until(
    answered: Sized, turns: int, session: Listener
) -> AsyncIterator[FloatAudio]:
    """Silence until ``turns`` answers have been heard (``answered`` has that many metrics
    rows), or 3 s with no answer going on (a turn that failed writes none). A whole answer
    of ``max_tokens`` is heard, up to 240 s."""
    waited = idle = 0.0
    while len(answered) < turns and waited < 240 and idle < 3.0:
        yield _SILENCE
        await asyncio.sleep(_BLOCK_S)
        waited += _BLOCK_S
        idle = 0.0 if session.answering else idle + _BLOCK_S


async def person(
    recordings: list[FloatAudio],
    speaker: TimedSpeaker,
    answered: Sized,
    session: Listener,
) -> AsyncIterator[FloatAudio]:
    """The microphone's audio (16 kHz): each of ``recordings`` (at least 4), after half a
    second of silence, then silence until its answer has been heard (``answered`` grows by
    one metrics row per answer; ``session.answering`` says whether one is going on). Then
    barge-in: the second question again, and 1.5 s into its answer the fourth, spoken over
    it, with ``speaker.onset_s`` set to its first sound; then silence until both turns are
    done, and half a second more."""
    for i, audio in enumerate(recordings):
        async for chunk in paced_chunks(np.concatenate([_LEAD_IN, audio]), RATE_HZ):
            yield chunk
        async for chunk in _silence_until(answered, i + 1, session):
            yield chunk
    async for chunk in paced_chunks(recordings[1], RATE_HZ):
        yield chunk
    waited = heard = 0.0
    while heard < 1.5 and waited < 30:
        yield _SILENCE
        await asyncio.sleep(_BLOCK_S)
        waited += _BLOCK_S
        if speaker.buffered_s:
            heard += _BLOCK_S
        elif heard:
            break  # a short answer, over already
    over = recordings[3]
    onset = int(np.argmax(np.abs(over) > _ONSET_LEVEL))
    speaker.onset_s = time.perf_counter() + onset / RATE_HZ
    async for chunk in paced_chunks(over, RATE_HZ):
        yield chunk
    async for chunk in _silence_until(answered, len(recordings) + 2, session):
        yield chunk
    for _ in range(25):
        yield _SILENCE
        await asyncio.sleep(_BLOCK_S)
