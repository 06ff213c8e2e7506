"""``voicegrok bench``: per-stage latency of voice turns; LLM speed bare vs in the pipeline.

- ``latency``: the live loop (VAD, end of turn, speech-to-text, LLM, clause TTS, playback)
  hearing the recorded demo questions from a microphone that plays them at real-time pace,
  and answering through a speaker that plays at real-time pace; the person waits for each
  answer to finish before asking the next question.
- ``reply``: whole recorded utterances handed to the pipeline (no VAD, no pacing).
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from .adapters.virtual import VirtualSpeaker
from .assistant import Assistant, load_engines
from .audio import load_audio
from .config import Settings
from .conversation import Conversation, Message
from .engines.llama import REPEAT_PENALTY, TOP_P
from .frames import TurnFailed, TurnMetrics, UserText

T = TypeVar("T")


def _in_a_fresh_process(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a new Python process: the bare figures are those of a program that
    runs only the LLM. In the bench's own process, after the live loop, the same run is a
    quarter slower (measured: 67-90 tokens/s instead of 103 while the engines are loaded,
    86-100 once closed): the other engines' OpenMP and onnxruntime thread pools are still
    there, and llama.cpp's workers wait for each other's wake-ups."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


_METRICS = (
    "stt_ms",
    "llm_first_token_ms",
    "tts_first_audio_ms",
    "first_audio_ms",
    "total_ms",
    "tokens_per_s",
)


def _percentiles(values: list[float], digits: int = 1) -> dict[str, float]:
    values = sorted(values)
    if not values:
        return {}

    def pick(q: float) -> float:
        return round(values[min(len(values) - 1, round(q * (len(values) - 1)))], digits)

    return {
        "p50": round(statistics.median(values), digits),
        "p90": pick(0.9),
        "min": round(values[0], digits),
        "max": round(values[-1], digits),
        "n": len(values),
    }


def _bare_tokens_per_s(settings: Settings, question: str, runs: int = 3) -> dict[str, Any]:
    """The same model, prompt and threads driven by llama-cpp-python's own
    ``create_chat_completion``. Call it in a fresh process (:func:`_in_a_fresh_process`).

    The median of ``runs`` runs: on a shared 2-core machine one run moves between 90 and
    115 tokens/s from minute to minute, which alone would swing the ratio by a quarter."""
    results = [_bare_run(settings, question) for _ in range(runs)]
    median = sorted(results, key=lambda r: r["tokens_per_s"])[len(results) // 2]
    return dict(median, runs_tokens_per_s=[r["tokens_per_s"] for r in results])


def _bare_llama(settings: Settings) -> Any:
    """The model as llama-cpp-python loads it, with the pipeline's context and threads."""
    from llama_cpp import Llama

    from . import models

    return Llama(
        model_path=str(models.resolve("llm", settings.llm_model)),
        n_ctx=settings.n_ctx,
        n_threads=settings.threads,
        seed=settings.seed,
        verbose=False,
    )


def _bare_answer(llm: Any, settings: Settings, messages: list[Message]) -> dict[str, float]:
    """Tokens/s of ``create_chat_completion`` answering ``messages`` with the pipeline's
    sampling settings."""
    return _timed(
        chunk["choices"][0]["delta"].get("content")
        for chunk in llm.create_chat_completion(
            messages=[dict(m) for m in messages],
            stream=True,
            max_tokens=settings.max_tokens,
            temperature=settings.temperature,
            top_p=TOP_P,
            repeat_penalty=REPEAT_PENALTY,
            seed=settings.seed,
        )
    )


def _bare_run(settings: Settings, question: str) -> dict[str, float]:
    conv = Conversation(settings.system_prompt)
    conv.add_user(question)
    return _bare_answer(_bare_llama(settings), settings, conv.messages())


def _timed(pieces: Iterable[str | None]) -> dict[str, float]:
    """Tokens/s of a stream of answer pieces (from the first to the last), first token."""
    start = time.perf_counter()
    first = last = 0.0
    n = 0
    for piece in pieces:
        if piece:
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


