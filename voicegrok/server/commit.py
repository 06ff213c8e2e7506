"""What a client's ``input_audio_buffer.commit`` applies to while turn detection is on,
and which ``response.create`` its answer stands for (sans-I/O, fed the session's frames).

OpenAI's API lets a client commit the audio it has sent even with server VAD on, and the
common "append, commit, ``response.create``" flow relies on it: the speech in progress (or
a turn held at a pause) ends at the commit, its turn is answered, and the
``response.create`` that follows is that answer, not a second one.
"""

from __future__ import annotations

from ..frames import (
    Frame,
    Interrupt,
    SpeechStarted,
    TurnConfirmed,
    TurnFailed,
    TurnMetrics,
    TurnRetracted,
    TurnStarted,
)
from ..protocol import realtime as rt

__all__ = ["CommitTracker"]


class CommitTracker:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """A new listener: it has heard nothing yet."""
        self.speech_open = False
        """Speech has started and its turn has not."""
        self.held_turn: int | None = None
        """A turn started at a pause, held until the silence confirms it."""
        self.pending = False
        """A commit is ending the speech: its turn has not started yet."""
        self.create_waiting = False
        """... and the client's ``response.create`` came meanwhile (taken as its answer)."""
        self.committed_turn: int | None = None
        """The turn a commit made, until its answer ends."""

    def can_commit(self) -> bool:
        return not self.pending and (self.speech_open or self.held_turn is not None)

    def commit(self) -> None:
        """The client commits (:meth:`can_commit`); the end-of-turn silence follows."""
        if self.speech_open:
            self.pending = True
        else:  # the held turn: the silence confirms it
            self.committed_turn = self.held_turn

    def takes_create(self) -> bool:
        """A ``response.create`` came: True if it stands for a committed turn's answer
        (its own options are not applied: that turn is under way)."""
        if self.pending:
            self.create_waiting = True
            return True
        if self.committed_turn is not None:
            self.committed_turn = None
            return True
        return False

    def follow(self, frame: Frame) -> list[rt._ServerEvent]:
        """Track a frame of the session's assistant; an error if a committed utterance
        whose answer was asked for had no words."""
        if isinstance(frame, (SpeechStarted, TurnRetracted)):
            self.speech_open, self.held_turn = True, None
        elif isinstance(frame, TurnStarted) and frame.source == "speech":
            self.speech_open = False
            self.held_turn = frame.turn_id if frame.tentative else None
            if self.pending:
                self.pending = False
                if self.create_waiting:  # the response asked for is this turn's answer
                    self.create_waiting = False
                else:
                    self.committed_turn = frame.turn_id
        elif isinstance(frame, TurnConfirmed):
            self.held_turn = None
        elif isinstance(frame, TurnFailed) and self.pending:
            self.pending = False
            if self.create_waiting:
                self.create_waiting = False
                error = rt.ProtocolError("no_words", "no words were heard in the committed audio")
                return [rt.ErrorEvent.of(error)]
        if isinstance(frame, (TurnMetrics, TurnFailed, Interrupt)):
            if frame.turn_id == self.committed_turn:
                self.committed_turn = None  # its answer is over
        return []
