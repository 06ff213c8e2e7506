"""``voicegrok bench``: per-stage latency of voice turns; LLM speed bare vs in the pipeline."""

from __future__ import annotations

import resource
import statistics
import sys
import time
from typing import Any

from .assistant import Assistant, load_engines
from .audio import load_audio
from .config import Settings
from .frames import TurnFailed, TurnMetrics, UserText

_METRICS = (
    "stt_ms",
    "llm_first_token_ms",
    "tts_first_audio_ms",
    "first_audio_ms",
    "total_ms",
    "tokens_per_s",
)


def _percentiles(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    if not values:
        return {}

    def pick(q: float) -> float:
        return round(values[min(len(values) - 1, round(q * (len(values) - 1)))], 1)

    return {
        "p50": round(statistics.median(values), 1),
        "p90": pick(0.9),
        "min": values[0],
        "max": values[-1],
        "n": len(values),
    }


def _bare_tokens_per_s(settings: Settings, question: str) -> dict[str, float]:
    """The same model, prompt and threads driven directly by llama-cpp-python."""
    from llama_cpp import Llama

    from . import models
    from .conversation import Conversation

    llm: Any = Llama(
        model_path=str(models.resolve("llm", settings.llm_model)),
        n_ctx=settings.n_ctx,
        n_threads=settings.threads,
        seed=settings.seed,
        verbose=False,
    )
    conv = Conversation(settings.system_prompt)
    conv.add_user(question)
    start = time.perf_counter()
    first = last = 0.0
    n = 0
    for chunk in llm.create_chat_completion(
        messages=[dict(m) for m in conv.messages()],
        stream=True,
        max_tokens=settings.max_tokens,
        temperature=settings.temperature,
        top_p=0.9,
        repeat_penalty=1.15,
        seed=settings.seed,
    ):
        if chunk["choices"][0]["delta"].get("content"):
            now = time.perf_counter()
            if n == 0:
                first = now
            last = now
            n += 1
    tps = (n - 1) / (last - first) if n > 1 and last > first else 0.0
    return {
        "tokens_per_s": round(tps, 1),
        "first_token_ms": round((first - start) * 1000, 1),
        "n_tokens": n,
    }


async def run_reply_bench(
    settings: Settings, *, runs: int = 3, progress: bool = True
) -> dict[str, Any]:
    """Run the demo's recorded questions ``runs`` times (a fresh conversation each run)."""
    from .cli import demo_dir

    files = sorted(demo_dir().glob("turn*.wav"))
    recordings = [load_audio(f) for f in files]
    t = time.perf_counter()
    engines = load_engines(settings)
    load_s = time.perf_counter() - t
    samples: dict[str, list[float]] = {k: [] for k in _METRICS}
    first_turn: dict[str, list[float]] = {k: [] for k in _METRICS}
    in_pipeline_tps: list[float] = []
    failures = 0
    transcript = ""
    try:
        for run in range(runs):
            async with Assistant(engines, settings) as assistant:
                for i, audio in enumerate(recordings):
                    metrics = None
                    async for frame in assistant.reply(audio, 16000):
                        if isinstance(frame, UserText) and i == 0:
                            transcript = frame.text
                        elif isinstance(frame, TurnMetrics):
                            metrics = frame
                        elif isinstance(frame, TurnFailed):
                            failures += 1
                    if metrics is None:
                        continue
                    d = metrics.as_dict()
                    for k in _METRICS:
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
        engines.close()
    bare = _bare_tokens_per_s(settings, transcript) if transcript else {}
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
            k: str(v)
            for k, v in {
                "stt": settings.stt_model,
                "llm": settings.llm_model,
                "tts": settings.voice,
            }.items()
        },
        "load_s": round(load_s, 2),
        "engine_load_s": {k: round(v, 2) for k, v in engines.load_s.items()},
        "all_turns": {k: _percentiles(v) for k, v in samples.items()},
        "first_turn": {k: _percentiles(v) for k, v in first_turn.items()},
        "llm_bare": bare,
        "llm_in_pipeline_tokens_per_s": round(pipe_tps, 1),
        "llm_in_pipeline_vs_bare": round(pipe_tps / bare["tokens_per_s"], 3)
        if bare.get("tokens_per_s")
        else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
