"""Engines: blocking wrappers around the model libraries, typed by the protocols below.

Stages depend on these protocols only, so tests can inject the fakes of
:mod:`voicegrok.testing`. Every engine method blocks; stages run them on an
:class:`~voicegrok.threads.EngineThread`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from ..conversation import Message

__all__ = [
    "ChatModel",
    "SpeechToText",
    "Stop",
    "TextToSpeech",
    "TurnDetector",
    "VoiceActivity",
    "WordsDetector",
]

Stop = threading.Event | None
"""Given to :meth:`ChatModel.warm_up`: once set (an answer waits for the engine), the
warm-up ends soon."""


class SpeechToText(Protocol):
    sample_rate_hz: int
    """The rate ``transcribe`` expects (Hz)."""

    def transcribe(self, audio: npt.NDArray[np.float32], prefix: str = "") -> str:
        """The text of mono float32 audio at ``sample_rate_hz`` ("" when nothing is said).
        ``prefix``: words the audio is known to begin with (earlier transcripts of its start
        agreed on them); they need not be decoded again, and the text begins with them."""
        ...


class ChatModel(Protocol):
    n_ctx: int
    """Context window (tokens)."""

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """How many tokens ``messages`` take in the prompt."""
        ...

    def stream_chat(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float
    ) -> Iterator[str]:
        """Yield the answer piece by piece (each piece is one or a few tokens of text).

        An engine that lets the model call tools also takes ``tools``
        (a :class:`~voicegrok.tools.calls.ToolOffer`); the answer is then either words or
        a call in the format of :mod:`voicegrok.tools.calls`."""
        ...

    def warm_up(
        self,
        messages: Sequence[Message],
        *,
        background: bool = False,
        stop: Stop = None,
        open_end: bool = False,
    ) -> None:
        """Evaluate ``messages`` ahead of time so the next prompt that starts with them is
        fast. ``background``: nobody waits for it (the history while the answer is spoken):
        it gives way to speech being made. ``stop``: set when an answer waits for the
        engine; the warm-up then ends soon (what it evaluated stays in the cache).
        ``open_end``: the last message is still being spoken (words heard so far): its
        words only, not its end and the assistant's cue, which the next prompt will not
        share."""
        ...


class TextToSpeech(Protocol):
    sample_rate_hz: int
    """Rate of the PCM that ``synthesize`` yields (Hz)."""

    def synthesize(self, text: str, *, urgent: bool = False) -> Iterator[bytes]:
        """Yield mono signed 16-bit PCM, one chunk per sentence of ``text``. ``urgent``:
        someone is waiting for this sound (the first clause of an answer): use every core."""
        ...


class VoiceActivity(Protocol):
    sample_rate_hz: int
    window_samples: int
    """Samples per window: ``probabilities`` gets whole windows."""

    def probabilities(self, samples: npt.NDArray[np.float32]) -> list[float]:
        """Speech probability of each window of ``samples`` (model state carries over)."""
        ...

    def reset(self) -> None:
        """Forget the state (a new stream)."""
        ...

    def fork(self) -> VoiceActivity:
        """A detector for another stream: the same model, its own state."""
        ...


class TurnDetector(Protocol):
    sample_rate_hz: int

    def probability(self, audio: npt.NDArray[np.float32]) -> float:
        """How likely the speaker of ``audio`` (an utterance so far, ending now) has
        finished their turn, from the sound (0 to 1)."""
        ...


class WordsDetector(Protocol):
    def probability(self, text: str) -> float:
        """How likely ``text`` (a transcript so far) is a finished request, from the words
        alone (0 to 1)."""
        ...
