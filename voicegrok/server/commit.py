"""Which ``response.create`` a client's ``input_audio_buffer.commit`` answers while turn
detection is on (sans-I/O, fed the session's frames).

OpenAI's API lets a client commit the audio it has sent even with server VAD on, and the
common "append, commit, ``response.create``" flow relies on it: the speech in progress
ends at the commit (its turn may already have started at a pause, held until the silence
confirms it), its turn is answered, and the ``response.create`` that follows is that
answer, not a second one. Whether speech is in progress, and its turn's id, come from the
listener itself (frames on two lanes arrive in no fixed order).
"""

from __future__ import annotations

from ..frames import Frame, Interrupt, TurnFailed, TurnMetrics

__all__ = ["CommitTracker"]


class CommitTracker:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """A new listener: nothing committed."""
        self.turn: int | None = None
        """The turn a commit ended, until its answer is over."""
        self.create_taken = False
        """A ``response.create`` was taken as that turn's answer."""

    def commit(self, turn_id: int) -> None:
        """The client committed the speech of turn ``turn_id`` (the end-of-turn silence
        follows)."""
        self.turn, self.create_taken = turn_id, False

    def takes_create(self) -> int | None:
        """A ``response.create`` came: the committed turn whose answer it stands for
        (its own options are not applied: that turn is under way), or None."""
        if self.turn is None or self.create_taken:
            return None
        self.create_taken = True
        return self.turn

    def follow(self, frame: Frame) -> None:
        """A frame of the session's assistant: the committed turn's answer is over."""
        if frame.turn_id == self.turn and isinstance(frame, (TurnMetrics, TurnFailed, Interrupt)):
            self.reset()
