"""What the turn controller knows of a turn (:class:`Turn`, its :class:`Phase`) and what it
decides (:data:`Decision`): plain values, carried out by the controller's owner."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ..frames import (
    Frame,
    TurnMetrics,
    TurnStarted,
)

__all__ = [
    "Decision",
    "EditHistory",
    "EndTurn",
    "Forget",
    "KeepHeard",
    "PausePlayback",
    "PausedAnswer",
    "Phase",
    "Report",
    "ResumePlayback",
    "Show",
    "StopPlayback",
    "Turn",
]


class Phase(enum.Enum):
    HELD = "held"
    """Started at a pause: prepared, not shown or played until confirmed."""
    ANSWERING = "answering"
    """Released: the answer is being made (and played as it comes)."""
    ANSWERED = "answered"
    """The answer is complete; it may still be playing."""
    INTERRUPTED = "interrupted"
    RETRACTED = "retracted"
    FAILED = "failed"


# ---------------------------------------------------------------------------- decisions


@dataclass(frozen=True, slots=True)
class Show:
    """Hand ``frame`` to the face: a view, the speaker (``TTSAudio``), a protocol encoder."""

    frame: Frame


@dataclass(frozen=True, slots=True)
class StopPlayback:
    """Silence the speaker now: drop whatever of ``turn_id`` is queued for playback."""

    turn_id: int


@dataclass(frozen=True, slots=True)
class PausePlayback:
    """Go silent now, keeping ``turn_id``'s queued audio: someone started speaking over
    it, and whether they mean to interrupt is not known yet."""

    turn_id: int


@dataclass(frozen=True, slots=True)
class ResumePlayback:
    """Play on from where it paused: what was said over the answer was not meant for it
    (a "mm-hmm", a cough, its own voice heard back)."""

    turn_id: int


@dataclass(frozen=True, slots=True)
class EndTurn:
    """Stop the turn's work (generation, synthesis) and wait until it has stopped.

    ``reason`` is what the turn's ``Interrupt`` frame says; empty: it ends silently."""

    turn_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class KeepHeard:
    """The history keeps only ``text`` of the turn's answer, what the person heard;
    nothing heard: the answer is dropped and the question stays."""

    text: str
    heard_s: float | None
    """Seconds of the answer's audio that were played (None: not known here)."""


@dataclass(frozen=True, slots=True)
class Forget:
    """The turn never happened: its question and answer leave the history."""


@dataclass(frozen=True, slots=True)
class EditHistory:
    """Change the history of ``turn_id`` (after its work has stopped: see ``EndTurn``)."""

    turn_id: int
    edit: KeepHeard | Forget


@dataclass(frozen=True, slots=True)
class Report:
    """The turn's metrics row (one per answered turn), ready to be written or sent."""

    turn_id: int
    row: dict[str, object]


Decision = Show | StopPlayback | PausePlayback | ResumePlayback | EndTurn | EditHistory | Report


# ---------------------------------------------------------------------------- turns


@dataclass
class Turn:
    """What is known of one turn."""

    turn_id: int
    phase: Phase
    source: str = "speech"
    speech_end_s: float = 0.0
    """``perf_counter()`` time the person stopped speaking (or typed)."""
    held: list[Frame] = field(default_factory=list)
    """Frames of a held turn, in order, released when it is confirmed."""
    answer: list[str] = field(default_factory=list)
    """The answer's pieces as generated."""
    clause_text: dict[int, str] = field(default_factory=dict)
    clause_end: dict[int, float] = field(default_factory=dict)
    """Clause index -> playback position (seconds of the output stream) where it ends."""
    audio_start: float | None = None
    """Playback position where the turn's first audio starts."""
    audio_end: float = 0.0
    """Playback position after the turn's last audio queued so far."""
    first_play_s: float | None = None
    """``perf_counter()`` time the turn's first sample reaches the listener."""
    released_s: float | None = None
    """``perf_counter()`` time the answer was let out (a held turn: when it was confirmed)."""
    metrics: TurnMetrics | None = None
    reported: bool = False
    interrupt_shown: bool = False
    """Its interruption was shown when decided (the words that stopped it come next), not
    when the pipeline's ``Interrupt`` comes out."""

    @property
    def ended(self) -> bool:
        return self.phase in (Phase.INTERRUPTED, Phase.RETRACTED, Phase.FAILED)

    def heard(self, played: float) -> KeepHeard:
        """What the person heard once playback reached ``played``: the clauses whose
        audio has been played completely."""
        done = [i for i, end in sorted(self.clause_end.items()) if end <= played]
        text = " ".join(self.clause_text[i] for i in done if i in self.clause_text).strip()
        if self.audio_start is None:
            return KeepHeard(text, 0.0)
        heard_s = min(max(0.0, played - self.audio_start), self.audio_end - self.audio_start)
        return KeepHeard(text, heard_s)

    def row(self, *, interrupted: bool) -> dict[str, object]:
        """The turn's metrics as one flat row (JSON lines, the server's metrics event)."""
        m = self.metrics
        row: dict[str, object] = m.as_dict() if m is not None else {"turn_id": self.turn_id}
        row["interrupted"] = interrupted
        end = self.speech_end_s

        def since_end(t: float | None) -> float | None:
            return None if t is None else round((t - end) * 1000, 1)

        row["first_audio_device_ms"] = since_end(self.first_play_s)
        # when the answer was let out: at once, or when the silence confirmed a turn begun
        # at a pause
        row["released_ms"] = since_end(self.released_s)
        # the end of speech on this machine's monotonic clock (perf_counter), so that a
        # benchmark in another process can set it against the sound it played
        row["speech_end_at_s"] = round(end, 4)
        return row


@dataclass
class PausedAnswer:
    """An answer paused by speech over it, until the speech's words are known."""

    turn: Turn
    speech: int
    """The turn id of the speech (the listener gives a continued utterance a newer one)."""
    started: TurnStarted | None = None
    """The speech's ``TurnStarted``, held until its words decide."""
