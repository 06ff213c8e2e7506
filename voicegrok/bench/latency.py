"""``voicegrok bench latency``: what a person hears (``heard``: :func:`.heard.heard_of_talk`,
``voicegrok talk`` on virtual PulseAudio devices, from the last voiced sample written to
the microphone to the first sound of the answer on the speaker, with where the time went);
and, in this process, the live loop (VAD, end of turn, speech-to-text, LLM, clause
TTS, playback) hearing the recorded demo questions from a microphone that plays them at
real-time pace, and answering through a speaker that plays at real-time pace; the person
waits for each answer to finish before asking the next question, then interrupts one.
Afterwards the LLM answers each turn's prompt again with nothing else running
(:mod:`.baseline`), and each turn's speed in the loop is set against it."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..assistant import Assistant, load_engines
from ..config import Settings
from ..conversation import Conversation
from ..demo import demo_dir, demo_recordings
from .baseline import alone_on_each_turn, in_a_fresh_process
from .heard import heard_of_talk
from .memory import peak_rss_field
from .scripted import RATE_HZ, TimedSpeaker, person
from .stats import percentiles, ratios

__all__ = ["LIVE_METRICS", "TARGETS", "questions", "run_latency_bench"]

LIVE_METRICS = (
    "stt_ms",
    "llm_first_token_ms",
    "first_audio_ms",
    "first_audio_device_ms",
    "tokens_per_s",
)
"""The live loop's per-turn metrics the bench summarizes."""

TARGETS = {
    "heard_p50_ms": 400,
    "heard_p90_ms": 600,
    "first_audio_to_device_p50_ms": 500,
    "in_pipeline_vs_bare": 0.95,
    "barge_in_ms": 150,
}
"""What the live loop aims for, printed with the results."""


def questions(conversation: Conversation, n: int) -> list[Conversation]:
    """The history up to each of the first ``n`` questions of ``conversation``."""
    turns = conversation.turns
    return [
        Conversation(conversation.system_prompt, turns[: i + 1])
        for i, m in enumerate(turns)
        if m["role"] == "user"
    ][:n]


async def run_latency_bench(
    settings: Settings, *, runs: int = 3, progress: bool = True
) -> dict[str, Any]:
    """The demo's questions spoken into the live loop ``runs`` times (a new conversation each)."""
    from ..live import LiveSession

    def say(message: str) -> None:
        if progress:
            print(f"… {message}", file=sys.stderr, flush=True)

    recordings = [audio for _, audio in demo_recordings(demo_dir())]
    n = len(recordings)
    t = time.perf_counter()
    engines = load_engines(settings, vad=True)
    load_s = time.perf_counter() - t
    rows: list[dict[str, object]] = []
    barge_in_ms: list[float] = []
    barge_in_turns = 0
    asked: list[tuple[int, int, Conversation]] = []
    """(run, question, the conversation up to that question) of every turn"""
    try:
        for run in range(runs):
            async with Assistant(engines, settings, realtime=True) as assistant:
                speaker = TimedSpeaker(engines.tts.sample_rate_hz if engines.tts else 22050)
                done: list[dict[str, object]] = []
                session = LiveSession(assistant, speaker, on_metrics=done.append)
                await session.run(person(recordings, speaker, done, session), RATE_HZ)
                asked += [
                    (run + 1, i + 1, c) for i, c in enumerate(questions(assistant.conversation, n))
                ]
                rows += [dict(r, question=i + 1, run=run + 1) for i, r in enumerate(done[:n])]
                if speaker.stopped_s is not None and speaker.onset_s is not None:
                    barge_in_ms.append((speaker.stopped_s - speaker.onset_s) * 1000)
                barge_in_turns += sum(1 for r in done[n:] if r.get("interrupted"))
            say(f"run {run + 1}/{runs} done")
    finally:
        engines.close(wait=True)
    # llama-cpp-python and voicegrok's engine alone, on the same prompt as each live turn
    # (nothing to compare with when the LLM is another machine's: --llm-url)
    if settings.llm_url:
        asked = []
    alone = (
        in_a_fresh_process(alone_on_each_turn, settings, [c for _, _, c in asked]) if asked else []
    )
    # what a person hears: voicegrok talk in its own process, on virtual sound devices
    heard = await asyncio.to_thread(heard_of_talk, settings, runs, say)
    report = latency_report(
        settings,
        runs=runs,
        load_s=load_s,
        rows=rows,
        barge_in_ms=barge_in_ms,
        barge_in_turns=barge_in_turns,
        asked=[(run, question) for run, question, _ in asked],
        alone=alone,
    )
    return {**report, "heard": heard}


def latency_report(
    settings: Settings,
    *,
    runs: int,
    load_s: float,
    rows: list[dict[str, object]],
    barge_in_ms: list[float],
    barge_in_turns: int,
    asked: Sequence[tuple[int, int]],
    alone: Sequence[Mapping[str, Mapping[str, float]]],
) -> dict[str, Any]:
    """The bench's JSON. ``rows``: the live loop's metrics of each question's turn, with
    its ``run`` and ``question``; ``asked``: (run, question) of each turn answered again
    alone, and ``alone`` the :func:`.baseline.alone_on_each_turn` result for each."""
    values = {
        k: [float(v) for r in rows if isinstance(v := r.get(k), (int, float))] for k in LIVE_METRICS
    }
    live_tps = {
        (r["run"], r["question"]): float(v)
        for r in rows
        if isinstance(v := r.get("tokens_per_s"), float)
    }

    def live_against(which: str) -> dict[str, object]:
        return ratios(
            (question, live_tps.get((run, question)), by[which]["tokens_per_s"])
            for (run, question), by in zip(asked, alone, strict=True)
        )

    return {
        "benchmark": "latency",
        "what": "recorded questions through the live loop at real-time pace (virtual devices)",
        "runs": runs,
        "turns": len(rows),
        "interrupted": sum(1 for r in rows if r.get("interrupted")),
        "settings": {"threads": settings.threads, "max_tokens": settings.max_tokens},
        "load_s": round(load_s, 2),
        "from_end_of_speech_ms": {
            "final_transcript": percentiles(values["stt_ms"]),
            "first_llm_token": percentiles(values["llm_first_token_ms"]),
            "first_audio_made": percentiles(values["first_audio_ms"]),
            "first_audio_to_device": percentiles(values["first_audio_device_ms"]),
        },
        "barge_in_ms": {
            "what": "first sound of words spoken over an answer -> its playback stopped",
            **percentiles(barge_in_ms),
            "each": [round(v, 1) for v in barge_in_ms],
            "interrupted_turns": barge_in_turns,
        },
        "llm_in_pipeline_tokens_per_s": percentiles(values["tokens_per_s"]),
        "llm_bare": {
            "what": "llama-cpp-python's create_chat_completion with nothing else running, on "
            "the prompt of each live turn (the history it had then)",
            "tokens_per_s": percentiles([b["bare"]["tokens_per_s"] for b in alone]),
        },
        "llm_in_pipeline_vs_bare": {
            "what": "each turn's tokens/s in the live loop / llama-cpp-python bare, same prompt",
            **live_against("bare"),
        },
        "llm_engine_alone": {
            "what": "voicegrok's LLM engine with nothing else running, on the prompt of "
            "each live turn",
            "tokens_per_s": percentiles([b["engine"]["tokens_per_s"] for b in alone]),
        },
        "llm_in_pipeline_vs_engine_alone": {
            "what": "each turn's tokens/s in the live loop / the same engine alone, same prompt",
            **live_against("engine"),
        },
        "targets": dict(TARGETS),
        "per_turn": rows,
        **peak_rss_field(),
    }
