"""The assistant: engines loaded once and kept warm, and conversations that use them.

``load_engines`` loads and warms the models (the slow part, done once per process).
``Assistant`` is one conversation: a pipeline (STT -> LLM -> clauses -> TTS -> metrics)
around the shared engines, with turn ids and interruption.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Iterator

import numpy as np
import numpy.typing as npt

from .audio import trim_pcm16
from .config import Settings
from .conversation import Conversation
from .endpointing import EndpointConfig
from .frames import (
    AudioChunk,
    Frame,
    Interrupt,
    TurnFailed,
    TurnMetrics,
    TurnStarted,
    UserAudio,
    UserText,
)
from .loading import Engines, load_engines
from .pipeline import Background, Pipeline, Stage
from .stages import ClauseStage, LLMStage, MetricsStage, STTStage, TTSStage
from .stages.listen import ListenStage
from .stages.tts import LEAD_SILENCE_MS
from .threads import EngineThread
from .tools import Toolbox
from .tools.base import ToolContext
from .tools.timers import Timers
from .turns import Forget, KeepHeard

ALERT_AHEAD_S = 2.0
"""How long before its timer's time an alert is spoken (kept until it rings)."""

__all__ = ["Assistant", "Engines", "load_engines"]


class Assistant:
    """One conversation. Use ``async with Assistant(engines, settings) as a:``."""

    def __init__(
        self,
        engines: Engines,
        settings: Settings | None = None,
        conversation: Conversation | None = None,
        endpointing: EndpointConfig | None = None,
        *,
        realtime: bool = False,
        turn_ids: Iterator[int] | None = None,
        timers: Timers | None = None,
    ) -> None:
        """``realtime``: the answer is played as it is made (a speaker, a client), so speech
        is synthesized only a little ahead of playback, leaving the CPU to the LLM.
        ``turn_ids``: where its turns' ids come from (1, 2, 3... by default); an assistant
        made anew for the same turn controller must go on from the last one's (a controller
        takes a reused id for a turn it already ended).
        ``timers``: the conversation's timers, which ring through :meth:`alerts` (None:
        the timer tools say they need a live session)."""
        settings = settings or Settings()
        if engines.llm is None:
            raise ValueError("an assistant needs an LLM engine")
        self.settings = settings
        self.conversation = conversation or Conversation(settings.system_prompt)
        self._ids = turn_ids if turn_ids is not None else itertools.count(1)
        self._engines = engines
        self.timers = timers
        context = ToolContext(timers=timers)
        self.tools = Toolbox.builtin(context) if settings.tools else Toolbox(context=context)
        for tool in engines.tools:
            self.tools.add(tool)
        """The built-in tools (unless switched off), a client's functions, MCP tools."""
        self._alerts: asyncio.Queue[str] = asyncio.Queue()
        self._ringer: asyncio.Task[None] | None = None
        self._said_ahead: dict[str, asyncio.Task[list[bytes]]] = {}
        """Alerts spoken ahead of their timers' time (by text), so that each is heard at
        its second even while an answer keeps the voice busy."""
        self._rung: set[str] = set()
        """Alerts whose timers have rung, not spoken yet."""
        stages: list[Stage] = []
        background = Background()
        self._listen: ListenStage | None = None
        if engines.vad is not None:
            if engines.stt is None:
                raise ValueError("listening needs a speech-to-text engine next to the VAD")
            self._listen = ListenStage(
                engines.vad,
                engines.stt,
                lambda: next(self._ids),
                endpointing,
                vad_thread=engines.threads["vad"],
                turn=engines.turn,
                turn_thread=engines.threads["turn"],
                words=engines.words,
                stt_thread=engines.threads["stt"],
                partial_thread=engines.threads["stt-partial"],
                background=background,
            )
            stages.append(self._listen)
        if engines.stt is not None:
            stages.append(STTStage(engines.stt, engines.threads["stt"]))
        # an engine that batches conversations is waited on by each from a thread of its own
        self._own_llm_thread = (
            EngineThread("llm-conversation") if getattr(engines.llm, "concurrent", False) else None
        )
        self._llm = LLMStage(
            engines.llm,
            self.conversation,
            max_tokens=settings.max_tokens,
            temperature=settings.temperature,
            thread=self._own_llm_thread or engines.threads["llm"],
            tools=self.tools,
            released=self._listen.released if self._listen is not None else None,
        )
        stages.append(self._llm)
        stages.append(ClauseStage(first_min_words=settings.first_clause_words))
        self._tts: TTSStage | None = None
        if engines.tts is not None:
            lead_s = settings.tts_lead_s if realtime else None
            self._tts = TTSStage(
                engines.tts, engines.threads["tts"], lead_s=lead_s, cores=engines.cores
            )
            stages.append(self._tts)
        stages.append(MetricsStage())
        self.pipeline = Pipeline(stages, background=background)
        self._out = self.pipeline.frames()
        self.current_turn: int | None = None

    async def __aenter__(self) -> Assistant:
        self.pipeline.start()
        if self.timers is not None:
            self._ringer = asyncio.create_task(self._ring(self.timers))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in [*self._said_ahead.values(), self._ringer]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self.pipeline.abort()
        if self._own_llm_thread is not None:
            self._own_llm_thread.close()

    def _text_turn(
        self,
        text: str,
        instructions: str | None = None,
        *,
        speak: bool = True,
        tool_choice: str = "auto",
    ) -> tuple[Frame, Frame]:
        turn_id = next(self._ids)
        if not speak and self._tts is not None:
            self._tts.silence_turn(turn_id)
        first = TurnStarted(turn_id=turn_id, speech_end_s=time.perf_counter(), source="text")
        # no text: answer from the conversation so far
        source = "text" if text else "conversation"
        return first, UserText(
            turn_id=turn_id,
            text=text,
            source=source,
            instructions=instructions,
            tool_choice=tool_choice,
        )

    def _audio_turn(
        self, samples: npt.NDArray[np.float32], sample_rate_hz: int, speech_end_s: float | None
    ) -> tuple[Frame, Frame]:
        turn_id = next(self._ids)
        end = time.perf_counter() if speech_end_s is None else speech_end_s
        first = TurnStarted(turn_id=turn_id, speech_end_s=end, source="speech")
        audio = UserAudio(turn_id=turn_id, samples=samples, sample_rate_hz=sample_rate_hz)
        return first, audio

    async def ask(self, text: str) -> AsyncIterator[Frame]:
        """Answer typed text; yields the turn's frames, ending with TurnMetrics,
        TurnFailed or Interrupt."""
        async for frame in self._turn(*self._text_turn(text)):
            yield frame

    async def reply(
        self,
        samples: npt.NDArray[np.float32],
        sample_rate_hz: int,
        speech_end_s: float | None = None,
    ) -> AsyncIterator[Frame]:
        """Answer an utterance; ``speech_end_s`` (perf_counter) defaults to now."""
        async for frame in self._turn(*self._audio_turn(samples, sample_rate_hz, speech_end_s)):
            yield frame

    def speech_turn(self) -> int | None:
        """Listening mode: the turn of the speech in progress, or None."""
        return self._listen.speech_turn() if self._listen is not None else None

    def listened_s(self) -> float:
        """Listening mode: seconds of audio the listener has taken in (0 without one)."""
        return self._listen.listened_s if self._listen is not None else 0.0

    async def push_text(
        self,
        text: str,
        *,
        instructions: str | None = None,
        speak: bool = True,
        tool_choice: str = "auto",
    ) -> int:
        """Listening mode: start a typed turn; its frames come out of ``frames()``. An
        empty ``text`` answers from the conversation so far; ``instructions`` replace the
        system prompt for this answer; ``speak`` False: the answer is text only;
        ``tool_choice``: whether the model may (``auto``), must (``required``, a tool's
        name) or must not (``none``) call one of the tools offered to it."""
        turn = self._text_turn(text, instructions, speak=speak, tool_choice=tool_choice)
        return await self._push(*turn)

    async def push_audio(
        self,
        samples: npt.NDArray[np.float32],
        sample_rate_hz: int,
        speech_end_s: float | None = None,
    ) -> int:
        """Listening mode: start a turn from a whole utterance (push-to-talk)."""
        return await self._push(*self._audio_turn(samples, sample_rate_hz, speech_end_s))

    def set_turn_options(
        self, turn_id: int, *, instructions: str | None, speak: bool, tool_choice: str
    ) -> None:
        """Options for a turn under way (a spoken one a client committed), applied when its
        words reach the LLM: system prompt, voice or text only, tool choice."""
        if not speak and self._tts is not None:
            self._tts.silence_turn(turn_id)
        self._llm.turn_options[turn_id] = (instructions, tool_choice)

    async def alerts(self) -> AsyncIterator[str]:
        """What to say when a timer rings, at the moment it rings (the live loop stops the
        answer in progress and says it: :meth:`speak_alert`)."""
        while True:
            yield await self._alerts.get()

    async def speak_alert(self, text: str) -> AsyncIterator[bytes]:
        """``text`` spoken now (PCM16 at the voice's rate), ahead of any answer's later
        clauses; nothing without a voice. Not a turn: nothing to answer, nothing for the
        history. A timer's alert was spoken ahead of its time: it plays at once."""
        self._rung.discard(text)
        ahead = self._said_ahead.pop(text, None)
        if ahead is not None:
            with contextlib.suppress(Exception):  # (said now instead)
                if chunks := await ahead:
                    for pcm in chunks:
                        yield pcm
                    return
        async for pcm in self._speak(text, urgent=True):
            yield pcm

    async def _speak(self, text: str, *, urgent: bool) -> AsyncIterator[bytes]:
        if self._engines.tts is None:
            return
        tts, rate = self._engines.tts, self._engines.tts.sample_rate_hz
        async for raw in self._engines.threads["tts"].stream(
            lambda: tts.synthesize(text, urgent=urgent), priority=0 if urgent else 1
        ):
            yield trim_pcm16(raw, rate, lead_ms=LEAD_SILENCE_MS, tail_ms=300)

    async def _say_ahead(self, text: str) -> list[bytes]:
        return [pcm async for pcm in self._speak(text, urgent=False)]

    async def _ring(self, timers: Timers) -> None:
        """Put each timer's alert in :meth:`alerts` at its time, its speech made
        :data:`ALERT_AHEAD_S` before."""
        changed = asyncio.Event()
        timers.on_change = changed.set
        while True:
            changed.clear()
            keep = {t.alert() for t in timers.pending()} | self._rung
            for text in [t for t in self._said_ahead if t not in keep]:  # cancelled
                self._said_ahead.pop(text).cancel()
            wait = timers.next_due_s()
            for timer in timers.pending():
                text, left = timer.alert(), timers.left_s(timer)
                if text in self._said_ahead or self._engines.tts is None:
                    continue
                if left <= ALERT_AHEAD_S:
                    self._said_ahead[text] = asyncio.ensure_future(self._say_ahead(text))
                elif wait is not None:
                    wait = min(wait, left - ALERT_AHEAD_S)
            # (asyncio.timeout, not wait_for: wait_for swallows a cancellation that comes
            # as the event is set, and this task then never ends)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await changed.wait()
            for timer in timers.due():
                self._rung.add(timer.alert())
                self._alerts.put_nowait(timer.alert())

    async def _push(self, *inputs: Frame) -> int:
        for frame in inputs:
            await self.pipeline.push(frame)
        return inputs[0].turn_id

    async def hear(
        self,
        samples: npt.NDArray[np.float32],
        sample_rate_hz: int,
        *,
        hears_over_speaker: bool = True,
    ) -> None:
        """Feed microphone audio (listening mode: needs a VAD engine); read ``frames()``.
        ``hears_over_speaker``: see :attr:`AudioChunk.hears_over_speaker`."""
        await self.pipeline.push(
            AudioChunk(
                turn_id=0,
                samples=samples,
                sample_rate_hz=sample_rate_hz,
                hears_over_speaker=hears_over_speaker,
            )
        )

    async def frames(self) -> AsyncIterator[Frame]:
        """Every frame the pipeline puts out (listening mode), until it is closed.

        Tentative turns, confirmations and retractions come out as they are: deciding
        what becomes of a turn is the :class:`~voicegrok.turns.TurnController`'s job (the
        live loop and each server session own one), which then calls :meth:`end_turn` and
        :meth:`edit_history`.
        """
        while True:
            try:
                frame = await anext(self._out)
            except StopAsyncIteration:
                return
            if isinstance(frame, TurnStarted):
                self.current_turn = frame.turn_id
            yield frame

    async def end_turn(self, turn_id: int, reason: str) -> None:
        """Stop ``turn_id``'s work in every stage and wait until it has unwound (its
        partial answer is then in the history, ready for :meth:`edit_history`)."""
        await self.pipeline.cancel_turn_and_wait(turn_id, reason)

    async def edit_history(self, turn_id: int, edit: KeepHeard | Forget) -> None:
        """Apply a history edit of the turn controller (on the loop that owns it).

        A turn forgotten (withdrawn: the person went on speaking) leaves the history as it
        was before it, and the KV cache holds that history already, followed by the
        person's words: evaluating the history again would only cut those words off. On
        the rig, the 1.5B then evaluated 19 tokens after the final transcript of "And now
        can you do this for Atlanta? Georgia also." (474-608 ms) instead of 8-12 (294-393)."""
        if isinstance(edit, Forget):
            self.conversation.forget_turn(turn_id)
            return
        self.conversation.keep_heard(turn_id, edit.text)
        self._llm.history_edited()

    def interrupt(self) -> None:
        """Cancel the current turn (barge-in): its reader gets an Interrupt and stops."""
        if self.current_turn is not None:
            self.pipeline.cancel_turn(self.current_turn)

    async def _turn(self, *inputs: Frame) -> AsyncIterator[Frame]:
        turn_id = inputs[0].turn_id
        self.current_turn = turn_id
        ended = False
        try:
            await self._push(*inputs)
            while not ended:
                frame = await anext(self._out)
                if frame.turn_id != turn_id:
                    continue  # late frames of an earlier turn
                ended = isinstance(frame, (TurnMetrics, TurnFailed, Interrupt))
                yield frame
        finally:
            if not ended:  # the reader gave up (Ctrl+C, error): stop the turn's work
                self.pipeline.cancel_turn(turn_id, reason="")
            if self.current_turn == turn_id:
                self.current_turn = None