def _alone_on_each_turn(settings: Settings, asked: list[Conversation]) -> list[dict[str, Any]]:
    """Each of ``asked`` (the conversations the pipeline answered, each ending with a
    question, trimmed as the LLM stage trims them) answered with nothing else running (call
    it in a fresh process): by llama-cpp-python's own ``create_chat_completion`` (``bare``)
    and by voicegrok's LLM engine (``engine``), the same model, prompt and threads. The
    pipeline's figure against these is what the rest of the live loop costs the LLM.

    Both run on the one thread that calls this (as the pipeline's LLM runs on one), so
    llama.cpp keeps one OpenMP pool: a second one makes its workers stop spinning between
    operations."""
    from . import models
    from .engines.llama import LlamaEngine

    path = models.resolve("llm", settings.llm_model)
    engine = LlamaEngine(path, n_ctx=settings.n_ctx, threads=settings.threads, seed=settings.seed)
    bare = _bare_llama(settings)
    out = []
    for conversation in asked:
        messages = conversation.messages(engine.count_tokens, engine.n_ctx - settings.max_tokens)
        engine.warm_up(messages[:1])  # the system prompt, as in the pipeline
        mine = _timed(
            engine.stream_chat(
                messages, max_tokens=settings.max_tokens, temperature=settings.temperature
            )
        )
        out.append({"engine": mine, "bare": _bare_answer(bare, settings, messages)})
    return out


def _questions(conversation: Conversation, n: int) -> list[Conversation]:
    """The history up to each of the first ``n`` questions of ``conversation``."""
    turns = conversation.turns
    return [
        Conversation(conversation.system_prompt, turns[: i + 1])
        for i, m in enumerate(turns)
        if m["role"] == "user"
    ][:n]


_LIVE_METRICS = (
    "stt_ms",
    "llm_first_token_ms",
    "first_audio_ms",
    "first_audio_device_ms",
    "tokens_per_s",
)


class _TimedSpeaker(VirtualSpeaker):
    """A virtual speaker that notes when playback is first stopped after ``onset_s`` (also
    when it had just run dry between two clauses: the answer is stopped all the same)."""

    onset_s: float | None = None
    stopped_s: float | None = None

    def clear(self) -> None:
        now = time.perf_counter()
        if self.onset_s is not None and self.stopped_s is None and now >= self.onset_s:
            self.stopped_s = now
        super().clear()


