"""Frames into Realtime API server events, sans-I/O: the server half of a session's core.

A :class:`FrameEncoder` is given the frames that a session's turn controller lets out
(``Show``) and the ends of turns it decides; it returns the server events to send, in
order, and keeps the ids of the responses and items it announced. No socket and no event
loop here: ``encode(frame)`` in, events out. Its mirror on the client side is
:class:`voicegrok.protocol.decoder.EventDecoder`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..audio import StreamResampler
from ..frames import (
    Frame,
    Interrupt,
    LLMToken,
    SpeechStarted,
    ToolCallRequested,
    TTSAudio,
    TurnFailed,
    TurnMetrics,
    TurnRetracted,
    TurnStarted,
    UserText,
)
from ..protocol import realtime as rt

__all__ = ["FrameEncoder", "Reply"]

ServerEvent = rt._ServerEvent


@dataclass
class Reply:
    """A response in progress."""

    turn_id: int
    response_id: str = field(default_factory=lambda: rt.new_id("resp"))
    item_id: str = field(default_factory=lambda: rt.new_id("item"))
    text: list[str] = field(default_factory=list)
    audio_ms: float = 0.0
    """Milliseconds of answer audio sent so far."""
    user_item: str | None = None
    """The spoken question's item (None for typed ones)."""
    started: bool = False
    """``response.output_item.added`` was sent."""
    modalities: tuple[rt.Modality, ...] = ("audio",)
    """What this response gives: ``audio`` (with its transcript) or ``text``."""
    call: rt.Item | None = None
    """The function call the model made instead of (or after) words."""


