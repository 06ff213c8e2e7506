"""Scripted fake engines and helpers for testing code built on voicegrok.

The fakes follow the engine protocols of :mod:`voicegrok.engines` and block like the real
ones (``time.sleep``), so they exercise the same threads and cancellation paths. They are
for logic tests; behaviour tests use the real embedded models.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ..assistant import Engines
from ..audio import WHISPER_RATE_HZ, float_to_pcm16
from ..conversation import Message
from ..engines import Stop
from ..frames import Frame
from ..pipeline import Pipeline, Stage
from ..tools.calls import ToolOffer

__all__ = [
    "FakeBackend",
    "FakeChat",
    "FakeSTT",
    "FakeTTS",
    "FakeVAD",
    "collect",
    "fake_engines",
    "run_stage",
]


@dataclass
class FakeSTT:
    """Returns the scripted transcripts in order (the last one repeats)."""

    texts: list[str] = field(default_factory=lambda: ["hello there"])
    delay_s: float = 0.0
    sample_rate_hz: int = WHISPER_RATE_HZ
    heard: list[int] = field(default_factory=list)
    """Length in samples of each utterance transcribed."""
    gate: threading.Event | None = None
    """When set, each transcription waits for it (a test holds the engine busy)."""
    started: int = 0
    """Transcriptions begun (``heard`` counts the finished ones)."""
    delays: list[float] = field(default_factory=list)
    """Seconds each call takes, in call order (then ``delay_s``)."""
    errors: int = 0
    """The first ``errors`` transcriptions raise RuntimeError (a broken engine)."""
    prefixes: list[str] = field(default_factory=list)
    """The ``prefix`` each transcription was given, in call order."""

    by_length: list[tuple[float, str]] = field(default_factory=list)
    """When given, (seconds, text) pairs: audio up to that long says that text (the first
    pair that fits), instead of the scripted order."""

    def transcribe(self, audio: npt.NDArray[np.float32], prefix: str = "") -> str:
        self.started += 1
        self.prefixes.append(prefix)
        if self.gate is not None:
            self.gate.wait(10)
        if self.started <= self.errors:
            raise RuntimeError("the engine broke")
        call = self.started - 1
        time.sleep(self.delays[call] if call < len(self.delays) else self.delay_s)
        self.heard.append(len(audio))
        seconds = len(audio) / self.sample_rate_hz
        for longest, text in self.by_length:
            if seconds <= longest:
                return text
        index = min(len(self.heard) - 1, len(self.texts) - 1)
        return self.texts[index]


@dataclass
class FakeChat:
    """Streams the scripted replies word by word, ``token_delay_s`` apart."""

    replies: list[str] = field(default_factory=lambda: ["Hello! How can I help you today?"])
    token_delay_s: float = 0.0
    n_ctx: int = 2048
    prompts: list[list[Message]] = field(default_factory=list)
    warmed: list[list[Message]] = field(default_factory=list)
    warmed_in_background: list[bool] = field(default_factory=list)
    """For each warm-up: whether nobody waited for it (see :meth:`ChatModel.warm_up`)."""
    warmed_open_end: list[bool] = field(default_factory=list)
    """For each warm-up: whether its last message was words still being spoken."""
    stopped_early: int = 0
    """How many streams were closed before their end (cancellation reached the engine)."""
    offers: list[ToolOffer | None] = field(default_factory=list)
    """The tools offered with each prompt (a reply may be a call: ``<tool_call>{...}``)."""

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return sum(len(m["content"].split()) + 4 for m in messages)

    def stream_chat(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        temperature: float,
        tools: ToolOffer | None = None,
    ) -> Iterator[str]:
        self.prompts.append(list(messages))
        self.offers.append(tools)
        reply = self.replies[min(len(self.prompts) - 1, len(self.replies) - 1)]
        tokens = re.findall(r"\s*\S+", reply)[:max_tokens]
        finished = False
        try:
            for token in tokens:
                time.sleep(self.token_delay_s)
                yield token
            finished = True
        finally:
            if not finished:
                self.stopped_early += 1

    def warm_up(
        self,
        messages: Sequence[Message],
        *,
        background: bool = False,
        stop: Stop = None,
        open_end: bool = False,
    ) -> None:
        self.warmed.append(list(messages))
        self.warmed_in_background.append(background)
        self.warmed_open_end.append(open_end)


@dataclass
class FakeTTS:
    """Yields a quiet tone, ``samples_per_char`` samples for each character, one chunk a call."""

    sample_rate_hz: int = WHISPER_RATE_HZ
    samples_per_char: int = 160
    delay_s: float = 0.0
    spoken: list[str] = field(default_factory=list)
    urgent: list[str] = field(default_factory=list)
    """The texts synthesized as urgent (with every core)."""

    def synthesize(self, text: str, *, urgent: bool = False) -> Iterator[bytes]:
        time.sleep(self.delay_s)
        self.spoken.append(text)
        if urgent:
            self.urgent.append(text)
        n = len(text) * self.samples_per_char
        wave = 0.1 * np.sin(np.arange(n) * 2 * np.pi * 220 / self.sample_rate_hz)
        yield float_to_pcm16(wave.astype(np.float32))


@dataclass
class FakeVAD:
    """Calls a 32 ms window speech when it is louder than ``level`` (RMS): tones are talk."""

    level: float = 0.01
    sample_rate_hz: int = WHISPER_RATE_HZ
    window_samples: int = 512
    _pending: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, np.float32))

    def reset(self) -> None:
        self._pending = np.zeros(0, np.float32)

    def fork(self) -> FakeVAD:
        return FakeVAD(level=self.level)

    def probabilities(self, samples: npt.NDArray[np.float32]) -> list[float]:
        audio = np.concatenate([self._pending, samples])
        n = len(audio) // self.window_samples
        self._pending = audio[n * self.window_samples :]
        windows = audio[: n * self.window_samples].reshape(n, self.window_samples)
        rms = np.sqrt(np.mean(windows**2, axis=1)) if n else np.zeros(0)
        return [0.95 if r > self.level else 0.02 for r in rms]


def fake_engines(
    stt: FakeSTT | None = None, llm: FakeChat | None = None, tts: FakeTTS | None = None
) -> Engines:
    """Engines made of fakes (each made with its defaults when not given)."""
    return Engines(stt=stt or FakeSTT(), llm=llm or FakeChat(), tts=tts or FakeTTS())


@dataclass
class FakeBackend:
    """Devices and models for terminal-UI tests: scripted engines; a microphone that plays
    ``mic_audio`` (16 kHz) at real-time pace then silence; a speaker that plays into
    nothing at real-time pace. Without ``mic_audio`` / ``speaker`` the UI is a typed chat."""

    make_engines: Callable[[], Engines] = field(default=lambda: fake_engines())
    mic_audio: npt.NDArray[np.float32] | None = None
    speaker: bool = False
    load_error: str | None = None
    """Loading fails with this message (as a missing model would)."""
    loads: int = 0
    rescans: int = 0
    timers: Any = field(default_factory=lambda: _timers())

    def probe(self, config: Any) -> Any:
        from ..ui.backend import Probe

        probe = Probe(
            mic="fake microphone" if self.mic_audio is not None else None,
            speaker="fake speaker" if self.speaker else None,
        )
        if probe.mic is None:
            probe.problems.append("no microphone (test)")
        if probe.speaker is None:
            probe.problems.append("no speaker (test)")
        return probe

    def forget_devices(self) -> None:
        pass

    def rescan(self, config: Any) -> Any:
        self.rescans += 1
        return self.probe(config)

    def devices(self, kind: str) -> list[tuple[str, str]]:
        name = "Test Microphone" if kind == "input" else "Test Speaker"
        return [(f"0: {name}", name)]

    def load(
        self, settings: Any, *, listen: bool, speak: bool, progress: Callable[[str], None]
    ) -> Engines:
        from ..errors import ModelError

        self.loads += 1
        progress("loading fake engines")
        if self.load_error:
            raise ModelError(self.load_error)
        engines = self.make_engines()
        if not listen:
            engines.vad = None
        elif engines.vad is None:
            engines.vad = FakeVAD()
        if not speak:
            engines.tts = None
        return engines

    def open_audio(self, config: Any, probe: Any, engines: Engines, notify: Any = None) -> Any:
        from ..adapters.virtual import VirtualSpeaker, paced_chunks
        from ..ui.backend import Audio

        rate = engines.tts.sample_rate_hz if engines.tts is not None else WHISPER_RATE_HZ
        chunks = None
        if self.mic_audio is not None:
            silence = np.zeros(WHISPER_RATE_HZ * 600, dtype=np.float32)
            chunks = paced_chunks(np.concatenate([self.mic_audio, silence]), WHISPER_RATE_HZ)
        return Audio(
            chunks=chunks,
            sample_rate_hz=WHISPER_RATE_HZ,
            speaker=VirtualSpeaker(rate),
            close=lambda: None,
        )

    def assistant(
        self, engines: Engines, settings: Any, conversation: Any, endpointing: Any
    ) -> Any:
        from ..assistant import Assistant

        return Assistant(
            engines, settings, conversation, endpointing, realtime=True, timers=self.timers
        )


def _timers() -> Any:
    from ..tools.timers import Timers

    return Timers()


async def run_stage(stage: Stage, frames: Iterable[Frame]) -> list[Frame]:
    """Feed ``frames`` to one stage the way the runner does, because it is the runner:
    control frames jump ahead of queued data, ``passes_while_busy`` frames go past the
    busy stage, a failure becomes ``TurnFailed``. Returns everything that came out, in
    the order the next stage would have seen it."""
    out: list[Frame] = []
    pipeline = Pipeline([stage])
    async with pipeline:

        async def read() -> None:
            async for frame in pipeline.frames():
                out.append(frame)

        reader = asyncio.create_task(read())
        for frame in frames:
            await pipeline.push(frame)
    await reader
    return out


async def collect(frames: AsyncIterator[Frame]) -> list[Frame]:
    """All frames of an async iterator (e.g. one turn of an Assistant)."""
    return [frame async for frame in frames]
