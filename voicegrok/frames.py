"""Typed frames: the only things that travel between stages.

Every frame is a small frozen dataclass carrying the id of the turn it belongs to and the
monotonic time (``time.perf_counter()``, seconds) at which it was made. Stages never share
mutable state; they turn frames into frames. Times are in seconds unless a name says ``_ms``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = [
    "Alert",
    "AudioChunk",
    "ControlFrame",
    "Frame",
    "Greeting",
    "Heard",
    "Interrupt",
    "LLMDone",
    "LLMToken",
    "SpeechOnset",
    "SpeechStarted",
    "SpokenClause",
    "TTSAudio",
    "ToolCallRequested",
    "ToolUsed",
    "TurnConfirmed",
    "TurnFailed",
    "TurnMetrics",
    "TurnRetracted",
    "TurnStarted",
    "UserAudio",
    "UserText",
    "decode_rate",
]

FloatAudio = npt.NDArray[np.float32]


def _now() -> float:
    return time.perf_counter()


def decode_rate(n_tokens: int, first_token_s: float, last_token_s: float) -> float:
    """Tokens per second after the first token (the prompt evaluation is not counted);
    0.0 when there is no span to measure. The one formula behind every tokens/s shown."""
    span = last_token_s - first_token_s
    return (n_tokens - 1) / span if n_tokens > 1 and span > 0 else 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Frame:
    """Base of all frames."""

    turn_id: int
    """The turn this frame belongs to; frames of a cancelled turn are dropped."""
    at_s: float = field(default_factory=_now, compare=False)
    """``time.perf_counter()`` when the frame was made (seconds)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlFrame(Frame):
    """Frames that jump ahead of queued data (the control lane)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Interrupt(ControlFrame):
    """Cancel the given turn: generation and synthesis stop, queued frames are dropped."""

    reason: str = "interrupted"


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechStarted(ControlFrame):
    """The person started speaking (after pre-roll and minimum duration): barge-in point."""

    audio_start_s: float
    """Position of the first voiced sample in the microphone stream (seconds)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechOnset(ControlFrame):
    """A voiced window in silence (``voiced``), before it is long enough to start speech,
    or the end of such a run that did not (``turn_id`` is 0): an answer playing pauses at
    once, and plays on if no speech starts."""

    voiced: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Heard(ControlFrame):
    """What the listener made out of the speech of ``turn_id`` so far (``final``: all of
    it; "": no words). On the control lane, next to the ``UserText`` that waits behind a
    busy LLM: whether speech over an answer was meant to stop it is decided at once."""

    text: str
    final: bool
    voiced_ms: float | None = None
    """How long the speech has lasted so far, from its first voiced window to its last
    (None: not known)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnRetracted(ControlFrame):
    """The turn was started early, at a pause, and the person went on speaking: cancel it
    and forget it; their words continue in a new turn."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnConfirmed(ControlFrame):
    """A tentative turn (started at a pause) reached the end-of-turn silence: it stands."""


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class AudioChunk(Frame):
    """A short piece of microphone audio, mono float32 in [-1, 1]. ``turn_id`` is 0."""

    samples: FloatAudio
    sample_rate_hz: int
    hears_over_speaker: bool = True
    """Whether the microphone would hear the person talking over the speaker. False while
    an echo canceller is still converging: it mutes the microphone whenever the speaker
    plays, so an answer let out while the person may go on would make their next words
    unheard."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnStarted(Frame):
    """A new turn: the person finished speaking (or typed a message)."""

    speech_end_s: float
    """``perf_counter()`` time the person's speech ended: the zero of the turn's latencies."""
    audio_end_s: float | None = None
    """Where the speech ended in the listener's audio stream, in seconds from its start (as
    :attr:`SpeechStarted.audio_start_s`); None for a typed turn or a whole recording."""
    source: str = "speech"
    """``"speech"`` or ``"text"``."""
    tentative: bool = False
    """Started at a pause before the words looked finished: the answer is prepared, but
    held back (not shown, not played) until ``TurnConfirmed``; ``TurnRetracted`` drops it."""


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class UserAudio(Frame):
    """One whole utterance of the person, mono float32 in [-1, 1]."""

    samples: FloatAudio
    sample_rate_hz: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate_hz


@dataclass(frozen=True, slots=True, kw_only=True)
class UserText(Frame):
    """What the person said (a transcript) or typed. Only final texts are answered.
    ``source`` ``"conversation"``: no new words, answer from the conversation so far (a
    client's ``response.create`` with no new input, e.g. a greeting)."""

    text: str
    final: bool = True
    source: str = "speech"
    instructions: str | None = None
    """A system prompt for this answer only (None: the conversation's)."""
    tool_choice: str = "auto"
    """Tools the model may call: ``auto``, ``none``, ``required`` or one tool's name."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert(Frame):
    """Something the assistant says on its own, outside any turn (a timer rang)."""

    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Greeting(Frame):
    """What the assistant says when it starts listening, before anyone has spoken."""

    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolUsed(Frame):
    """A tool was called for the turn's answer, and answered."""

    name: str
    arguments: str
    """JSON."""
    output: str
    error: bool = False
    chosen_by: str = "router"
    """``router``: the request plainly asked for this built-in tool; ``llm``: the model
    called it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallRequested(Frame):
    """The model called a client's function (Realtime API): the client runs it, sends
    its output and asks for the answer. The turn's answer ends here."""

    name: str
    arguments: str
    """JSON."""
    call_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LLMToken(Frame):
    """One streamed piece of the assistant's answer (display text, may contain Markdown)."""

    text: str
    index: int
    """0 for the first token of the turn."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LLMDone(Frame):
    """The answer is complete (or was cut short by ``max_tokens``)."""

    text: str
    n_tokens: int
    first_token_s: float
    """``perf_counter()`` time of the first token."""
    last_token_s: float
    truncated: bool = False

    @property
    def tokens_per_s(self) -> float:
        """Decode speed after the first token (see :func:`decode_rate`)."""
        return decode_rate(self.n_tokens, self.first_token_s, self.last_token_s)


@dataclass(frozen=True, slots=True, kw_only=True)
class SpokenClause(Frame):
    """A speakable piece of the answer, cut at a clause or sentence boundary."""

    index: int
    text: str
    """As displayed (may contain Markdown)."""
    spoken: str
    """As read out: Markdown symbols, table pipes and URLs removed. May be empty."""


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class TTSAudio(Frame):
    """Synthesized speech for one clause (or part of one): mono signed 16-bit PCM."""

    pcm: bytes
    sample_rate_hz: int
    clause_index: int

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate_hz


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnFailed(Frame):
    """The turn could not be answered; ``message`` is one line for the user."""

    message: str
    stage: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnMetrics(Frame):
    """Where the time of one turn went. Every ``*_ms`` is a duration in milliseconds."""

    source: str
    stt_ms: float | None
    """End of speech -> final transcript (None for typed turns)."""
    llm_first_token_ms: float | None
    """Final transcript -> first LLM token."""
    tts_first_audio_ms: float | None
    """First clause -> its first synthesized audio."""
    first_audio_ms: float | None
    """End of speech -> first reply audio: the latency the person hears."""
    total_ms: float
    tokens_per_s: float
    n_tokens: int
    clauses: int
    audio_s: float
    """Seconds of reply audio produced."""
    failed: str | None = None
    first_clause_ms: float | None = None
    """First LLM token -> the first clause complete, handed to speech synthesis: the
    step between the first token and the synthesis that the others leave out."""

    def as_dict(self) -> dict[str, object]:
        return {
            "turn_id": self.turn_id,
            "source": self.source,
            "stt_ms": _round(self.stt_ms),
            "llm_first_token_ms": _round(self.llm_first_token_ms),
            "first_clause_ms": _round(self.first_clause_ms),
            "tts_first_audio_ms": _round(self.tts_first_audio_ms),
            "first_audio_ms": _round(self.first_audio_ms),
            "total_ms": _round(self.total_ms),
            "tokens_per_s": round(self.tokens_per_s, 1),
            "n_tokens": self.n_tokens,
            "clauses": self.clauses,
            "audio_s": round(self.audio_s, 2),
            "failed": self.failed,
        }

    @classmethod
    def from_dict(cls, row: dict[str, object], *, turn_id: int) -> TurnMetrics:
        """The metrics of :meth:`as_dict` read back (e.g. from a server's metrics event);
        TypeError or ValueError when a figure is not a number."""

        def opt(key: str) -> float | None:
            v = row.get(key)
            return None if v is None else float(v)  # type: ignore[arg-type]

        def num(key: str) -> float:
            return float(row.get(key) or 0.0)  # type: ignore[arg-type]

        failed = row.get("failed")
        return cls(
            turn_id=turn_id,
            source=str(row.get("source", "speech")),
            stt_ms=opt("stt_ms"),
            llm_first_token_ms=opt("llm_first_token_ms"),
            tts_first_audio_ms=opt("tts_first_audio_ms"),
            first_clause_ms=opt("first_clause_ms"),
            first_audio_ms=opt("first_audio_ms"),
            total_ms=num("total_ms"),
            tokens_per_s=num("tokens_per_s"),
            n_tokens=int(num("n_tokens")),
            clauses=int(num("clauses")),
            audio_s=num("audio_s"),
            failed=None if failed is None else str(failed),
        )

    def summary(self) -> str:
        """One line for a terminal: per-stage timings of the turn."""

        def ms(v: float | None) -> str:
            return "-" if v is None else f"{v:.0f} ms"

        parts = []
        if self.stt_ms is not None:
            parts.append(f"speech-to-text {ms(self.stt_ms)}")
        parts += [
            f"LLM first token {ms(self.llm_first_token_ms)}",
            f"{self.tokens_per_s:.0f} tokens/s ({self.n_tokens} tokens)",
            f"first clause {ms(self.first_clause_ms)}",
            f"text-to-speech first audio {ms(self.tts_first_audio_ms)}",
            f"first audio {ms(self.first_audio_ms)}",
            f"total {ms(self.total_ms)}",
        ]
        return " | ".join(parts)


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 1)
