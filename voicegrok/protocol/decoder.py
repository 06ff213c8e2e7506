"""Server events back into frames: the client side of the Realtime API, sans-I/O.

This is the mirror of the server's encoder (:mod:`voicegrok.server.encoder`): every event
that the server makes out of a frame is turned here into that frame again, so the live
loop and its turn controller run on a remote assistant as on a local one. One method per
event type, found in a table; events with no frame counterpart give nothing.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

from ..frames import (
    Frame,
    Interrupt,
    LLMToken,
    SpeechStarted,
    TTSAudio,
    TurnFailed,
    TurnMetrics,
    TurnRetracted,
    TurnStarted,
    UserText,
)
from . import realtime as rt

__all__ = ["EventDecoder"]

log = logging.getLogger(__name__)


class EventDecoder:
    """Turns one session's server events into frames, with turn ids of its own."""

    def __init__(self, output_rate_hz: int) -> None:
        self.output_rate_hz = output_rate_hz
        self._ids = itertools.count(1)
        self.turn = 0
        """The turn of the response in progress (or the latest one)."""
        self.response_id: str | None = None
        """The response in progress."""
        self.answer_items: dict[int, str] = {}
        """Turn id -> the item of its answer (what ``conversation.item.truncate`` names)."""
        self.errors: list[str] = []
        self._speech_turn = 0
        self._speech_end_s: float | None = None
        self._typed: str | None = None
        self._user_item: str | None = None
        self._partial = ""
        self._tokens = 0
        self._sent_s = 0.0
        self._sent_at = 0.0
        self._table: dict[type[Any], Callable[[Any, float], list[Frame]]] = {
            rt.SpeechStarted: self._speech_started,
            rt.SpeechStopped: self._speech_stopped,
            rt.Committed: self._committed,
            rt.ItemDeleted: self._deleted,
            rt.ResponseCreated: self._response_created,
            rt.OutputItemAdded: self._item_added,
            rt.TranscriptionDelta: self._transcription_delta,
            rt.TranscriptionCompleted: self._transcription_completed,
            rt.AudioTranscriptDelta: self._text_delta,
            rt.TextDelta: self._text_delta,
            rt.AudioDelta: self._audio_delta,
            rt.ResponseDone: self._response_done,
            rt.Metrics: self._metrics,
            rt.ErrorEvent: self._error,
        }

    # ------------------------------------------------------------------ what we sent

    def sent_audio(self, seconds: float, at_s: float) -> None:
        """``seconds`` more microphone audio went to the server at ``at_s`` (perf_counter)."""
        self._sent_s += seconds
        self._sent_at = at_s

    def typed(self, text: str) -> None:
        """A typed question was sent: the next response answers it."""
        self._typed = text

    def committed_by_hand(self, at_s: float) -> None:
        """Push-to-talk: the speech ended at ``at_s`` (perf_counter)."""
        self._speech_end_s = at_s

    def new_session(self) -> None:
        """A fresh server session: its stream positions start again at 0."""
        self._sent_s = 0.0
        self.response_id = None

    # ------------------------------------------------------------------ events

    def frames_of(self, event: Any, now: float | None = None) -> list[Frame]:
        handler = self._table.get(type(event))
        if handler is None:
            return []
        return handler(event, time.perf_counter() if now is None else now)

    def _speech_started(self, event: rt.SpeechStarted, now: float) -> list[Frame]:
        self._speech_turn = next(self._ids)
        self._partial = ""
        start_s = event.audio_start_ms / 1000
        return [SpeechStarted(turn_id=self._speech_turn, audio_start_s=start_s)]

    def _speech_stopped(self, event: rt.SpeechStopped, now: float) -> list[Frame]:
        # the server reports where in our stream the speech ended: its time here
        behind_s = max(0.0, self._sent_s - event.audio_end_ms / 1000)
        self._speech_end_s = min(now, self._sent_at - behind_s) if self._sent_at else now
        return []

    def _committed(self, event: rt.Committed, now: float) -> list[Frame]:
        self._user_item = event.item_id
        return []

    def _deleted(self, event: rt.ItemDeleted, now: float) -> list[Frame]:
        if event.item_id != self._user_item:
            return []
        # the answer started at a pause is withdrawn: the person is still speaking
        self._user_item = None
        return [TurnRetracted(turn_id=self.turn)]

    def _response_created(self, event: rt.ResponseCreated, now: float) -> list[Frame]:
        self.turn = turn = max(next(self._ids), self._speech_turn)
        self.response_id = event.response.id
        self._tokens = 0
        typed, self._typed = self._typed, None
        end = now if typed is not None or self._speech_end_s is None else self._speech_end_s
        self._speech_end_s = None
        frames: list[Frame] = [
            TurnStarted(turn_id=turn, speech_end_s=end, source="text" if typed else "speech")
        ]
        if typed is not None:
            frames.append(UserText(turn_id=turn, text=typed, source="text"))
        return frames

    def _item_added(self, event: rt.OutputItemAdded, now: float) -> list[Frame]:
        if event.response_id == self.response_id and event.item.id:
            self.answer_items[self.turn] = event.item.id
            while len(self.answer_items) > 16:
                del self.answer_items[next(iter(self.answer_items))]
        return []

    def _transcription_delta(self, event: rt.TranscriptionDelta, now: float) -> list[Frame]:
        self._partial += event.delta
        return [UserText(turn_id=self._speech_turn, text=self._partial, final=False)]

    def _transcription_completed(
        self, event: rt.TranscriptionCompleted, now: float
    ) -> list[Frame]:
        return [UserText(turn_id=self.turn, text=event.transcript)]

    def _text_delta(self, event: rt.AudioTranscriptDelta | rt.TextDelta, now: float) -> list[Frame]:
        if event.response_id != self.response_id:
            return []
        self._tokens += 1
        return [LLMToken(turn_id=self.turn, text=event.delta, index=self._tokens - 1)]

    def _audio_delta(self, event: rt.AudioDelta, now: float) -> list[Frame]:
        if event.response_id != self.response_id:
            return []
        rate = self.output_rate_hz
        return [TTSAudio(turn_id=self.turn, pcm=event.delta, sample_rate_hz=rate, clause_index=0)]

    def _response_done(self, event: rt.ResponseDone, now: float) -> list[Frame]:
        if event.response.id != self.response_id:
            return []
        status = event.response.status
        if status == "completed":
            return []  # the metrics event follows (or, from other servers, nothing)
        self.response_id = None
        if status == "cancelled":
            return [Interrupt(turn_id=self.turn)]
        return [TurnFailed(turn_id=self.turn, message=f"the answer {status}", stage="server")]

    def _metrics(self, event: rt.Metrics, now: float) -> list[Frame]:
        self.response_id = None
        try:
            return [TurnMetrics.from_dict(event.metrics, turn_id=self.turn)]
        except (TypeError, ValueError):
            return []

    def _error(self, event: rt.ErrorEvent, now: float) -> list[Frame]:
        info = event.error
        if info.code != "response_cancel_not_active":  # a cancel that crossed the end
            self.errors.append(info.message)
            log.warning("server error %s: %s", info.code, info.message)
        return []