class FrameEncoder:
    """One session's frames as server events. The session sets ``modalities``,
    ``output_rate_hz`` and ``listen_base_ms`` as its client configures them."""

    def __init__(self, modalities: list[rt.Modality], output_rate_hz: int) -> None:
        self.modalities = modalities
        self.output_rate_hz = output_rate_hz
        self.heard_ms = 0
        """How much microphone audio the session has been given (ms)."""
        self.listen_base_ms = 0
        """Where the current listener's stream starts in the session's audio (a change of
        turn detection makes a new listener, whose positions start again at 0)."""
        self.reply: Reply | None = None
        """The response in progress."""
        self.replies: dict[int, Reply] = {}
        """Recent responses by turn id (``conversation.item.truncate`` names their items)."""
        self._speech_item: str | None = None
        self._committed_item: str | None = None
        """The speech item the client committed itself (not told again at its turn)."""
        self._last_partial = ""
        self._resampler = StreamResampler(output_rate_hz, np.int16)
        self.calls: set[str] = set()
        """The model's function calls waiting for the client's output (call ids)."""

    # ------------------------------------------------------------------ replies

    def begin(
        self,
        turn_id: int,
        user_item: str | None = None,
        modalities: tuple[rt.Modality, ...] | None = None,
    ) -> list[ServerEvent]:
        """A response starts for ``turn_id``, in ``modalities`` (the session's by default)."""
        reply = Reply(turn_id, user_item=user_item, modalities=modalities or tuple(self.modalities))
        self.reply = reply
        self.replies[turn_id] = reply
        while len(self.replies) > 16:
            del self.replies[next(iter(self.replies))]
        self._resampler = StreamResampler(self.output_rate_hz, np.int16)  # a fresh stream
        response = rt.Response(
            id=reply.response_id, status="in_progress", output_modalities=list(reply.modalities)
        )
        return [rt.ResponseCreated(response=response)]

    def reply_of_item(self, item_id: str) -> Reply | None:
        return next((r for r in self.replies.values() if r.item_id == item_id), None)

    def ended(self, turn_id: int, reason: str) -> list[ServerEvent]:
        """The turn's work was stopped: its response, if still going, is cancelled."""
        reply = self.reply
        if reply is None or reply.turn_id != turn_id:
            return []
        return self.finish(reply, "cancelled", reason=reason)

    def finish(
        self,
        reply: Reply,
        status: str,
        *,
        reason: str | None = None,
        metrics: TurnMetrics | None = None,
    ) -> list[ServerEvent]:
        if self.reply is not reply:
            return []
        self.reply = None
        out: list[ServerEvent] = []
        r, i = reply.response_id, reply.item_id
        text = "".join(reply.text)
        if reply.started and status == "completed":
            if "audio" in reply.modalities:
                tail = self._resampler.flush_pcm16()
                if tail:
                    out.append(rt.AudioDelta(response_id=r, item_id=i, delta=tail))
                out.append(rt.AudioDone(response_id=r, item_id=i))
                out.append(rt.AudioTranscriptDone(response_id=r, item_id=i, transcript=text))
            else:
                out.append(rt.TextDone(response_id=r, item_id=i, text=text))
            out.append(rt.OutputItemDone(response_id=r, item=self._item(reply, "completed")))
        item_status = "completed" if status == "completed" else "incomplete"
        n_tokens = metrics.n_tokens if metrics else len(reply.text)
        output = [self._item(reply, item_status)] if reply.started else []
        if reply.call is not None:
            output.append(reply.call)
        response = rt.Response(
            id=r,
            status=status,  # type: ignore[arg-type]
            status_details=(
                None if status == "completed" else rt.StatusDetails(type=status, reason=reason)
            ),
            output=output,
            output_modalities=list(reply.modalities),
            usage=rt.Usage(output_tokens=n_tokens, total_tokens=n_tokens),
        )
        out.append(rt.ResponseDone(response=response))
        return out

    def metrics(self, turn_id: int, row: dict[str, object]) -> list[ServerEvent]:
        """A completed turn's metrics row as voicegrok's own event."""
        reply = self.replies.get(turn_id)
        if reply is None or row.get("interrupted"):
            return []
        return [rt.Metrics(response_id=reply.response_id, metrics={**row, "at": time.time()})]

    def _item(self, reply: Reply, status: str) -> rt.Item:
        text = "".join(reply.text)
        part = (
            rt.ContentPart(type="output_audio", transcript=text)
            if "audio" in reply.modalities
            else rt.ContentPart(type="output_text", text=text)
        )
        return rt.Item(
            id=reply.item_id,
            object="realtime.item",
            role="assistant",
            status=status,
            content=[part],
        )

    def _started(self, reply: Reply) -> list[ServerEvent]:
        if reply.started:
            return []
        reply.started = True
        item = self._item(reply, "in_progress")
        return [rt.OutputItemAdded(response_id=reply.response_id, item=item)]

    # ------------------------------------------------------------------ frames

    def encode(self, frame: Frame) -> list[ServerEvent]:
        """The events that tell the client about ``frame``."""
        if isinstance(frame, SpeechStarted):
            self._speech_item = rt.new_id("item")
            self._last_partial = ""
            start_ms = self.listen_base_ms + round(frame.audio_start_s * 1000)
            return [rt.SpeechStarted(audio_start_ms=start_ms, item_id=self._speech_item)]
        if isinstance(frame, TurnRetracted):
            return self._retracted(frame)
        if isinstance(frame, TurnStarted):
            return self._turn_started(frame) if frame.source == "speech" else []
        if isinstance(frame, UserText):
            return self._transcript(frame) if frame.source == "speech" else []
        reply = self.reply
        if reply is None or frame.turn_id != reply.turn_id:
            return []  # a late frame of a finished or cancelled response
        if isinstance(frame, LLMToken):
            reply.text.append(frame.text)
            r, i = reply.response_id, reply.item_id
            delta: ServerEvent = (
                rt.AudioTranscriptDelta(response_id=r, item_id=i, delta=frame.text)
                if "audio" in reply.modalities
                else rt.TextDelta(response_id=r, item_id=i, delta=frame.text)
            )
            return [*self._started(reply), delta]
        if isinstance(frame, TTSAudio):
            return self._audio(reply, frame)
        if isinstance(frame, ToolCallRequested):
            return self._call(reply, frame)
        if isinstance(frame, TurnMetrics):
            return self.finish(reply, "completed", metrics=frame)
        if isinstance(frame, TurnFailed):
            error = rt.ErrorInfo(type="server_error", code="response_failed", message=frame.message)
            return [rt.ErrorEvent(error=error), *self.finish(reply, "failed", reason=frame.stage)]
        if isinstance(frame, Interrupt):
            return self.finish(reply, "cancelled", reason="turn_detected")
        return []

    def _call(self, reply: Reply, frame: ToolCallRequested) -> list[ServerEvent]:
        """The model called one of the client's functions: the call is an output item of
        its own, after the message if words came first."""
        index = 1 if reply.started else 0
        item = rt.Item(
            id=rt.new_id("item"),
            type="function_call",
            object="realtime.item",
            role=None,
            status="in_progress",
            call_id=frame.call_id,
            name=frame.name,
            arguments="",
        )
        done = item.model_copy(update={"status": "completed", "arguments": frame.arguments})
        reply.call = done
        self.calls.add(frame.call_id)
        while len(self.calls) > 64:  # never answered: forgotten
            self.calls.discard(next(iter(self.calls)))
        r, i, call_id = reply.response_id, str(item.id), frame.call_id
        return [
            rt.OutputItemAdded(response_id=r, output_index=index, item=item),
            rt.FunctionCallArgumentsDelta(
                response_id=r, item_id=i, output_index=index, call_id=call_id, delta=frame.arguments
            ),
            rt.FunctionCallArgumentsDone(
                response_id=r,
                item_id=i,
                output_index=index,
                call_id=call_id,
                name=frame.name,
                arguments=frame.arguments,
            ),
            rt.OutputItemDone(response_id=reply.response_id, output_index=index, item=done),
        ]

    def _retracted(self, frame: TurnRetracted) -> list[ServerEvent]:
        """The answer started at a pause is withdrawn with its question: the person went on
        speaking, and their whole utterance will be one new item."""
        out: list[ServerEvent] = []
        reply = self.replies.get(frame.turn_id)
        if reply is not None:
            out += self.ended(frame.turn_id, "turn_detected")
            if reply.user_item is not None:
                out.append(rt.ItemDeleted(item_id=reply.user_item))
            if reply.started:
                out.append(rt.ItemDeleted(item_id=reply.item_id))
        self._speech_item = rt.new_id("item")
        self._last_partial = ""
        now_ms = self.heard_ms
        out.append(rt.SpeechStarted(audio_start_ms=now_ms, item_id=self._speech_item))
        return out

    def committed(self) -> list[ServerEvent]:
        """The client committed the speech in progress: its item is committed now (its
        turn starts once the listener has taken in the end of it)."""
        if self._speech_item is None:
            self._speech_item = rt.new_id("item")
        self._committed_item = self._speech_item
        return [rt.Committed(item_id=self._speech_item)]

    def _turn_started(self, frame: TurnStarted) -> list[ServerEvent]:
        out: list[ServerEvent] = []
        # its response, begun already for a client's commit (its response.create)
        ready = self.reply if self.reply and self.reply.turn_id == frame.turn_id else None
        if self.reply is not None and ready is None:  # a typed answer, spoken over
            out += self.finish(self.reply, "cancelled", reason="turn_detected")
        item_id = self._speech_item or rt.new_id("item")
        if frame.audio_end_s is not None:  # the last voiced sample, as OpenAI's
            end_ms = self.listen_base_ms + round(frame.audio_end_s * 1000)
        else:
            end_ms = self.heard_ms
        out.append(rt.SpeechStopped(audio_end_ms=end_ms, item_id=item_id))
        if item_id != self._committed_item:
            out.append(rt.Committed(item_id=item_id))
        if ready is not None:
            ready.user_item = item_id
        else:
            out += self.begin(frame.turn_id, user_item=item_id)
        return out

    def _transcript(self, frame: UserText) -> list[ServerEvent]:
        item_id = self._speech_item or rt.new_id("item")
        reply = self.reply
        if frame.final and reply is not None and reply.turn_id == frame.turn_id:
            item_id = reply.user_item or item_id
        if not frame.final:
            if not frame.text.startswith(self._last_partial):
                return []
            delta = frame.text[len(self._last_partial) :]
            self._last_partial = frame.text
            return [rt.TranscriptionDelta(item_id=item_id, delta=delta)] if delta else []
        self._speech_item = None
        return [rt.TranscriptionCompleted(item_id=item_id, transcript=frame.text)]

    def _audio(self, reply: Reply, frame: TTSAudio) -> list[ServerEvent]:
        if "audio" not in reply.modalities:
            return []
        out = self._started(reply)
        if self._resampler.to_hz != self.output_rate_hz:  # the client switched mid-answer
            self._resampler = StreamResampler(self.output_rate_hz, np.int16)
        pcm = self._resampler.pcm16(frame.pcm, frame.sample_rate_hz)
        reply.audio_ms += 1000 * frame.duration_s
        if pcm:
            out.append(
                rt.AudioDelta(response_id=reply.response_id, item_id=reply.item_id, delta=pcm)
            )
        return out
