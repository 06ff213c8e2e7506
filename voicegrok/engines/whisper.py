"""faster-whisper (CTranslate2) speech-to-text."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..audio import WHISPER_RATE_HZ
from ..errors import ModelError, first_line
from ..text import words
from ..threads import CoreShare

__all__ = ["WhisperEngine"]

HOP_SAMPLES = 160
"""Samples per whisper feature frame (10 ms at 16 kHz)."""


class WhisperEngine:
    """Blocking speech-to-text. Segments are drained inside :meth:`transcribe`."""

    sample_rate_hz = WHISPER_RATE_HZ
    short_windows = ((4.0, 6), (4.0, 10), (6.0, 12))
    """Fast-path windows tried in turn: (silence added after the audio, shortest window), in
    seconds. The encoder's cost grows with the window (here, 2 threads: 30 ms for 6 s, 57
    ms for 10 s; the decoder's 60 ms does not change). Whisper tiny sometimes loops on a
    short window (the sentence again and again): before ``no_repeat_ngram``, 8 and 9 s
    windows looped on the live windows of the demo questions. With it, 6 s windows gave the
    same words as 10 s ones on the demo questions, and on the turn-taking set's 60 clips a
    word error rate of 11.3% against 12.0%; the set's turns were cut off no more often
    (``voicegrok bench turns``: 15.0% against 16.7%). A loop, or a decode that stops early,
    is decoded again in the next window."""
    silence_window = (4.0, 10)
    """Tried when the short windows fail, before whisper's full 30 s: a window whose
    silence after the words is silence as whisper was trained (see :meth:`_features`)."""
    no_repeat_ngram = 6
    """No run of this many tokens may repeat: whisper tiny, given a short window, tends to
    say the utterance again and again; this makes it stop after the first time (no test
    window looped with it, some did without)."""
    tokens_per_s = 8
    """Most tokens a second of speech can hold (fast speech is ~6): a longer decode is a
    hallucination loop, stopped early instead of running to whisper's 224 tokens."""
    min_tokens_per_s = 1.0
    """Fewest tokens the audio's seconds beyond the first 1.5 should hold (speech is ~3 a
    second): whisper tiny, given a short window, sometimes ends after the first words
    ("It's our" for 5 s of speech); such a decode is tried in the next window."""

    def __init__(
        self,
        model_dir: Path,
        *,
        threads: int = 2,
        compute_type: str = "int8",
        beam_size: int = 1,
        language: str | None = "en",
        workers: int = 2,
        cores: CoreShare | None = None,
    ) -> None:
        """``workers``: transcriptions that can run at the same time (from different
        threads), e.g. a partial and the one that ends the turn."""
        from faster_whisper import WhisperModel

        try:
            self._model = WhisperModel(
                str(model_dir),
                device="cpu",
                compute_type=compute_type,
                cpu_threads=threads,
                num_workers=workers,
            )
        except (RuntimeError, ValueError, OSError) as e:
            raise ModelError(
                f"{model_dir}: cannot load the whisper model ({first_line(e)}); "
                "pass --stt-model a CTranslate2 whisper folder"
            ) from None
        self._cores = cores or CoreShare(1)
        self._beam_size = beam_size
        self._language = language
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

    def transcribe(self, audio: npt.NDArray[np.float32], prefix: str = "") -> str:
        with self._cores.working():
            return self._transcribe(audio, prefix.strip())

    def _transcribe(self, audio: npt.NDArray[np.float32], prefix: str) -> str:
        seconds = len(audio) / self.sample_rate_hz
        if self._prompt is not None:
            tried: set[tuple[int, str]] = set()
            for pad_s, min_s in self.short_windows:
                if seconds + pad_s > 30:
                    break
                # a long utterance makes two windows the same length: decoding it again
                # with the same words forced would give the same failure
                key = (_frames(seconds, pad_s, min_s), prefix)
                if key in tried:
                    continue
                tried.add(key)
                text = self._transcribe_short(audio, pad_s, min_s, prefix)
                if text is not None:
                    return text
                prefix = ""  # failed with it: the next window goes without
            pad_s, min_s = self.silence_window
            if seconds + pad_s <= 30:
                text = self._transcribe_short(audio, pad_s, min_s, silence=True)
                if text is not None:
                    return text
        return self._transcribe_full(audio)

    def _transcribe_short(
        self,
        audio: npt.NDArray[np.float32],
        pad_s: float,
        min_s: int,
        prefix: str = "",
        *,
        silence: bool = False,
    ) -> str | None:
        """Encode only the audio plus a little silence instead of whisper's padded 30 s.

        faster-whisper always pads to 30 s, so the encoder costs the same for a 2 s question
        as for 30 s of speech; a 5-10 s window costs a fraction of that and gives the same
        words on short utterances. Returns None when the result
        looks like a hallucination loop or stops too early for the audio's length (the
        caller then tries another window).

        ``prefix`` is forced as the text's beginning: its tokens go into the decoder's
        prompt, which keeps a transcript's words steady from one partial to the next. It
        saves no time: CTranslate2 takes a Whisper prompt's tokens after the start of the
        transcript through its decoding loop one by one (measured on turn2.wav in a 10 s
        window: 97 ms to decode with "Can you put this itinerary in a" forced, 95 without).
        """
        import ctranslate2
        from faster_whisper.transcribe import get_compression_ratio

        assert self._prompt is not None
        speech_s = len(audio) / self.sample_rate_hz
        frames = _frames(speech_s, pad_s, min_s)
        batch = ctranslate2.StorageView.from_array(
            self._features(audio, frames, silence=silence)[None]
        )
        model: Any = self._model.model
        encoded = model.encode(batch, to_cpu=False)
        cap = math.ceil(self.tokens_per_s * speech_s) + 12
        forced = self._tokenizer.encode(" " + prefix) if prefix else []
        result = model.generate(
            encoded,
            [self._prompt + forced],
            beam_size=self._beam_size,
            # CTranslate2 4.x gives at most max_length // 2 tokens here (measured).
            max_length=min(448, 2 * cap),
            suppress_blank=True,
            suppress_tokens=[-1],
            no_repeat_ngram_size=self.no_repeat_ngram,
        )
        eot = self._tokenizer.eot
        tokens = [t for t in result[0].sequences_ids[0] if t < eot]
        if len(tokens) >= cap or _loops(tokens):
            return None
        if len(tokens) < self.min_tokens_per_s * (speech_s - 1.5):
            return None  # stopped early
        text = str(self._tokenizer.decode(tokens)).strip()
        if text and get_compression_ratio(text) > 2.4:
            return None
        if _loops(words(text), WORDS_AGAIN):
            return None  # said again in other tokens (" seconds", then " second" "s")
        return text

    def _features(
        self, audio: npt.NDArray[np.float32], frames: int, *, silence: bool = False
    ) -> npt.NDArray[np.float32]:
        """Log-mel features of ``frames`` 10 ms frames: the audio, then zero features (as
        faster-whisper pads), or with ``silence`` true, silence as whisper was trained
        (OpenAI's code pads the audio to 30 s before its spectrogram).

        A zero feature is a steady sound about 40 dB over the floor a silent frame gets,
        and whisper hears it as a voice going on: the words at a pause mostly come without
        a final full stop ("I think", "My favourite city is"), which tells the end of turn
        they are not finished. With silence after them they end in one ("I think."): on the
        turn-taking set, answers let out in the middle of a turn with pauses rose from 28%
        to 36% (``voicegrok bench turns``, same hour), though the words came out slightly
        better (153 recordings: 14.2% -> 13.3% word error rate). So silence is the retry:
        padded with zero features, whisper tiny ended a 5 s recording after "It's our" in
        every window (tests/data/whisper_stops_early.flac), and with silence it does not."""
        if not silence:
            features: Any = self._model.feature_extractor(audio)[:, :frames]
        else:
            padded = np.zeros(max(frames * HOP_SAMPLES, len(audio)), dtype=np.float32)
            padded[: len(audio)] = audio
            features = self._model.feature_extractor(padded, padding=0)[:, :frames]
        out = np.zeros((features.shape[0], frames), dtype=np.float32)
        out[:, : features.shape[1]] = features
        return out

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


def _frames(speech_s: float, pad_s: float, min_s: int) -> int:
    """Feature frames of a short window: the speech and ``pad_s`` of silence, at least
    ``min_s`` seconds, at most whisper's 30."""
    return min(3000, 100 * max(min_s, math.ceil(speech_s + pad_s)))


WORDS_AGAIN = 4
"""A transcript whose last this many words came earlier in it is a replay: whisper tiny,
on 1.9 s of "Set a timer for six seconds." in a 6 s window, wrote "Set a timer for 6
seconds. Set a timer for 6 seconds" (the second "seconds" in two tokens, which neither
the repeated-token ban nor the token check caught), and the assistant set a 12 s timer."""


def _loops(items: Sequence[object], n: int = 5) -> bool:
    """Whether the last ``n`` items (tokens, words) already occurred earlier: whisper
    replaying the utterance from its start ("Can you do this? Can you do") rather than
    hearing it."""
    if len(items) < 2 * n:
        return False
    tail = list(items[-n:])
    return any(list(items[i : i + n]) == tail for i in range(len(items) - 2 * n + 1))
