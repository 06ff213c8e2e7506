"""Streaming Silero VAD v6 (the ONNX export faster-whisper ships), state kept across chunks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..audio import WHISPER_RATE_HZ
from .onnx import cpu_session

__all__ = ["SileroVAD"]


class SileroVAD:
    """Speech probability of each 32 ms window of 16 kHz audio.

    faster-whisper's own wrapper resets the model state on every call (batch use); this one
    keeps the LSTM state and the 64-sample context between calls, so audio can be fed in
    pieces of any length as it arrives from a microphone.

    The LSTM's cell state grows over a long silence, and the model grows slow to hear
    speech: after a minute of a virtual microphone's digital silence, demo question 2 got
    probabilities of 0.14-0.45 for its first 300 ms (0.6-0.9 after a second of silence),
    its first word fell out of the utterance, and the end-of-turn model, hearing the
    rest, held the answer 600 ms longer. So the state starts afresh after
    :attr:`quiet_windows` windows in a row that hold no speech.
    """

    sample_rate_hz = WHISPER_RATE_HZ  # Silero also takes 8 kHz; whisper's rate avoids resampling
    window_samples = 512
    _context_samples = 64
    quiet_windows = 31
    """Windows (1 s) below :attr:`quiet_below` in a row after which the state is reset."""
    quiet_below = 0.1

    def __init__(self, model_path: Path) -> None:
        self._session: Any = cpu_session(
            model_path,
            threads=1,
            what="Silero VAD model",
            fix="reinstall faster-whisper, which ships silero_vad_v6.onnx",
        )
        self.reset()

    def fork(self) -> SileroVAD:
        """Another stream's detector: the same ONNX session (no second copy), its own state."""
        other = object.__new__(SileroVAD)
        other._session = self._session
        other.reset()
        return other

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(self._context_samples, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self._quiet = 0

    def probabilities(self, samples: npt.NDArray[np.float32]) -> list[float]:
        """Feed audio; returns one probability for each whole window completed by it."""
        audio = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        n = len(audio) // self.window_samples
        self._pending = audio[n * self.window_samples :]
        out = []
        for i in range(n):
            window = audio[i * self.window_samples : (i + 1) * self.window_samples]
            x = np.concatenate([self._context, window])[None, :]
            prob, self._h, self._c = self._session.run(
                None, {"input": x, "h": self._h, "c": self._c}
            )
            self._context = window[-self._context_samples :]
            p = float(np.asarray(prob).ravel()[0])
            self._quiet = self._quiet + 1 if p < self.quiet_below else 0
            if self._quiet >= self.quiet_windows:
                self._h = np.zeros_like(self._h)
                self._c = np.zeros_like(self._c)
                self._quiet = 0
            out.append(p)
        return out
