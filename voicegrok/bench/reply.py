"""``voicegrok bench reply``: whole recorded questions handed to the pipeline (no VAD, no
pacing), then the first question asked of llama-cpp-python alone (:mod:`.baseline`)."""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

from ..assistant import Assistant, load_engines
from ..config import Settings
from ..demo import demo_dir, demo_recordings
from ..frames import TurnFailed, TurnMetrics, UserText
from .baseline import bare_tokens_per_s, in_a_fresh_process
from .memory import peak_rss_field
from .scripted import RATE_HZ
from .stats import percentiles

__all__ = ["METRICS", "run_reply_bench"]

METRICS = (
    "stt_ms",
    "llm_first_token_ms",
    "first_clause_ms",
    "tts_first_audio_ms",
    "first_audio_ms",
    "total_ms",
    "tokens_per_s",
)
"""The pipeline's per-turn metrics the bench summarizes."""


async def run_reply_bench(
    settings: Settings, *, runs: int = 3, progress: bool = True
) -> dict[str, Any]:
    """Run the demo's recorded questions ``runs`` times (a fresh conversation each run)."""

    recordings = [audio for _, audio in demo_recordings(demo_dir())]
    t = time.perf_counter()
    engines = load_engines(settings)
    load_s = time.perf_counter() - t
    samples: dict[str, list[float]] = {k: [] for k in METRICS}
    first_turn: dict[str, list[float]] = {k: [] for k in METRICS}
    in_pipeline_tps: list[float] = []
    failures = 0
    transcript = ""
    try:
        for run in range(runs):
            async with Assistant(engines, settings) as assistant:
                for i, audio in enumerate(recordings):
                    metrics = None
                    async for frame in assistant.reply(audio, RATE_HZ):
                        if isinstance(frame, UserText) and i == 0:
                            transcript = frame.text
                        elif isinstance(frame, TurnMetrics):
                            metrics = frame
                        elif isinstance(frame, TurnFailed):
                            failures += 1
                    if metrics is None:
                        continue
                    d = metrics.as_dict()
                    for k in METRICS:
                        v = d[k]
                        if isinstance(v, (int, float)):
                            samples[k].append(float(v))
                            if i == 0:
                                first_turn[k].append(float(v))
                    if i == 0:
                        in_pipeline_tps.append(metrics.tokens_per_s)
            if progress:
                print(f"… run {run + 1}/{runs} done", file=sys.stderr, flush=True)
    finally:
        engines.close(wait=True)
    bare = (
        in_a_fresh_process(bare_tokens_per_s, settings, transcript)
        if transcript and not settings.llm_url
        else {}
    )
    pipe_tps = statistics.median(in_pipeline_tps) if in_pipeline_tps else 0.0
    return {
        "benchmark": "reply",
        "what": "recorded demo questions -> STT -> LLM -> clause TTS, whole pipeline in-process",
        "runs": runs,
        "turns": len(recordings) * runs,
        "failures": failures,
        "settings": {
            "threads": settings.threads,
            "max_tokens": settings.max_tokens,
            "temperature": settings.temperature,
            "beam_size": settings.beam_size,
        },
        "models": {
            "stt": str(settings.stt_model),
            "llm": str(settings.llm_model)
            + (f" at {settings.llm_url}" if settings.llm_url else ""),
            "tts": str(settings.voice),
        },
        "load_s": round(load_s, 2),
        "engine_load_s": {k: round(v, 2) for k, v in engines.load_s.items()},
        "all_turns": {k: percentiles(v) for k, v in samples.items()},
        "first_turn": {k: percentiles(v) for k, v in first_turn.items()},
        "llm_bare": bare,
        "llm_in_pipeline_tokens_per_s": round(pipe_tps, 1),
        "llm_in_pipeline_vs_bare": round(pipe_tps / bare["tokens_per_s"], 3)
        if bare.get("tokens_per_s")
        else None,
        **peak_rss_field(),
    }
