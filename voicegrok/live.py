"""The live conversation: microphone in, speaker out, turn after turn, with barge-in."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from .frames import (
    Frame,
    Interrupt,
    SpeechStarted,
    SpokenClause,
    TTSAudio,
    TurnFailed,
    TurnMetrics,
    TurnRetracted,
    TurnStarted,
    UserText,
)

__all__ = ["AudioOutput", "LiveSession", "View"]


class _History(Protocol):
    def reset(self) -> None: ...


class LiveAssistant(Protocol):
    """What the live loop needs of an assistant in listening mode: a local
    :class:`~voicegrok.assistant.Assistant` or a :class:`~voicegrok.remote.RemoteAssistant`."""

    @property
    def conversation(self) -> _History: ...

    async def hear(self, samples: npt.NDArray[np.float32], sample_rate_hz: int) -> None: ...

    async def push_text(self, text: str) -> int: ...

    async def push_audio(
        self,
        samples: npt.NDArray[np.float32],
        sample_rate_hz: int,
        speech_end_s: float | None = None,
    ) -> int: ...

    async def barge_in(self, turn_id: int, spoken: str) -> None: ...

    async def retract(self, turn_id: int, user_text: str | None) -> None: ...

    def frames(self) -> AsyncIterator[Frame]: ...


class AudioOutput(Protocol):
    """What the live loop needs of a speaker (see :class:`~voicegrok.adapters.speaker.Speaker`)."""

    @property
    def played_bytes(self) -> int: ...

    @property
    def queued_bytes(self) -> int: ...

    def play(self, pcm: bytes) -> None: ...

    def clear(self) -> None: ...

    @property
    def buffered_s(self) -> float: ...


@dataclass
class _Turn:
    turn_id: int
    speech_end_s: float = 0.0
    first_play_s: float | None = None
    """When the turn's first sample reaches the device: queued at that time plus the audio
    still buffered ahead of it (perf_counter)."""
    clause_ends: dict[int, int] = field(default_factory=dict)
    """Clause index -> speaker stream position where its audio ends."""
    clause_text: dict[int, str] = field(default_factory=dict)
    answering: bool = True
    user_text: str | None = None
    metrics: TurnMetrics | None = None
    """Set when the answer is complete; written out once it has been played (or cut)."""


View = Callable[[Frame], None]
"""Something that shows a conversation: it gets every frame of the current turn, the
control frames (speech started, interrupted, retracted) and partial transcripts."""


class LiveSession:
    """Drives an :class:`Assistant` in listening mode and plays its answers.

    - hands every frame worth showing to ``view`` (a console printer, the terminal UI);
    - plays reply audio as it comes (gapless, the speaker buffers);
    - barge-in: when the person starts speaking during an answer, playback stops at once,
      the turn is cancelled and the history keeps only the clauses actually played;
    - takes commands: a typed question, interrupt, a new conversation, mute, push-to-talk;
    - writes one JSON line of metrics per turn (``metrics_path``), including the time from
      the end of speech to the first reply sample handed to the device.
    """

    def __init__(
        self,
        assistant: LiveAssistant,
        speaker: AudioOutput,
        view: View | None = None,
        metrics_path: Path | None = None,
        on_metrics: Callable[[dict[str, object]], None] | None = None,
    ) -> None:
        self.assistant = assistant
        self.speaker = speaker
        self.view: View = view or (lambda _frame: None)
        self.metrics_path = metrics_path
        self.on_metrics = on_metrics
        self.turn: _Turn | None = None
        self.interruptions = 0
        self.turns_done = 0
        self.muted = False
        """The microphone is heard as silence (an utterance in progress ends normally)."""
        self.level = 0.0
        """Loudness of the latest microphone chunk (RMS, 0..1), for a level meter."""
        self.sample_rate_hz = 16000
        self._ptt: list[npt.NDArray[np.float32]] | None = None

    @property
    def speaking(self) -> bool:
        return self.speaker.buffered_s > 0

    @property
    def answering(self) -> bool:
        """A turn is being answered or its answer is still playing."""
        return self.turn is not None and (self.turn.answering or self.speaking)

    @property
    def recording(self) -> bool:
        """Push-to-talk is held: the microphone goes to the next turn, not to the VAD."""
        return self._ptt is not None

    async def run(
        self, audio: AsyncIterator[npt.NDArray[np.float32]] | None, sample_rate_hz: int = 16000
    ) -> None:
        """Listen to ``audio`` (None: typed turns only) and answer until it ends or the task
        is cancelled."""
        self.sample_rate_hz = sample_rate_hz

        async def feed() -> None:
            if audio is None:
                return
            async for chunk in audio:
                self.level = float(np.sqrt(np.mean(chunk**2))) if len(chunk) else 0.0
                if self._ptt is not None:
                    self._ptt.append(chunk)
                if self._ptt is not None or self.muted:
                    chunk = np.zeros_like(chunk)
                await self.assistant.hear(chunk, sample_rate_hz)

        async def watch_playback() -> None:
            while True:
                await asyncio.sleep(0.05)
                self.poll()

        async def show() -> None:
            async for frame in self.assistant.frames():
                await self.handle(frame)

        feeder = asyncio.create_task(feed())
        watcher = asyncio.create_task(watch_playback())
        shower = asyncio.create_task(show())
        try:
            # a finite recording ends the session when it ends; no audio: until cancelled
            waited = {shower} if audio is None else {shower, feeder}
            done, _ = await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # raise what went wrong
        finally:
            for task in (feeder, watcher, shower):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self.poll(final=True)

    # ------------------------------------------------------------------ commands

    async def ask(self, text: str) -> None:
        """A typed question: interrupts the answer in progress, then is answered like a
        spoken one (text and voice)."""
        await self.interrupt()
        await self.assistant.push_text(text)

    async def interrupt(self) -> bool:
        """Stop the answer in progress (as a barge-in would). False when there was none."""
        if self.turn is None or not self.answering:
            return False
        await self._barge_in(self.turn)
        return True

    async def new_conversation(self) -> None:
        """Stop any answer and forget the conversation so far."""
        await self.interrupt()
        self.assistant.conversation.reset()

    def start_push_to_talk(self) -> None:
        """From now on the microphone is recorded for one turn (the VAD hears silence)."""
        if self._ptt is None:
            self._ptt = []

    async def stop_push_to_talk(self) -> bool:
        """End the recording and answer it at once (no end-of-turn silence to wait for).
        False when nothing was recorded."""
        chunks, self._ptt = self._ptt, None
        if not chunks:
            return False
        await self.interrupt()
        audio = np.concatenate(chunks)
        await self.assistant.push_audio(audio, self.sample_rate_hz)
        return True

    # ------------------------------------------------------------------ frames

    def poll(self, *, final: bool = False) -> None:
        """Write the finished turn's metrics once its answer has been played out."""
        turn = self.turn
        if turn is not None and turn.metrics is not None and (final or not self.speaking):
            self._write_metrics(turn.metrics, turn, interrupted=False)
            turn.metrics = None

    async def handle(self, frame: Frame) -> None:
        turn = self.turn
        if isinstance(frame, SpeechStarted):
            if turn is not None and (turn.answering or self.speaking):
                await self._barge_in(turn)
        elif isinstance(frame, TurnRetracted):
            if turn is None or turn.turn_id != frame.turn_id:
                return
            self.speaker.clear()
            self.turn = None
            await self.assistant.retract(frame.turn_id, turn.user_text)
        elif isinstance(frame, UserText) and not frame.final:
            pass  # a partial transcript, shown as it is
        elif isinstance(frame, TurnStarted):
            self.poll(final=True)
            self.turn = _Turn(frame.turn_id, speech_end_s=frame.speech_end_s)
        elif turn is None or frame.turn_id != turn.turn_id:
            return  # stale frame of an earlier turn
        elif isinstance(frame, UserText):
            turn.user_text = frame.text
        elif isinstance(frame, SpokenClause):
            turn.clause_text[frame.index] = frame.text
        elif isinstance(frame, TTSAudio):
            if turn.first_play_s is None:
                turn.first_play_s = time.perf_counter() + self.speaker.buffered_s
            self.speaker.play(frame.pcm)
            turn.clause_ends[frame.clause_index] = self.speaker.queued_bytes
        elif isinstance(frame, TurnMetrics):
            turn.answering = False
            self.turns_done += 1
            turn.metrics = frame
            self.poll()
        elif isinstance(frame, (TurnFailed, Interrupt)):
            turn.answering = False
        self.view(frame)

    def spoken_text(self, turn: _Turn) -> str:
        """The clauses of ``turn`` whose audio has been played completely."""
        played = self.speaker.played_bytes
        done = [i for i, end in sorted(turn.clause_ends.items()) if end <= played]
        return " ".join(turn.clause_text[i] for i in done if i in turn.clause_text).strip()

    async def _barge_in(self, turn: _Turn) -> None:
        spoken = self.spoken_text(turn)
        self.speaker.clear()
        turn.answering = False
        self.interruptions += 1
        await self.assistant.barge_in(turn.turn_id, spoken)
        self._write_metrics(turn.metrics, turn, interrupted=True)
        turn.metrics = None

    def _write_metrics(self, m: TurnMetrics | None, turn: _Turn, *, interrupted: bool) -> None:
        if self.metrics_path is None and self.on_metrics is None:
            return
        row: dict[str, object] = m.as_dict() if m is not None else {"turn_id": turn.turn_id}
        row["interrupted"] = interrupted
        first_play = turn.first_play_s
        row["first_audio_device_ms"] = (
            None if first_play is None else round((first_play - turn.speech_end_s) * 1000, 1)
        )
        if self.on_metrics is not None:
            self.on_metrics(row)
        if self.metrics_path is not None:
            with self.metrics_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
