"""The live conversation: microphone in, speaker out, turn after turn, with barge-in."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TextIO

import numpy as np
import numpy.typing as npt

from .assistant import Assistant
from .frames import (
    Frame,
    LLMDone,
    LLMToken,
    SpeechStarted,
    SpokenClause,
    TTSAudio,
    TurnFailed,
    TurnMetrics,
    TurnStarted,
    UserText,
)

__all__ = ["AudioOutput", "LiveSession"]


class AudioOutput(Protocol):
    """What the live loop needs of a speaker (see :class:`~voicegrok.adapters.speaker.Speaker`)."""

    played_bytes: int
    queued_bytes: int
    first_play_s: float | None

    def play(self, pcm: bytes) -> None: ...

    def clear(self) -> None: ...

    @property
    def buffered_s(self) -> float: ...


@dataclass
class _Turn:
    turn_id: int
    speech_end_s: float = 0.0
    first_queued_s: float | None = None
    play_offset: int = 0
    """Speaker stream position where this turn's first audio starts."""
    clause_ends: dict[int, int] = field(default_factory=dict)
    """Clause index -> speaker stream position where its audio ends."""
    clause_text: dict[int, str] = field(default_factory=dict)
    answering: bool = True


class LiveSession:
    """Drives an :class:`Assistant` in listening mode and plays its answers.

    - prints what the person said and the streamed answer;
    - plays reply audio as it comes (gapless, the speaker buffers);
    - barge-in: when the person starts speaking during an answer, playback stops at once,
      the turn is cancelled and the history keeps only the clauses actually played;
    - writes one JSON line of metrics per turn (``metrics_path``), including the time from
      the end of speech to the first reply sample handed to the device.
    """

    def __init__(
        self,
        assistant: Assistant,
        speaker: AudioOutput,
        out: TextIO,
        metrics_path: Path | None = None,
    ) -> None:
        self.assistant = assistant
        self.speaker = speaker
        self.out = out
        self.metrics_path = metrics_path
        self.turn: _Turn | None = None
        self.interruptions = 0
        self.turns_done = 0

    @property
    def speaking(self) -> bool:
        return self.speaker.buffered_s > 0

    async def run(self, audio: AsyncIterator[npt.NDArray[np.float32]], sample_rate_hz: int) -> None:
        """Listen to ``audio`` and answer until it ends (or the task is cancelled)."""

        async def feed() -> None:
            async for chunk in audio:
                await self.assistant.hear(chunk, sample_rate_hz)

        feeder = asyncio.create_task(feed())
        try:
            async for frame in self.assistant.frames():
                await self.handle(frame)
        finally:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeder

    async def handle(self, frame: Frame) -> None:
        turn = self.turn
        if isinstance(frame, SpeechStarted):
            if turn is not None and (turn.answering or self.speaking):
                await self._barge_in(turn)
            self._say("(listening…)")
        elif isinstance(frame, TurnStarted):
            self.turn = _Turn(frame.turn_id, speech_end_s=frame.speech_end_s)
        elif turn is None or frame.turn_id != turn.turn_id:
            return  # stale frame of an earlier turn
        elif isinstance(frame, UserText) and frame.final:
            self._say(f"you: {frame.text}")
            self.out.write("voicegrok: ")
        elif isinstance(frame, LLMToken):
            self.out.write(frame.text)
            self.out.flush()
        elif isinstance(frame, SpokenClause):
            turn.clause_text[frame.index] = frame.text
        elif isinstance(frame, TTSAudio):
            if turn.first_queued_s is None:
                turn.first_queued_s = time.perf_counter()
                turn.play_offset = self.speaker.queued_bytes
            self.speaker.play(frame.pcm)
            turn.clause_ends[frame.clause_index] = self.speaker.queued_bytes
        elif isinstance(frame, LLMDone):
            self.out.write("\n")
        elif isinstance(frame, TurnMetrics):
            turn.answering = False
            self.turns_done += 1
            self._say(f"[{frame.summary()}]")
            self._write_metrics(frame, turn, interrupted=False)
        elif isinstance(frame, TurnFailed):
            turn.answering = False
            self._say(f"(could not answer: {frame.message})")

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
        self._say("\n(interrupted)")
        self._write_metrics(None, turn, interrupted=True)

    def _write_metrics(self, m: TurnMetrics | None, turn: _Turn, *, interrupted: bool) -> None:
        if self.metrics_path is None:
            return
        row: dict[str, object] = m.as_dict() if m is not None else {"turn_id": turn.turn_id}
        row["interrupted"] = interrupted
        first_play = self._first_play_s(turn)
        row["first_audio_device_ms"] = (
            None if first_play is None else round((first_play - turn.speech_end_s) * 1000, 1)
        )
        with self.metrics_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    def _first_play_s(self, turn: _Turn) -> float | None:
        """When the turn's first sample was handed to the device (estimated from queue time)."""
        if turn.first_queued_s is None:
            return None
        started = self.speaker.first_play_s
        return (
            started
            if started is not None and started >= turn.first_queued_s
            else turn.first_queued_s
        )

    def _say(self, line: str) -> None:
        print(line, file=self.out, flush=True)
