"""faster-whisper (CTranslate2) speech-to-text."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..errors import ModelError, first_line

__all__ = ["WhisperEngine"]


class WhisperEngine:
    """Blocking speech-to-text. Segments are drained inside :meth:`transcribe`."""

    sample_rate_hz = 16000

    def __init__(
        self,
        model_dir: Path,
        *,
        threads: int = 2,
        compute_type: str = "int8",
        beam_size: int = 1,
        language: str | None = "en",
    ) -> None:
        from faster_whisper import WhisperModel

        try:
            self._model = WhisperModel(
                str(model_dir), device="cpu", compute_type=compute_type, cpu_threads=threads
            )
        except (RuntimeError, ValueError, OSError) as e:
            raise ModelError(
                f"{model_dir}: cannot load the whisper model ({first_line(e)}); "
                "pass --stt-model a CTranslate2 whisper folder"
            ) from None
        self._beam_size = beam_size
        self._language = language
        self._lock = threading.Lock()

    def transcribe(self, audio: npt.NDArray[np.float32]) -> str:
        with self._lock:
            segments, _info = self._model.transcribe(
                audio,
                language=self._language,
                beam_size=self._beam_size,
                without_timestamps=True,
                condition_on_previous_text=False,
                vad_filter=False,
            )
            return " ".join(s.text.strip() for s in segments).strip()
