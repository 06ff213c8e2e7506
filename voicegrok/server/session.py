"""One Realtime API session: client events in, server events out (no sockets here).

The websocket adapter (:mod:`voicegrok.server.app`) parses each message, hands the event
to :meth:`RealtimeSession.handle` and sends whatever the session passes to ``send``. The
session runs its own :class:`~voicegrok.assistant.Assistant` (its own pipeline and
conversation) on the process's shared engines, so every connection is the live loop of
``voicegrok talk`` with the client as microphone and speaker.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

import numpy as np
import soxr

from ..assistant import Assistant, Engines
from ..config import Settings
from ..conversation import Conversation
from ..endpointing import EndpointConfig
from ..frames import TTSAudio
from ..protocol import realtime as rt
from ..turns import Decision, EditHistory, EndTurn, Report, Show, TurnController
from .encoder import FrameEncoder

__all__ = ["Limits", "RealtimeSession"]

Send = Callable[[rt._ServerEvent], Awaitable[None]]


@dataclass(frozen=True)
class Limits:
    """What one connection may do (the server refuses the rest with an ``error`` event)."""

    max_message_bytes: int = 1 << 20
    """Largest websocket message (1 MiB: 21 s of 24 kHz audio in base64)."""
    max_buffer_s: float = 60.0
    """Most audio one turn may hold (committed by hand, turn detection off)."""
    max_text_chars: int = 8000
    """Longest typed message."""
    messages_per_s: float = 100.0
    """Sustained requests per second (bursts of twice as many pass)."""
    idle_timeout_s: float = 300.0
    """A session that sends nothing for this long is closed."""
    max_sessions: int = 8
    """Concurrent sessions; more connections are refused politely."""
    max_outbox_bytes: int = 16 << 20
    """Unsent server events a client may let pile up (not reading) before it is dropped."""


class RealtimeSession:
    """Serve one client. Call :meth:`start`, then :meth:`handle` for each message's event
    (or :meth:`refuse` for a message that could not be parsed), and :meth:`close`."""

    def __init__(
        self,
        engines: Engines,
        settings: Settings,
        send: Send,
        *,
        limits: Limits | None = None,
        model_name: str = "voicegrok",
        voice_name: str = "default",
    ) -> None:
        self.engines = engines
        self.settings = settings
        self.limits = limits or Limits()
        self._send = send
        self._voice_name = voice_name
        self.session_id = rt.new_id("sess")
        self._model_name = model_name
        self.conversation = Conversation(settings.system_prompt)
        self.input_rate_hz = 24000
        self.output_rate_hz = 24000
        self.turn_detection: rt.TurnDetection | None = (
            rt.TurnDetection() if engines.vad is not None else None
        )
        self.modalities: list[rt.Modality] = ["audio"] if engines.tts is not None else ["text"]
        self._assistant: Assistant | None = None
        self._pump: asyncio.Task[None] | None = None
        self.turns = self._controller()
        """Owns each turn's life; this session carries out its decisions."""
        self.encoder = FrameEncoder(self.modalities, self.output_rate_hz)
        """Frames -> server events (sans-I/O)."""
        self._sent_audio_s = 0.0
        """Seconds of answer audio sent over this session (the controller's playback
        positions: the client plays it, and says what it played with a truncate)."""
        self._buffer: list[np.ndarray] = []
        self._buffered = 0
        self._pending_text: list[str] = []
        self._heard_samples = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self._build()
        await self._send(rt.SessionCreated(session=self.describe()))

    async def close(self) -> None:
        """Stop everything this session started (its answer stops at the next token)."""
        await self._teardown()

    async def _build(self) -> None:
        engines = self.engines
        if self.turn_detection is None or engines.vad is None:
            engines = replace(engines, vad=None)
        else:  # the model is shared, the stream state is this session's
            engines = replace(engines, vad=engines.vad.fork())
        if "audio" not in self.modalities:
            engines = replace(engines, tts=None)
        td = self.turn_detection
        endpointing = EndpointConfig()
        if td is not None:
            endpointing = EndpointConfig(
                threshold=td.threshold if td.threshold is not None else endpointing.threshold,
                end_silence_ms=td.silence_duration_ms or endpointing.end_silence_ms,
                preroll_ms=(
                    td.prefix_padding_ms
                    if td.prefix_padding_ms is not None
                    else endpointing.preroll_ms
                ),
            )
        self.encoder.listen_base_ms = round(1000 * self._heard_samples / self.input_rate_hz)
        self._configure_encoder()
        self.turns.interrupt_on_speech = td is not None and td.interrupt_response
        self._assistant = Assistant(
            engines, self.settings, self.conversation, endpointing, realtime=True
        )
        await self._assistant.__aenter__()
        self._pump = asyncio.create_task(self._run(self._assistant))

    def _configure_encoder(self) -> None:
        self.encoder.modalities = self.modalities
        self.encoder.output_rate_hz = self.output_rate_hz

    def _controller(self) -> TurnController:
        td = self.turn_detection
        return TurnController(
            tracks_playback=False,
            interrupt_on_speech=td is not None and td.interrupt_response,
            barge_in_reason="turn_detected",
        )

    async def _teardown(self) -> None:
        reply = self.encoder.reply
        if reply is not None:
            await self._carry_out(self.turns.interrupt("client_cancelled"))
            await self._send_all(self.encoder.finish(reply, "cancelled", reason="client_cancelled"))
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None
        if self._assistant is not None:
            await self._assistant.__aexit__(None, None, None)
            self._assistant = None

    def describe(self) -> rt.Session:
        fmt_in = rt.AudioFormat(rate=self.input_rate_hz)
        fmt_out = rt.AudioFormat(rate=self.output_rate_hz)
        return rt.Session(
            id=self.session_id,
            object="realtime.session",
            model=self._model_name,
            instructions=self.conversation.system_prompt,
            output_modalities=self.modalities,
            audio=rt.AudioConfig(
                input=rt.AudioInput(format=fmt_in, turn_detection=self.turn_detection),
                output=rt.AudioOutput(format=fmt_out, voice=self._voice_name),
            ),
            max_output_tokens=self.settings.max_tokens,
        )

    # ------------------------------------------------------------------ client events

    async def refuse(self, error: rt.ProtocolError) -> None:
        await self._send(rt.ErrorEvent.of(error))

    async def handle(self, event: rt.ClientEvent) -> None:
        """Serve one client event; a refused request becomes an ``error`` event."""
        try:
            await self._dispatch(event)
        except rt.ProtocolError as e:
            if e.event_id is None:
                e.event_id = event.event_id
            await self.refuse(e)

    async def _dispatch(self, event: rt.ClientEvent) -> None:
        if isinstance(event, rt.InputAudioBufferAppend):
            await self._append(event.audio)
        elif isinstance(event, rt.SessionUpdate):
            await self._update(event.session)
        elif isinstance(event, rt.ConversationItemCreate):
            self._add_item(event.item)
        elif isinstance(event, rt.ResponseCreate):
            await self._respond()
        elif isinstance(event, rt.ResponseCancel):
            await self._cancel(event.response_id)
        elif isinstance(event, rt.InputAudioBufferCommit):
            await self._commit()
        elif isinstance(event, rt.InputAudioBufferClear):
            self._buffer, self._buffered = [], 0
            await self._send(rt.Cleared())
        elif isinstance(event, rt.ConversationItemTruncate):
            await self._truncate(event)

    async def _update(self, patch: rt.Session) -> None:
        audio = patch.audio
        audio_in = audio.input if audio is not None else None
        new_td = "turn_detection" in audio_in.model_fields_set if audio_in else False
        td = audio_in.turn_detection if audio_in is not None else None
        # Check everything first: a refused update changes nothing.
        if patch.output_modalities is not None:
            if "audio" in patch.output_modalities and self.engines.tts is None:
                raise rt.ProtocolError(
                    "unsupported_modality",
                    "this server has no voice loaded: use output_modalities ['text']",
                    param="session.output_modalities",
                )
        if new_td and td is not None and self.engines.vad is None:
            raise rt.ProtocolError(
                "unsupported_turn_detection",
                "this server runs without a VAD: commit the audio buffer yourself",
                param="session.audio.input.turn_detection",
            )
        if new_td and td is not None and not td.create_response:
            raise rt.ProtocolError(
                "unsupported_turn_detection",
                "create_response false is not supported: every turn is answered",
                param="session.audio.input.turn_detection.create_response",
            )
        rebuild = False
        if patch.instructions is not None:
            self.conversation.system_prompt = patch.instructions
        if patch.output_modalities is not None:
            wanted = list(patch.output_modalities)
            rebuild |= wanted != self.modalities
            self.modalities = wanted
        if audio_in is not None and audio_in.format is not None:
            self.input_rate_hz = audio_in.format.rate
        if new_td:
            rebuild |= td != self.turn_detection
            self.turn_detection = td
        if audio is not None and audio.output is not None and audio.output.format is not None:
            self.output_rate_hz = audio.output.format.rate
        if rebuild:
            await self._teardown()
            await self._build()
        self._configure_encoder()
        await self._send(rt.SessionUpdated(session=self.describe()))

    async def _append(self, pcm: bytes) -> None:
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / np.float32(32768)
        if not len(samples):
            return
        if self.turn_detection is not None:
            assert self._assistant is not None
            await self._assistant.hear(samples, self.input_rate_hz)
            self._heard_samples += len(samples)
            self.encoder.heard_ms = round(1000 * self._heard_samples / self.input_rate_hz)
            return
        limit = int(self.limits.max_buffer_s * self.input_rate_hz)
        if self._buffered + len(samples) > limit:
            raise rt.ProtocolError(
                "input_audio_buffer_full",
                f"the input audio buffer holds at most {self.limits.max_buffer_s:g} s: "
                "commit or clear it",
            )
        self._buffer.append(samples)
        self._buffered += len(samples)

    async def _commit(self) -> None:
        if self.turn_detection is not None:
            raise rt.ProtocolError(
                "turn_detection_enabled",
                "with turn detection on the server commits the audio itself; send "
                "session.update with audio.input.turn_detection null to commit by hand",
            )
        if self._buffered < self.input_rate_hz // 10:
            raise rt.ProtocolError(
                "input_audio_buffer_commit_empty",
                "the input audio buffer holds less than 100 ms of audio",
            )
        audio = np.concatenate(self._buffer)
        self._buffer, self._buffered = [], 0
        item_id = rt.new_id("item")
        await self._send(rt.Committed(item_id=item_id))
        # Transcribe now, answer on response.create (the API's order of events).
        text = await self._transcribe(audio)
        self._pending_text.append(text)
        await self._send(
            rt.TranscriptionCompleted(
                item_id=item_id,
                transcript=text,
                usage=rt.TranscriptionUsage(seconds=len(audio) / self.input_rate_hz),
            )
        )

    async def _transcribe(self, audio: np.ndarray) -> str:
        stt = self.engines.stt
        if stt is None:
            raise rt.ProtocolError("unsupported", "this server has no speech-to-text model")
        if self.input_rate_hz != stt.sample_rate_hz:
            audio = soxr.resample(audio, self.input_rate_hz, stt.sample_rate_hz)
        text = await self.engines.threads["stt"].call(stt.transcribe, audio)
        return text.strip()

    def _add_item(self, item: rt.Item) -> None:
        if item.role != "user":
            raise rt.ProtocolError(
                "unsupported_item",
                "only user messages can be added (the assistant's come from its answers)",
                param="item.role",
            )
        text = item.text()
        if not text:
            raise rt.ProtocolError("invalid_value", "the message has no text", param="item")
        if len(text) > self.limits.max_text_chars:
            raise rt.ProtocolError(
                "text_too_long",
                f"a message holds at most {self.limits.max_text_chars} characters",
                param="item.content",
            )
        self._pending_text.append(text)

    async def _respond(self) -> None:
        if self.encoder.reply is not None:
            raise rt.ProtocolError(
                "conversation_already_has_active_response",
                f"response {self.encoder.reply.response_id} is still in progress: cancel it first",
            )
        text = " ".join(t for t in self._pending_text if t).strip()
        self._pending_text = []
        if not text:
            raise rt.ProtocolError(
                "no_input", "nothing to answer: add a user message or commit audio first"
            )
        assert self._assistant is not None
        turn_id = await self._assistant.push_text(text)
        await self._send_all(self.encoder.begin(turn_id))

    async def _cancel(self, response_id: str | None) -> None:
        reply = self.encoder.reply
        if reply is None or (response_id is not None and response_id != reply.response_id):
            raise rt.ProtocolError(
                "response_cancel_not_active", "there is no response in progress to cancel"
            )
        await self._carry_out(self.turns.interrupt("client_cancelled"))

    async def _truncate(self, event: rt.ConversationItemTruncate) -> None:
        reply = self.encoder.reply_of_item(event.item_id)
        latest = max(self.encoder.replies, default=None)
        if reply is None or reply.turn_id != latest:
            raise rt.ProtocolError(
                "item_not_found",
                f"{event.item_id} is not the latest answer (only it can be truncated)",
                param="item_id",
            )
        if event.audio_end_ms > reply.audio_ms + 1:
            raise rt.ProtocolError(
                "invalid_value",
                f"audio_end_ms {event.audio_end_ms} is past the answer's audio "
                f"({reply.audio_ms:.0f} ms)",
                param="audio_end_ms",
            )
        await self._carry_out(self.turns.truncate(reply.turn_id, event.audio_end_ms / 1000))
        await self._send(
            rt.ItemTruncated(
                item_id=event.item_id,
                content_index=event.content_index,
                audio_end_ms=event.audio_end_ms,
            )
        )

    # ------------------------------------------------------------------ frames

    async def _run(self, assistant: Assistant) -> None:
        async for frame in assistant.frames():
            await self._carry_out(self.turns.feed(frame))

    async def _carry_out(self, decisions: list[Decision]) -> None:
        """Do what the turn controller decided: events to the client, the turn's work
        stopped, the history edited."""
        for d in decisions:
            if isinstance(d, Show):
                if isinstance(d.frame, TTSAudio):
                    self._queued(d.frame)
                await self._send_all(self.encoder.encode(d.frame))
            elif isinstance(d, EndTurn):
                await self._send_all(self.encoder.ended(d.turn_id, d.reason or "turn_detected"))
                if self._assistant is not None:
                    await self._assistant.end_turn(d.turn_id, d.reason)
            elif isinstance(d, EditHistory):
                if self._assistant is not None:
                    await self._assistant.edit_history(d.turn_id, d.edit)
            elif isinstance(d, Report):
                await self._send_all(self.encoder.metrics(d.turn_id, d.row))

    def _queued(self, frame: TTSAudio) -> None:
        start = self._sent_audio_s
        self._sent_audio_s += frame.duration_s
        self.turns.queued(
            frame.turn_id,
            frame.clause_index,
            start,
            self._sent_audio_s,
            first_play_s=time.perf_counter(),
        )

    async def _send_all(self, events: list[rt._ServerEvent]) -> None:
        for event in events:
            await self._send(event)
