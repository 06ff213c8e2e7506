"""One Realtime API session's driver: the async half of :mod:`voicegrok.server.core`.

The websocket adapter (:mod:`voicegrok.server.app`) parses each message and hands the
event to :meth:`RealtimeSession.handle`. The session gives it to its
:class:`~voicegrok.server.core.SessionCore` (the protocol's state, sans-I/O) and carries
out what comes back: server events go to ``send``, commands go to the session's own
:class:`~voicegrok.assistant.Assistant` (its pipeline and conversation on the process's
shared engines). The assistant's frames go back through the core the same way, so every
connection is the live loop of ``voicegrok talk`` with the client as microphone and
speaker.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import replace

from ..assistant import Assistant, Engines
from ..audio import resample
from ..config import Settings
from ..conversation import Conversation
from ..history import History
from ..protocol import realtime as rt
from ..tools.base import client_tool
from ..turns import EditHistory, EndTurn
from .commands import (
    Ask,
    Capabilities,
    CommitSpeech,
    Hear,
    Limits,
    Rebuild,
    SetInstructions,
    SetTools,
    ToolOutput,
    Transcribe,
    TurnOptions,
)
from .core import Output, SessionCore

__all__ = ["Limits", "RealtimeSession"]

Send = Callable[[rt._ServerEvent], Awaitable[None]]


class RealtimeSession:
    """Serve one client. Call :meth:`start`, then :meth:`handle_message` for each message
    (:meth:`refuse` for one dropped unread), and :meth:`close`."""

    def __init__(
        self,
        engines: Engines,
        settings: Settings,
        send: Send,
        *,
        limits: Limits | None = None,
        model_name: str = "voicegrok",
        voice_name: str = "default",
        history: History | None = None,
    ) -> None:
        self.engines = engines
        self.settings = settings
        self._send = send
        can = Capabilities(
            listens=engines.vad is not None,
            transcribes=engines.stt is not None,
            speaks=engines.tts is not None,
            max_output_tokens=settings.max_tokens,
            builtin_tools=settings.tools,
            model_name=model_name,
            voice_name=voice_name,
        )
        self.core = SessionCore(can, settings.system_prompt, limits)
        """The protocol's state: what each event and frame means."""
        self.conversation = Conversation(settings.system_prompt)
        if history is not None:  # serve --history: every turn kept, like the local loop's
            recorder = history.record("serve", {"llm": model_name, "tts": voice_name})
            self.conversation.journal = recorder
            self.core.on_report = recorder.metrics
        self._turn_ids = itertools.count(1)
        """Turn ids across the assistants a session makes (the core's controller outlives
        them: a second assistant's turn 1 was taken for the first one's, cancelled)."""
        self._assistant: Assistant | None = None
        self._pump: asyncio.Task[None] | None = None
        self._tools = SetTools((), settings.tools)
        """The client's functions and the built-in tools' switch (kept across rebuilds)."""

    @property
    def session_id(self) -> str:
        return self.core.session_id

    @property
    def limits(self) -> Limits:
        return self.core.limits

    def describe(self) -> rt.Session:
        return self.core.describe()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self._do(self.core.start())

    async def close(self) -> None:
        """Stop everything this session started (its answer stops at the next token)."""
        await self._do(self.core.closing())
        await self._teardown()

    async def _build(self, how: Rebuild) -> None:
        await self._teardown()
        engines = self.engines
        if not how.listen or engines.vad is None:
            engines = replace(engines, vad=None)
        else:  # the model is shared, the stream state is this session's
            engines = replace(engines, vad=engines.vad.fork())
        if not how.speak:
            engines = replace(engines, tts=None)
        self._assistant = Assistant(
            engines,
            self.settings,
            self.conversation,
            how.endpointing,
            realtime=True,
            turn_ids=self._turn_ids,
        )
        await self._assistant.__aenter__()
        self._use_tools(self._tools.tools)
        self._pump = asyncio.create_task(self._run(self._assistant))

    def _use_tools(self, functions: tuple[rt.FunctionTool, ...]) -> None:
        if self._assistant is None:
            return
        box = self._assistant.tools
        box.use_builtin(self._tools.builtin)
        box.replace(
            "client", (client_tool(f.name, f.description, f.parameters) for f in functions)
        )

    async def _teardown(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None
        if self._assistant is not None:
            await self._assistant.__aexit__(None, None, None)
            self._assistant = None

    # ------------------------------------------------------------------ events and frames

    async def refuse(self, error: rt.ProtocolError) -> None:
        await self._send(rt.ErrorEvent.of(error))

    async def handle_message(self, message: str | bytes) -> None:
        """Serve one websocket message (a bad one is answered with an ``error`` event)."""
        await self._do(self.core.receive_message(message))

    async def handle(self, event: rt.ClientEvent) -> None:
        """Serve one client event; a refused request becomes an ``error`` event."""
        await self._do(self.core.receive(event))

    async def _run(self, assistant: Assistant) -> None:
        async for frame in assistant.frames():
            await self._do(self.core.frame(frame))

    async def _do(self, outputs: list[Output]) -> None:
        """Carry out the core's outputs, in order."""
        for out in outputs:
            if isinstance(out, rt._ServerEvent):
                await self._send(out)
            elif isinstance(out, Hear):
                assert self._assistant is not None
                await self._assistant.hear(
                    out.samples, out.sample_rate_hz, hears_over_speaker=out.hears_over_speaker
                )
            elif isinstance(out, Ask):
                assert self._assistant is not None
                self._use_tools(out.tools if out.tools is not None else self._tools.tools)
                turn_id = await self._assistant.push_text(
                    out.text,
                    instructions=out.instructions,
                    speak="audio" in out.modalities,
                    tool_choice=out.tool_choice,
                )
                await self._do(self.core.asked(turn_id, out.modalities))
            elif isinstance(out, CommitSpeech):
                await self._listened(out.heard_s)
                speech = self._assistant.speech_turn() if self._assistant else None
                await self._do(self.core.commit_speech(out.event_id, speech))
            elif isinstance(out, Transcribe):
                await self._do(self.core.transcribed(out, await self._transcribe(out)))
            elif isinstance(out, Rebuild):
                await self._build(out)
            elif isinstance(out, SetInstructions):
                self.conversation.system_prompt = out.text
            elif isinstance(out, SetTools):
                self._tools = out
                self._use_tools(out.tools)
            elif isinstance(out, TurnOptions):
                if self._assistant is not None:
                    ask = out.ask
                    self._use_tools(ask.tools if ask.tools is not None else self._tools.tools)
                    self._assistant.set_turn_options(
                        out.turn_id,
                        instructions=ask.instructions,
                        speak="audio" in ask.modalities,
                        tool_choice=ask.tool_choice,
                    )
            elif isinstance(out, ToolOutput):
                self.conversation.tool_result(0, out.output)
            elif isinstance(out, EndTurn):
                if self._assistant is not None:
                    await self._assistant.end_turn(out.turn_id, out.reason)
            elif isinstance(out, EditHistory):
                if self._assistant is not None:
                    await self._assistant.edit_history(out.turn_id, out.edit)

    async def _listened(self, heard_s: float, timeout_s: float = 5.0) -> None:
        """Wait until the listener has taken in ``heard_s`` of the session's audio and
        what it made of it has come out (a client's commit is judged on that)."""
        assistant = self._assistant
        deadline = asyncio.get_running_loop().time() + timeout_s
        while assistant is not None and asyncio.get_running_loop().time() < deadline:
            if assistant.listened_s() >= heard_s - self.core.listen_base_s - 0.05:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # its last windows' frames reach the core

    async def _transcribe(self, job: Transcribe) -> str:
        stt = self.engines.stt
        assert stt is not None  # the core asks only when there is one
        audio = resample(job.samples, job.sample_rate_hz, stt.sample_rate_hz)
        text = await self.engines.threads["stt"].call(stt.transcribe, audio)
        return text.strip()
