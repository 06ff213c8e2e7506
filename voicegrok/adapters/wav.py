"""WAV file sink: collects a turn's reply audio and writes it to a file."""

from __future__ import annotations

from pathlib import Path

from ..audio import DEFAULT_OUTPUT_RATE_HZ, write_wav
from ..frames import Frame, TTSAudio

__all__ = ["WavSink"]


class WavSink:
    """Collects TTSAudio frames; ``save(path)`` writes them as one mono 16-bit WAV."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self.sample_rate_hz: int | None = None

    def feed(self, frame: Frame) -> None:
        if isinstance(frame, TTSAudio):
            self._chunks.append(frame.pcm)
            self.sample_rate_hz = frame.sample_rate_hz

    @property
    def duration_s(self) -> float:
        if not self.sample_rate_hz:
            return 0.0
        return sum(len(c) for c in self._chunks) / 2 / self.sample_rate_hz

    def save(self, path: str | Path, default_rate_hz: int = DEFAULT_OUTPUT_RATE_HZ) -> None:
        write_wav(path, b"".join(self._chunks), self.sample_rate_hz or default_rate_hz)

    def clear(self) -> None:
        self._chunks.clear()
