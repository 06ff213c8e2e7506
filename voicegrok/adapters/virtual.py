"""Devices without hardware: a microphone that plays a recording at real-time pace and a
speaker that "plays" into nothing at real-time pace (benchmarks, tests, machines without a
sound card). They keep the same clocks as real devices, so the live loop behaves the same.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator

import numpy as np
import numpy.typing as npt

__all__ = ["VirtualSpeaker", "paced_chunks"]


async def paced_chunks(
    audio: npt.NDArray[np.float32], sample_rate_hz: int, *, block_ms: int = 20
) -> AsyncIterator[npt.NDArray[np.float32]]:
    """Yield ``audio`` in ``block_ms`` pieces, each when a microphone would have captured it."""
    step = int(sample_rate_hz * block_ms / 1000)
    start = time.perf_counter()
    for i in range(0, len(audio), step):
        due = start + (i + step) / sample_rate_hz
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        yield audio[i : i + step]


class VirtualSpeaker:
    """Consumes queued 16-bit mono PCM at real-time pace, like a sound card would.

    Keeps what it played (``recording``) so tests and benchmarks can check it.
    """

    def __init__(self, sample_rate_hz: int, *, keep: bool = True) -> None:
        self.sample_rate_hz = sample_rate_hz
        self._lock = threading.Lock()
        self._queued = bytearray()
        self._started_s = 0.0
        """When the audio now queued started playing (perf_counter)."""
        self._base = 0
        """``played_bytes`` when the current run of playback started."""
        self.queued_bytes = 0
        self._played = 0
        self._keep = keep
        self.recording = bytearray()
        self._paused = False

    def _advance(self) -> None:
        now = time.perf_counter()
        if not self._queued or self._paused:
            return
        due = self._base + 2 * int((now - self._started_s) * self.sample_rate_hz)
        n = min(len(self._queued), max(0, due - self._played))
        n -= n % 2
        if n:
            if self._keep:
                self.recording += self._queued[:n]
            del self._queued[:n]
            self._played += n

    @property
    def played_bytes(self) -> int:
        with self._lock:
            self._advance()
            return self._played

    def play(self, pcm: bytes) -> None:
        with self._lock:
            self._advance()
            if not self._queued:  # starting after silence
                self._started_s = time.perf_counter()
                self._base = self._played
            self._queued += pcm
            self.queued_bytes += len(pcm)

    @property
    def buffered_s(self) -> float:
        with self._lock:
            self._advance()
            return len(self._queued) / 2 / self.sample_rate_hz

    def clear(self) -> None:
        with self._lock:
            self._advance()
            self.queued_bytes -= len(self._queued)
            self._queued.clear()
            self._paused = False  # the next audio starts a new run of playback

    def pause(self) -> None:
        with self._lock:
            self._advance()
            self._paused = True

    def resume(self) -> None:
        with self._lock:
            if self._paused:
                self._paused = False
                self._started_s, self._base = time.perf_counter(), self._played

    async def drain(self) -> None:
        while self.buffered_s > 0:  # noqa: ASYNC110 (a clock, not an event)
            await asyncio.sleep(0.02)
