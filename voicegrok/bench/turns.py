"""``voicegrok bench turns``: false cut-offs against latency, for each end-of-turn policy.

Every clip of the turn-taking set (:mod:`.turn_set`) goes through the listening stage as
the live loop runs it: the real VAD, speech-to-text and end-of-turn model, fed 32 ms at a
time. Its decisions depend only on the audio (silence is counted in samples), so the clip
is fed as fast as the engines go, and each answer's release is placed in the audio:

- **cut off**: the answer was let out before the person had finished (in a pause);
- otherwise its **latency**: from the end of the last word to the release.

Transcripts and end-of-turn probabilities are kept per stretch of audio, so the policies
and the end-of-turn silences compared all hear the same decisions from the engines. The
report gives, per policy, the share of turns cut off and the latency p50/p90, as end-of-turn
benchmarks do ("% of turns cut off at a given latency").
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import models
from ..endpointing import EndpointConfig
from ..engines import SpeechToText, TurnDetector, WordsDetector
from ..frames import AudioChunk, TurnConfirmed, TurnStarted, UserText
from ..pipeline import Background
from ..stages.listen import ListenStage
from ..threads import EngineThread
from .stats import percentiles
from .turn_set import RATE, Clip, Voices, load_set, render

__all__ = ["Outcome", "Policy", "judge", "run_turns_bench"]

CHUNK = 512
THRESHOLDS = (0.7, 0.8, 0.9)
"""The end-of-turn model's thresholds compared (the default's among them)."""


@dataclass(frozen=True)
class Policy:
    name: str
    config: EndpointConfig
    model: bool
    """Whether the end-of-turn model is heard."""
    words: bool = False
    """Whether the model of the words is read where the voice leaves doubt."""


def policies() -> list[Policy]:
    """Each policy at the settings screen's three end-of-turn sensitivities."""
    from ..userconfig import SENSITIVITY_SILENCE_MS, UNSURE_SILENCE_MS

    out = []
    for label, end_ms in SENSITIVITY_SILENCE_MS.items():
        config = EndpointConfig(end_silence_ms=end_ms, unsure_end_ms=UNSURE_SILENCE_MS[label])
        out.append(Policy(f"smart-turn+words {label}", config, True, words=True))
        out.append(Policy(f"smart-turn {label}", config, True))
        for threshold in THRESHOLDS:
            if threshold != config.done_threshold:
                other = replace(config, done_threshold=threshold)
                out.append(Policy(f"smart-turn@{threshold} {label}", other, True))
        out.append(Policy(f"pause-and-words {label}", config, False))
    return out


@dataclass(frozen=True)
class Outcome:
    clip: str
    kind: str
    released_ms: float | None
    """When the answer was let out, from the end of the last word (negative: before it);
    None: never."""
    cut_off: bool
    text: str


class _Memo:
    """The engines' answers kept per stretch of audio (they are deterministic)."""

    def __init__(
        self, stt: SpeechToText, turn: TurnDetector | None, words: WordsDetector | None = None
    ) -> None:
        self.sample_rate_hz = stt.sample_rate_hz
        self._stt, self._turn, self._words = stt, turn, words
        self._texts: dict[bytes, str] = {}
        self._done: dict[bytes, float] = {}
        self._reads: dict[str, float] = {}

    @staticmethod
    def _key(audio: npt.NDArray[np.float32]) -> bytes:
        return hashlib.blake2b(audio.tobytes(), digest_size=16).digest()

    def transcribe(self, audio: npt.NDArray[np.float32], prefix: str = "") -> str:
        key = self._key(audio) + prefix.encode()
        if key not in self._texts:
            self._texts[key] = self._stt.transcribe(audio, prefix)
        return self._texts[key]

    def probability(self, audio: npt.NDArray[np.float32]) -> float:
        assert self._turn is not None
        key = self._key(audio)
        if key not in self._done:
            self._done[key] = self._turn.probability(audio)
        return self._done[key]

    def reads(self, text: str) -> float:
        assert self._words is not None
        if text not in self._reads:
            self._reads[text] = self._words.probability(text)
        return self._reads[text]


class _Words:
    """The memo's reading of the words, as a :class:`WordsDetector`."""

    def __init__(self, memo: _Memo) -> None:
        self.probability = memo.reads


async def judge(
    clip: Clip,
    vad: Any,
    stt: SpeechToText,
    turn: TurnDetector | None,
    config: EndpointConfig,
    threads: dict[str, EngineThread],
    words: WordsDetector | None = None,
) -> Outcome:
    """When ``clip``'s answer is let out under ``config`` (with ``turn`` and ``words``, or
    without)."""
    vad.reset()
    ids = iter(range(1, 1000))
    background = Background()
    stage = ListenStage(
        vad,
        stt,
        lambda: next(ids),
        config,
        vad_thread=threads["vad"],
        stt_thread=threads["stt"],
        partial_thread=threads["stt"],
        turn=turn,
        turn_thread=threads["turn"],
        words=words,
        background=background,
    )
    try:
        return await _released(clip, stage)
    finally:
        background.cancel()


