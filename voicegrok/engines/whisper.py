"""faster-whisper (CTranslate2) speech-to-text."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import ModelError, first_line

__all__ = ["WhisperEngine"]


class WhisperEngine:
    """Blocking speech-to-text. Segments are drained inside :meth:`transcribe`."""

    sample_rate_hz = 16000
    short_window_pad_s = 2
    """Silence added after the audio in the short-window fast path (whisper wants context)."""
    short_window_min_s = 5

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
        self._prompt: list[int] | None = None
        if language is not None or not self._model.model.is_multilingual:
            from faster_whisper.tokenizer import Tokenizer

            self._tokenizer = Tokenizer(
                self._model.hf_tokenizer,
                self._model.model.is_multilingual,
                task="transcribe",
                language=language or "en",
            )
            self._prompt = self._model.get_prompt(self._tokenizer, [], without_timestamps=True)

    def transcribe(self, audio: npt.NDArray[np.float32]) -> str:
        with self._lock:
            seconds = len(audio) / self.sample_rate_hz
            if self._prompt is not None and seconds + self.short_window_pad_s <= 30:
                text = self._transcribe_short(audio)
                if text is not None:
                    return text
            return self._transcribe_full(audio)

    def _transcribe_short(self, audio: npt.NDArray[np.float32]) -> str | None:
        """Encode only the audio plus a little silence instead of whisper's padded 30 s.

        faster-whisper always pads to 30 s, so the encoder costs the same for a 2 s question
        as for 30 s of speech (215-330 ms for tiny.en on 2 cores); a 5-10 s window costs
        25-60 ms and gives the same words on short utterances. Returns None when the result
        looks like a hallucination loop (the caller then decodes the usual way).
        """
        import ctranslate2
        from faster_whisper.transcribe import get_compression_ratio

        assert self._prompt is not None
        features: Any = self._model.feature_extractor(audio)
        seconds = len(audio) / self.sample_rate_hz + self.short_window_pad_s
        frames = min(3000, 100 * max(self.short_window_min_s, math.ceil(seconds)))
        features = features[:, :frames]
        if features.shape[1] < frames:
            features = np.pad(features, ((0, 0), (0, frames - features.shape[1])))
        batch = ctranslate2.StorageView.from_array(
            np.ascontiguousarray(features[None], dtype=np.float32)
        )
        model: Any = self._model.model
        encoded = model.encode(batch, to_cpu=False)
        result = model.generate(
            encoded,
            [self._prompt],
            beam_size=self._beam_size,
            max_length=224,
            suppress_blank=True,
            suppress_tokens=[-1],
        )
        eot = self._tokenizer.eot
        text = str(self._tokenizer.decode([t for t in result[0].sequences_ids[0] if t < eot]))
        text = text.strip()
        if text and get_compression_ratio(text) > 2.4:
            return None
        return text

    def _transcribe_full(self, audio: npt.NDArray[np.float32]) -> str:
        segments, _info = self._model.transcribe(
            audio,
            language=self._language,
            beam_size=self._beam_size,
            without_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        return " ".join(s.text.strip() for s in segments).strip()
