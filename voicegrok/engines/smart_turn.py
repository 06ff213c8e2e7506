"""Smart Turn: does the audio of an utterance sound finished? (a blocking engine)

Smart Turn v3 (BSD-2, pipecat's int8 ONNX export) reads the last 8 s of the speech as
Whisper log-mel features and gives the probability that the speaker has finished their
turn. It hears what words alone do not: a falling or rising pitch at the end, a drawn-out
"and...", a breath before going on. It is a signal to weigh with the pause and the words,
not a verdict: the same question cut in the middle scored anywhere from 0.19 to 0.89.

The features are faster-whisper's own extractor set to 8 s windows, on the waveform
normalised to zero mean and unit variance, as the model was trained.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..audio import WHISPER_RATE_HZ
from .onnx import cpu_session

__all__ = ["SmartTurn"]

WINDOW_S = 8


class SmartTurn:
    """``probability(audio)``: how likely the turn is complete, from its last 8 s."""

    sample_rate_hz: int = WHISPER_RATE_HZ

    def __init__(self, model_path: Path, *, threads: int = 1) -> None:
        from faster_whisper.feature_extractor import FeatureExtractor

        self.path = model_path
        self._session = cpu_session(
            model_path,
            threads=threads,
            what="end-of-turn model",
            fix="pass --turn-model a Smart Turn v3 .onnx file (or none)",
        )
        self._features = FeatureExtractor(feature_size=80, chunk_length=WINDOW_S)
        self._window = WINDOW_S * self.sample_rate_hz
        self._lock = threading.Lock()
        self.probability(np.zeros(self.sample_rate_hz, dtype=np.float32))  # allocates

    def probability(self, audio: npt.NDArray[np.float32]) -> float:
        """P(the speaker is done) for mono float32 audio at 16 kHz, ending now."""
        x = np.asarray(audio, dtype=np.float32)[-self._window :]
        x = np.pad(x, (self._window - len(x), 0))  # silence before, as in training
        x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
        mel = self._features(x, padding=0).astype(np.float32)[np.newaxis]
        with self._lock:
            (out,) = self._session.run(None, {"input_features": mel})
        return float(np.asarray(out).reshape(-1)[0])
