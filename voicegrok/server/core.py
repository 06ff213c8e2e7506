"""One Realtime API session as a state machine, sans-I/O: :class:`SessionCore`.

Client events and the assistant's frames go in; server events and commands for the
assistant come out, in the order they must be carried out. No socket, no event loop, no
engine here (the websockets way: the protocol object is the state machine); the async
driver, :class:`~voicegrok.server.session.RealtimeSession`, carries the commands out.

Turns are owned by the session's :class:`~voicegrok.turns.TurnController`; frames become
events through its :class:`~voicegrok.server.encoder.FrameEncoder`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from ..audio import REALTIME_RATE_HZ, FloatAudio, pcm16_to_float, resample
from ..endpointing import EndpointConfig
from ..frames import Frame, TTSAudio, TurnFailed
from ..protocol import realtime as rt
from ..turns import Decision, EditHistory, EndTurn, Report, Show, TurnController
from .commands import (
    Ask,
    Capabilities,
    Command,
    CommitSpeech,
    Hear,
    Limits,
    Rebuild,
    SetInstructions,
    SetTools,
    Transcribe,
    TurnOptions,
)
from .commit import CommitTracker
from .encoder import FrameEncoder
from .items import created_item, function_output, message_text

__all__ = ["Output", "SessionCore"]  # its commands: .commands

ServerEvent = rt._ServerEvent
Output = ServerEvent | Command


class SessionCore:
    """The protocol state of one session. ``receive(event)`` and ``frame(frame)`` return
    what to do, in order; refused requests come back as ``error`` events."""

    def __init__(
        self, capabilities: Capabilities, instructions: str, limits: Limits | None = None
    ) -> None:
        self.can = capabilities
        self.limits = limits or Limits()
        self.session_id = rt.new_id("sess")
        self.on_report: Callable[[dict[str, object]], None] | None = None
        """Told each turn's metrics row (the server's history keeps it)."""
        self.instructions = instructions
        self.input_rate_hz = REALTIME_RATE_HZ
        self.output_rate_hz = REALTIME_RATE_HZ
        self.turn_detection: rt.TurnDetection | None = (
            rt.TurnDetection() if capabilities.listens else None
        )
        self.modalities: list[rt.Modality] = ["audio"] if capabilities.speaks else ["text"]
        self.turns = TurnController(
            tracks_playback=False, interrupt_on_speech=True, barge_in_reason="turn_detected"
        )
        """Owns each turn's life (the client plays the audio, so playback is not tracked:
        an answer counts as heard until the client truncates it)."""
        self.encoder = FrameEncoder(self.modalities, self.output_rate_hz)
        self._sent_audio_s = 0.0
        """Seconds of answer audio sent (the controller's playback positions)."""
        self._buffer: list[FloatAudio] = []
        self._buffered = 0
        self._pending_text: list[str] = []
        self._heard_s = 0.0
        """Seconds of audio given to the listener (each part at the rate it came at)."""
        self._commits = CommitTracker()
        """Turn detection on: what a client's commit applies to."""
        self.tools: list[rt.FunctionTool] = []
        """The client's functions."""
        self.tool_choice: rt.ToolChoice = "auto"
        self.builtin_tools = capabilities.builtin_tools
        self.hears_over_speaker = True
        """Whether the client's microphone hears the person over its speaker (it says so
        with ``session.update``; see :attr:`rt.Session.hears_over_speaker`)."""

    # ------------------------------------------------------------------ session

    def start(self) -> list[Output]:
        """The session opens: its assistant is made, the client is told."""
        return [self._rebuild(), rt.SessionCreated(session=self.describe())]

    @property
    def listen_base_s(self) -> float:
        """Where the current listener's stream starts in the session's audio (seconds)."""
        return self.encoder.listen_base_ms / 1000

    def describe(self) -> rt.Session:
        fmt_in = rt.AudioFormat(rate=self.input_rate_hz)
        fmt_out = rt.AudioFormat(rate=self.output_rate_hz)
        return rt.Session(
            id=self.session_id,
            object="realtime.session",
            model=self.can.model_name,
            instructions=self.instructions,
            output_modalities=self.modalities,
            audio=rt.AudioConfig(
                input=rt.AudioInput(format=fmt_in, turn_detection=self.turn_detection),
                output=rt.AudioOutput(format=fmt_out, voice=self.can.voice_name),
            ),
            max_output_tokens=self.can.max_output_tokens,
            tools=self.tools,
            tool_choice=self.tool_choice,
            builtin_tools=self.builtin_tools,
            hears_over_speaker=self.hears_over_speaker,
        )

    def _rebuild(self) -> Rebuild:
        td = self.turn_detection
        endpointing = EndpointConfig()
        if td is not None:
            endpointing = EndpointConfig(
                threshold=td.threshold if td.threshold is not None else endpointing.threshold,
                end_silence_ms=td.silence_duration_ms or endpointing.end_silence_ms,
                unsure_end_ms=td.silence_duration_ms or endpointing.unsure_end_ms,
                preroll_ms=(
                    td.prefix_padding_ms
                    if td.prefix_padding_ms is not None
                    else endpointing.preroll_ms
                ),
            )
        # a new listener's stream positions start again at 0
        self.encoder.listen_base_ms = round(1000 * self._heard_s)
        # and it has heard nothing: no speech open, no commit under way
        self._commits.reset()
        self.turns.interrupt_on_speech = td is not None and td.interrupt_response
        self._configure()
        return Rebuild(
            listen=td is not None and self.can.listens,
            speak="audio" in self.modalities,
            endpointing=endpointing,
        )

    def _configure(self) -> None:
        self.encoder.modalities = self.modalities
        self.encoder.output_rate_hz = self.output_rate_hz

    def closing(self) -> list[Output]:
        """The session ends: an answer in progress is cancelled."""
        reply = self.encoder.reply
        if reply is None:
            return []
        decisions = self.turns.interrupt("client_cancelled", turn_id=reply.turn_id)
        out = self._decided(decisions)
        out += self.encoder.finish(reply, "cancelled", reason="client_cancelled")
        return out

    # ------------------------------------------------------------------ client events

    def receive_message(self, message: str | bytes) -> list[Output]:
        """Serve one websocket message as it came: one that is no client event this server
        takes (binary, too large, not JSON, an unknown type, an invalid field) becomes an
        ``error`` event, as a refused request does."""
        try:
            if isinstance(message, bytes):
                raise rt.ProtocolError("invalid_json", "binary messages are not supported")
            if len(message) > self.limits.max_message_bytes:
                raise rt.ProtocolError(
                    "message_too_large",
                    f"a message may hold at most {self.limits.max_message_bytes} bytes: "
                    "send audio in smaller pieces",
                )
            event = rt.parse_client_event(message)
        except rt.ProtocolError as e:
            return [rt.ErrorEvent.of(e)]
        return self.receive(event)

    def receive(self, event: rt.ClientEvent) -> list[Output]:
        """Serve one client event; a refused request becomes an ``error`` event."""
        try:
            return self._dispatch(event)
        except rt.ProtocolError as e:
            if e.event_id is None:
                e.event_id = event.event_id
            return [rt.ErrorEvent.of(e)]

    def _dispatch(self, event: rt.ClientEvent) -> list[Output]:
        if isinstance(event, rt.InputAudioBufferAppend):
            return self._append(event.audio)
        if isinstance(event, rt.SessionUpdate):
            return self._update(event.session)
        if isinstance(event, rt.ConversationItemCreate):
            return self._add_item(event.item)
        if isinstance(event, rt.ResponseCreate):
            return self._respond(event.response)
        if isinstance(event, rt.ResponseCancel):
            return self._cancel(event.response_id)
        if isinstance(event, rt.InputAudioBufferCommit):
            return self._commit(event.event_id)
        if isinstance(event, rt.InputAudioBufferClear):
            self._buffer, self._buffered = [], 0
            return [rt.Cleared()]
        if isinstance(event, rt.ConversationItemTruncate):
            return self._truncate(event)
        return []

    def _update(self, patch: rt.Session) -> list[Output]:
        audio = patch.audio
        audio_in = audio.input if audio is not None else None
        new_td = "turn_detection" in audio_in.model_fields_set if audio_in else False
        td = audio_in.turn_detection if audio_in is not None else None
        # Check everything first: a refused update changes nothing.
        if patch.output_modalities is not None:
            if "audio" in patch.output_modalities and not self.can.speaks:
                raise rt.ProtocolError(
                    "unsupported_modality",
                    "this server has no voice loaded: use output_modalities ['text']",
                    param="session.output_modalities",
                )
        if new_td and td is not None and not self.can.listens:
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
        out: list[Output] = []
        rebuild = False
        if patch.instructions is not None:
            self.instructions = patch.instructions
            out.append(SetInstructions(patch.instructions))
        if patch.tools is not None or patch.builtin_tools is not None:
            self.tools = list(patch.tools) if patch.tools is not None else self.tools
            if patch.builtin_tools is not None:
                self.builtin_tools = patch.builtin_tools
            out.append(SetTools(tuple(self.tools), self.builtin_tools))
        if patch.tool_choice is not None:
            self.tool_choice = patch.tool_choice
        if patch.hears_over_speaker is not None:
            self.hears_over_speaker = patch.hears_over_speaker
        if patch.output_modalities is not None:
            wanted = list(patch.output_modalities)
            rebuild |= wanted != self.modalities
            self.modalities = wanted
        if audio_in is not None and audio_in.format is not None:
            rate = audio_in.format.rate
            if rate != self.input_rate_hz and self._buffer:  # what waits goes to the new rate
                kept = resample(np.concatenate(self._buffer), self.input_rate_hz, rate)
                self._buffer, self._buffered = [kept], len(kept)
            self.input_rate_hz = rate
        if new_td:
            rebuild |= td != self.turn_detection
            self.turn_detection = td
        if audio is not None and audio.output is not None and audio.output.format is not None:
            self.output_rate_hz = audio.output.format.rate
        if rebuild:
            out += self.closing()
            out.append(self._rebuild())
        self._configure()
        out.append(rt.SessionUpdated(session=self.describe()))
        return out

    def _append(self, pcm: bytes) -> list[Output]:
        samples = pcm16_to_float(pcm)
        if not len(samples):
            return []
        if self.turn_detection is not None:
            self._heard_s += len(samples) / self.input_rate_hz
            self.encoder.heard_ms = round(1000 * self._heard_s)
            return [Hear(samples, self.input_rate_hz, self.hears_over_speaker)]
        limit = int(self.limits.max_buffer_s * self.input_rate_hz)
        if self._buffered + len(samples) > limit:
            raise rt.ProtocolError(
                "input_audio_buffer_full",
                f"the input audio buffer holds at most {self.limits.max_buffer_s:g} s: "
                "commit or clear it",
            )
        self._buffer.append(samples)
        self._buffered += len(samples)
        return []

    def _commit(self, event_id: str | None) -> list[Output]:
        if self.turn_detection is not None:
            return [CommitSpeech(self._heard_s, event_id)]
        if self._buffered < self.input_rate_hz // 10:
            raise rt.ProtocolError(
                "input_audio_buffer_commit_empty",
                "the input audio buffer holds less than 100 ms of audio",
            )
        if not self.can.transcribes:
            raise rt.ProtocolError("unsupported", "this server has no speech-to-text model")
        audio = np.concatenate(self._buffer)
        self._buffer, self._buffered = [], 0
        item_id = rt.new_id("item")
        # Transcribe now, answer on response.create (the API's order of events).
        return [rt.Committed(item_id=item_id), Transcribe(item_id, audio, self.input_rate_hz)]

    def commit_speech(self, event_id: str | None, speech_turn: int | None) -> list[Output]:
        """Turn detection on, the client commits (see :class:`CommitSpeech`);
        ``speech_turn``: the turn of the speech in progress, as the listener has it (None:
        none). That speech ends here, as if the end-of-turn silence had come (that silence
        is given to the listener), and its turn is answered; the client's
        ``response.create`` that follows is that answer. With no speech since the last
        turn, OpenAI's error."""
        if self.turn_detection is None or speech_turn is None:
            return [
                rt.ErrorEvent.of(
                    rt.ProtocolError(
                        "input_audio_buffer_commit_empty",
                        "nothing to commit: no speech since the last turn (turn detection "
                        "commits each turn by itself)",
                        event_id=event_id,
                    )
                )
            ]
        self._commits.commit(speech_turn)
        default = EndpointConfig()
        end_ms = self.turn_detection.silence_duration_ms or default.end_silence_ms
        silence_ms = max(end_ms, default.unfinished_end_ms) + 200  # the longest a turn waits
        samples = np.zeros(self.input_rate_hz * silence_ms // 1000, dtype=np.float32)
        self._heard_s += len(samples) / self.input_rate_hz
        self.encoder.heard_ms = round(1000 * self._heard_s)
        return [*self.encoder.committed(), Hear(samples, self.input_rate_hz)]

    def transcribed(self, command: Transcribe, text: str) -> list[Output]:
        """The transcript of a committed buffer."""
        self._pending_text.append(text)
        seconds = len(command.samples) / command.sample_rate_hz
        return [
            rt.TranscriptionCompleted(
                item_id=command.item_id,
                transcript=text,
                usage=rt.TranscriptionUsage(seconds=seconds),
            )
        ]

    def _add_item(self, item: rt.Item) -> list[Output]:
        if item.type == "function_call_output":
            command, created = function_output(item, self.encoder.calls, self.limits)
            self.encoder.calls.discard(command.call_id)
            return [command, created]
        text = message_text(item, self.limits, waiting=self._pending_text)
        self._pending_text.append(text)
        return [created_item(item)]

    def _respond(self, options: rt.ResponseOptions | None) -> list[Output]:
        options = options or rt.ResponseOptions()
        modalities = tuple(options.output_modalities or self.modalities)
        if "audio" in modalities and "audio" not in self.modalities:
            raise rt.ProtocolError(
                "unsupported_modality",
                "this session answers in text: set output_modalities ['audio'] with "
                "session.update first"
                if self.can.speaks
                else "this server has no voice loaded: use output_modalities ['text']",
                param="response.output_modalities",
            )
        ask = Ask(
            "",
            options.instructions,
            modalities,
            tools=tuple(options.tools) if options.tools is not None else None,
            tool_choice=rt.choice_name(options.tool_choice or self.tool_choice),
        )
        # nothing typed since: the answer to the audio the client committed is this one;
        # its response begins now (the client is told at once), its turn fills it, and
        # this response's options apply to that turn
        committed = self._commits.takes_create() if not self._pending_text else None
        if committed is not None and self.encoder.reply is None:
            if committed not in self.encoder.replies:
                out: list[Output] = [*self.encoder.begin(committed, modalities=modalities)]
                if options.model_fields_set:
                    out.append(TurnOptions(committed, ask))
                return out
        if self.encoder.reply is not None:
            raise rt.ProtocolError(
                "conversation_already_has_active_response",
                f"response {self.encoder.reply.response_id} is still in progress: cancel it first",
            )
        # no new input: OpenAI's API answers from the conversation so far (a greeting, or
        # the answer to a function's output)
        text = " ".join(t for t in self._pending_text if t).strip()
        self._pending_text = []
        return [replace(ask, text=text)]

    def asked(
        self, turn_id: int, modalities: tuple[rt.Modality, ...] | None = None
    ) -> list[Output]:
        """The turn made for an :class:`Ask` has id ``turn_id``: its response begins (in
        ``modalities``, the session's by default)."""
        return [*self.encoder.begin(turn_id, modalities=modalities)]

    def _cancel(self, response_id: str | None) -> list[Output]:
        reply = self.encoder.reply
        if reply is None or (response_id is not None and response_id != reply.response_id):
            raise rt.ProtocolError(
                "response_cancel_not_active", "there is no response in progress to cancel"
            )
        return self._decided(self.turns.interrupt("client_cancelled", turn_id=reply.turn_id))

    def _truncate(self, event: rt.ConversationItemTruncate) -> list[Output]:
        reply = self.encoder.reply_of_item(event.item_id)
        if reply is None or reply.turn_id != max(self.encoder.replies, default=None):
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
        out = self._decided(self.turns.truncate(reply.turn_id, event.audio_end_ms / 1000))
        out.append(
            rt.ItemTruncated(
                item_id=event.item_id,
                content_index=event.content_index,
                audio_end_ms=event.audio_end_ms,
            )
        )
        return out

    # ------------------------------------------------------------------ frames

    def frame(self, frame: Frame) -> list[Output]:
        """A frame out of the session's assistant."""
        out: list[Output] = []
        if isinstance(frame, TurnFailed) and frame.turn_id == self._commits.turn:
            # a committed utterance that never became a turn (no words): its response,
            # begun for the client's response.create, fails; the controller shows nothing
            reply = self.encoder.reply
            if reply is not None and reply.turn_id == frame.turn_id and not reply.started:
                error = rt.ProtocolError("response_failed", frame.message)
                out += [rt.ErrorEvent.of(error), *self.encoder.finish(reply, "failed")]
        self._commits.follow(frame)
        return out + self._decided(self.turns.feed(frame))

    def _decided(self, decisions: list[Decision]) -> list[Output]:
        """The turn controller's decisions as events and commands."""
        out: list[Output] = []
        for d in decisions:
            if isinstance(d, Show):
                if isinstance(d.frame, TTSAudio):
                    self._queued(d.frame)
                out += self.encoder.encode(d.frame)
            elif isinstance(d, EndTurn):
                out += self.encoder.ended(d.turn_id, d.reason or "turn_detected")
                out.append(d)
            elif isinstance(d, EditHistory):
                out.append(d)
            elif isinstance(d, Report):
                out += self.encoder.metrics(d.turn_id, d.row)
                if self.on_report is not None:
                    self.on_report(d.row)
        return out

    def _queued(self, frame: TTSAudio) -> None:
        start = self._sent_audio_s
        self._sent_audio_s += frame.duration_s
        self.turns.queued(
            frame.turn_id, frame.clause_index, start, self._sent_audio_s, first_play_s=frame.at_s
        )