async def _released(clip: Clip, stage: ListenStage) -> Outcome:
    texts: dict[int, str] = {}
    released: tuple[int, int] | None = None  # (turn id, samples fed)
    fed = 0
    for start in range(0, len(clip.audio), CHUNK):
        samples = clip.audio[start : start + CHUNK]
        fed += len(samples)
        chunk = AudioChunk(turn_id=0, samples=samples, sample_rate_hz=RATE, at_s=fed / RATE)
        async for frame in stage.process(chunk):
            if isinstance(frame, UserText) and frame.final:
                texts[frame.turn_id] = frame.text
            if released is None and (
                (isinstance(frame, TurnStarted) and not frame.tentative)
                or isinstance(frame, TurnConfirmed)
            ):
                released = (frame.turn_id, fed)
        if released is not None:  # the chunk's frames are all out: its text too
            at_ms = (released[1] - clip.speech_end) * 1000 / RATE
            text = texts.get(released[0], "")
            return Outcome(clip.name, clip.turn.kind, at_ms, at_ms < 0, text)
    return Outcome(clip.name, clip.turn.kind, None, False, "")


def summary(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    def of(rows: Sequence[Outcome]) -> dict[str, Any]:
        late = percentiles(
            (o.released_ms for o in rows if not o.cut_off and o.released_ms is not None),
            digits=0,
        )
        return {
            "turns": len(rows),
            "cut_off_pct": round(100 * sum(o.cut_off for o in rows) / max(1, len(rows)), 1),
            "never_released": sum(o.released_ms is None for o in rows),
            "latency_p50_ms": late.get("p50"),
            "latency_p90_ms": late.get("p90"),
        }

    out = of(outcomes)
    out["by_voice"] = {
        voice: of([o for o in outcomes if o.clip.startswith(voice + " ")])
        for voice in sorted({o.clip.split(" ")[0] for o in outcomes})
    }
    out["cut_off_in_pauses_pct"] = of([o for o in outcomes if o.kind != "finished"])["cut_off_pct"]
    out["by_kind"] = {
        kind: of([o for o in outcomes if o.kind == kind])
        for kind in sorted({o.kind for o in outcomes})
    }
    return out


def run_turns_bench(
    *,
    set_path: Path | None = None,
    turn_model: str | None = None,
    stt_model: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Blocking: renders the set, then judges every clip under every policy."""
    from ..engines.silero import SileroVAD
    from ..engines.smart_turn import SmartTurn
    from ..engines.text_turn import TextTurn
    from ..engines.whisper import WhisperEngine

    say: Callable[[str], None] = (
        (lambda m: print(m, file=sys.stderr, flush=True)) if progress else (lambda m: None)
    )
    turn_set = load_set(set_path)
    voices = Voices(models.resolve("tts"))
    pairs = [(t, v) for t, v in turn_set.pairs() if voices.available(v)]
    skipped = sorted({v for _, v in turn_set.pairs() if not voices.available(v)})
    say(
        f"rendering {len(pairs)} clips"
        + (f" (no espeak-ng: {skipped} left out)" if skipped else "")
    )
    clips = [render(t, v, voices, seed=i) for i, (t, v) in enumerate(pairs)]
    memo = _Memo(
        WhisperEngine(models.resolve("stt", stt_model)),
        SmartTurn(models.resolve("turn", turn_model)),
        TextTurn(models.resolve("llm")),
    )
    vad = SileroVAD(models.resolve("vad"))
    threads = {k: EngineThread(k) for k in ("vad", "stt", "turn")}
    report: dict[str, Any] = {"clips": len(clips), "voices": sorted({c.voice for c in clips})}
    rows: dict[str, list[Outcome]] = {}
    t0 = time.perf_counter()

    async def run_all() -> None:
        for policy in policies():
            outcomes = []
            for clip in clips:
                outcomes.append(
                    await judge(
                        clip,
                        vad,
                        memo,
                        memo if policy.model else None,
                        policy.config,
                        threads,
                        _Words(memo) if policy.words else None,
                    )
                )
            rows[policy.name] = outcomes
            s = summary(outcomes)
            say(
                f"{policy.name}: cut off {s['cut_off_pct']}%, latency p50 "
                f"{s['latency_p50_ms']} ms, p90 {s['latency_p90_ms']} ms"
            )

    try:
        asyncio.run(run_all())
    finally:
        for t in threads.values():
            t.close()
    report["policies"] = {
        name: {**summary(o), "end_silence_ms": p.config.end_silence_ms}
        for (name, o), p in zip(rows.items(), policies(), strict=True)
    }
    report["cut_off_clips"] = {
        name: [f"{o.clip} (at {o.released_ms:.0f} ms: {o.text!r})" for o in outs if o.cut_off]
        for name, outs in rows.items()
        if name.endswith("normal")
    }
    report["seconds"] = round(time.perf_counter() - t0, 1)
    return report