async def run_latency_bench(
    settings: Settings, *, runs: int = 3, progress: bool = True
) -> dict[str, Any]:
    """The demo's questions spoken into the live loop ``runs`` times (a new conversation each)."""
    import asyncio

    import numpy as np

    from .adapters.virtual import paced_chunks
    from .cli import demo_dir
    from .live import LiveSession

    files = sorted(demo_dir().glob("turn*.wav"))
    recordings = [load_audio(f) for f in files]
    t = time.perf_counter()
    engines = load_engines(settings, vad=True)
    load_s = time.perf_counter() - t
    rows: list[dict[str, object]] = []
    barge_in_ms: list[float] = []
    barge_in_turns = 0
    asked: list[tuple[int, int, Conversation]] = []
    """(run, question, the conversation up to that question) of every turn"""
    silence = np.zeros(16000 * 20 // 1000, dtype=np.float32)
    try:
        for run in range(runs):
            async with Assistant(engines, settings, realtime=True) as assistant:
                speaker = _TimedSpeaker(engines.tts.sample_rate_hz if engines.tts else 22050)
                done: list[dict[str, object]] = []
                session = LiveSession(assistant, speaker, on_metrics=done.append)

                async def listen(
                    turns: int, done: list[dict[str, object]] = done, session: LiveSession = session
                ) -> Any:
                    """Silence until ``turns`` rows are written (the answer has been heard),
                    or 3 s with no answer going on (a turn that failed writes none). A whole
                    answer of ``max_tokens`` is heard (400 tokens: about two minutes)."""
                    waited = idle = 0.0
                    while len(done) < turns and waited < 240 and idle < 3.0:
                        yield silence
                        await asyncio.sleep(0.02)
                        waited += 0.02
                        idle = 0.0 if session.answering else idle + 0.02

                async def person(speaker: _TimedSpeaker = speaker) -> Any:
                    for i, audio in enumerate(recordings):
                        question = np.concatenate([np.zeros(8000, np.float32), audio])
                        async for chunk in paced_chunks(question, 16000):
                            yield chunk
                        async for chunk in listen(i + 1):
                            yield chunk
                    # barge-in: the second question again, and 1.5 s into its answer the
                    # fourth, spoken over it
                    async for chunk in paced_chunks(recordings[1], 16000):
                        yield chunk
                    waited = heard = 0.0
                    while heard < 1.5 and waited < 30:
                        yield silence
                        await asyncio.sleep(0.02)
                        waited += 0.02
                        if speaker.buffered_s:
                            heard += 0.02
                        elif heard:
                            break  # a short answer, over already
                    over = recordings[3]
                    onset = int(np.argmax(np.abs(over) > 0.02))  # first sound of the words
                    speaker.onset_s = time.perf_counter() + onset / 16000
                    async for chunk in paced_chunks(over, 16000):
                        yield chunk
                    async for chunk in listen(len(recordings) + 2):
                        yield chunk
                    for _ in range(25):
                        yield silence
                        await asyncio.sleep(0.02)

                await session.run(person(), 16000)
                questions = _questions(assistant.conversation, len(files))
                asked += [(run + 1, i + 1, c) for i, c in enumerate(questions)]
                rows += [
                    dict(r, question=i + 1, run=run + 1) for i, r in enumerate(done[: len(files)])
                ]
                interrupted = [r for r in done[len(files) :] if r.get("interrupted")]
                if speaker.stopped_s is not None and speaker.onset_s is not None:
                    barge_in_ms.append((speaker.stopped_s - speaker.onset_s) * 1000)
                barge_in_turns += len(interrupted)
            if progress:
                print(f"… run {run + 1}/{runs} done", file=sys.stderr, flush=True)
    finally:
        engines.close(wait=True)
    values = {
        k: [float(v) for r in rows if isinstance(v := r.get(k), (int, float))]
        for k in _LIVE_METRICS
    }
    # llama-cpp-python and voicegrok's engine alone, on the same prompt as each live turn
    alone = _in_a_fresh_process(_alone_on_each_turn, settings, [c for _, _, c in asked])
    live_tps = {
        (r["run"], r["question"]): float(v)
        for r in rows
        if isinstance(v := r.get("tokens_per_s"), float)
    }

    def live_against(which: str) -> dict[str, Any]:
        ratios: dict[int, list[float]] = {}
        for (run, question, _), by in zip(asked, alone, strict=True):
            live, solo = live_tps.get((run, question)), by[which]["tokens_per_s"]
            if live is not None and solo:
                ratios.setdefault(question, []).append(live / solo)
        return {
            **_percentiles([r for q in ratios.values() for r in q], digits=3),
            "per_question_p50": {
                str(q): round(statistics.median(v), 3) for q, v in sorted(ratios.items())
            },
        }

    return {
        "benchmark": "latency",
        "what": "recorded questions through the live loop at real-time pace (virtual devices)",
        "runs": runs,
        "turns": len(rows),
        "interrupted": sum(1 for r in rows if r.get("interrupted")),
        "settings": {"threads": settings.threads, "max_tokens": settings.max_tokens},
        "load_s": round(load_s, 2),
        "from_end_of_speech_ms": {
            "final_transcript": _percentiles(values["stt_ms"]),
            "first_llm_token": _percentiles(values["llm_first_token_ms"]),
            "first_audio_made": _percentiles(values["first_audio_ms"]),
            "first_audio_to_device": _percentiles(values["first_audio_device_ms"]),
        },
        "barge_in_ms": {
            "what": "first sound of words spoken over an answer -> its playback stopped",
            **_percentiles(barge_in_ms),
            "each": [round(v, 1) for v in barge_in_ms],
            "interrupted_turns": barge_in_turns,
        },
        "llm_in_pipeline_tokens_per_s": _percentiles(values["tokens_per_s"]),
        "llm_bare": {
            "what": "llama-cpp-python's create_chat_completion with nothing else running, on "
            "the prompt of each live turn (the history it had then)",
            "tokens_per_s": _percentiles([b["bare"]["tokens_per_s"] for b in alone]),
        },
        "llm_in_pipeline_vs_bare": {
            "what": "each turn's tokens/s in the live loop / llama-cpp-python bare, same prompt",
            **live_against("bare"),
        },
        "llm_engine_alone": {
            "what": "voicegrok's LLM engine with nothing else running, on the prompt of "
            "each live turn",
            "tokens_per_s": _percentiles([b["engine"]["tokens_per_s"] for b in alone]),
        },
        "llm_in_pipeline_vs_engine_alone": {
            "what": "each turn's tokens/s in the live loop / the same engine alone, same prompt",
            **live_against("engine"),
        },
        "targets": {
            "first_audio_to_device_p50_ms": 500,
            "in_pipeline_vs_bare": 0.95,
            "barge_in_ms": 150,
        },
        "per_turn": rows,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
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
        engines.close(wait=True)
    bare = _in_a_fresh_process(_bare_tokens_per_s, settings, transcript) if transcript else {}
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


def _rss_mb() -> float:
    """Resident memory of this process now (MB; Linux), else its peak."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        import os

        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


SERVER_QUESTIONS = (
    "What is the capital of France?",
    "Name three things to do in New York City.",
    "How do I boil an egg?",
    "What is a good name for a cat?",
)


async def run_server_bench(
    settings: Settings,
    *,
    sessions: tuple[int, ...] = (1, 20),
    runs: int = 3,
    progress: bool = True,
) -> dict[str, Any]:
    """``voicegrok serve`` in-process; N websocket clients at once, each asking one typed
    question, ``runs`` times: time to the first audio delta and to response.done, and
    memory."""
    import asyncio
    import json

    from websockets.asyncio.client import connect

    from .server.app import RealtimeServer, ServerOptions
    from .server.session import Limits

    t = time.perf_counter()
    engines = load_engines(settings, vad=True)
    load_s = time.perf_counter() - t
    rss_loaded = _rss_mb()
    results: dict[str, Any] = {}

    async def client(port: int, question: str) -> dict[str, float | str]:
        async with connect(f"ws://127.0.0.1:{port}/v1/realtime", max_size=None) as ws:
            await ws.recv()  # session.created
            item = {"type": "message", "role": "user"}
            item["content"] = [{"type": "input_text", "text": question}]  # type: ignore[assignment]
            await ws.send(json.dumps({"type": "conversation.item.create", "item": item}))
            start = time.perf_counter()
            await ws.send(json.dumps({"type": "response.create"}))
            first_audio = None
            while True:
                event = json.loads(await ws.recv())
                if event["type"] == "response.output_audio.delta" and first_audio is None:
                    first_audio = time.perf_counter() - start
                if event["type"] == "response.done":
                    return {
                        "status": event["response"]["status"],
                        "first_audio_ms": 1000 * (first_audio or float("nan")),
                        "done_ms": 1000 * (time.perf_counter() - start),
                        "tokens": event["response"]["usage"]["output_tokens"],
                    }

    try:
        for n in sessions:
            options = ServerOptions(port=0, limits=Limits(max_sessions=max(n, 1)))
            rows: list[dict[str, float | str]] = []
            tokens = wall_s = 0.0
            peak = _rss_mb()
            async with RealtimeServer(engines, settings, options) as server:
                for run in range(runs):
                    tasks = [
                        asyncio.create_task(client(server.port, SERVER_QUESTIONS[(i + run) % 4]))
                        for i in range(n)
                    ]
                    while not all(task.done() for task in tasks):
                        await asyncio.sleep(0.1)
                        peak = max(peak, _rss_mb())
                    batch = [task.result() for task in tasks]
                    rows += batch
                    tokens += sum(float(r["tokens"]) for r in batch)
                    wall_s += max(float(r["done_ms"]) for r in batch) / 1000
            completed = [r for r in rows if r["status"] == "completed"]
            results[str(n)] = {
                "sessions": n,
                "runs": runs,
                "completed": len(completed),
                "first_audio_ms": _percentiles([float(r["first_audio_ms"]) for r in completed]),
                "response_done_ms": _percentiles([float(r["done_ms"]) for r in completed]),
                "aggregate_tokens_per_s": round(tokens / wall_s, 1) if wall_s else 0.0,
                "rss_peak_mb": round(peak, 1),
                "rss_per_session_mb": round((peak - rss_loaded) / n, 2),
            }
            if progress:
                print(f"… {n} sessions done", file=sys.stderr, flush=True)
    finally:
        engines.close(wait=True)
    return {
        "benchmark": "server",
        "what": "N concurrent websocket sessions, one typed question each, spoken answers",
        "load_s": round(load_s, 2),
        "rss_models_loaded_mb": round(rss_loaded, 1),
        "results": results,
    }
