"""The LLM with nothing else running: what the bench compares the pipeline's speed with.

Everything here runs in a fresh process (:func:`in_a_fresh_process`), with the model,
prompt, sampling settings and threads of the pipeline: llama-cpp-python's own
``create_chat_completion`` (*bare*) and voicegrok's LLM engine (*engine alone*).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ..config import Settings
from ..conversation import Conversation, Message
from ..engines.llama import REPEAT_PENALTY, TOP_P
from ..frames import decode_rate

__all__ = [
    "alone_on_each_turn",
    "bare_tokens_per_s",
    "in_a_fresh_process",
    "median_run",
    "timed",
]

T = TypeVar("T")


def in_a_fresh_process(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a new Python process (``fn`` and ``args`` must pickle): the bare
    figures are those of a program that runs only the LLM. In the bench's own process,
    after the live loop, the same run is markedly slower, even once the engines are closed:
    the other engines' OpenMP and onnxruntime thread pools are still there, and llama.cpp's
    workers wait for each other's wake-ups."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def timed(
    pieces: Iterable[str | None], clock: Callable[[], float] = time.perf_counter
) -> dict[str, float]:
    """Tokens/s of a stream of answer pieces (from the first piece to the last, empty
    pieces not counted), the time to the first piece (ms) and the number of pieces."""
    start = clock()
    first = last = 0.0
    n = 0
    for piece in pieces:
        if piece:
            now = clock()
            if n == 0:
                first = now
            last = now
            n += 1
    tps = decode_rate(n, first, last)
    return {
        "tokens_per_s": round(tps, 1),
        "first_token_ms": round((first - start) * 1000, 1),
        "n_tokens": n,
    }


def median_run(results: list[dict[str, float]]) -> dict[str, Any]:
    """The run of median tokens/s among ``results`` (the upper one of an even number), with
    every run's tokens/s in ``runs_tokens_per_s``."""
    median = sorted(results, key=lambda r: r["tokens_per_s"])[len(results) // 2]
    return dict(median, runs_tokens_per_s=[r["tokens_per_s"] for r in results])


def bare_tokens_per_s(settings: Settings, question: str, runs: int = 3) -> dict[str, Any]:
    """``question`` asked of llama-cpp-python ``runs`` times, each on a newly loaded model:
    the :func:`median_run`. One run alone moves with the load of a shared machine from
    minute to minute, enough to swing the pipeline's ratio to it noticeably."""
    results = [_bare_run(settings, question) for _ in range(runs)]
    return median_run(results)


def _bare_llama(settings: Settings) -> Any:
    """The model as llama-cpp-python loads it, with the pipeline's context and threads."""
    from llama_cpp import Llama

    from .. import models
    from ..engines.llama_check import extra_buffers_ok, plain_cpu_kernels
    from ..engines.llama_copy import working_copy

    # the weights the pipeline loads (a Q4_1 model's Q8_0 copy), for a fair ratio
    path = working_copy(models.resolve("llm", settings.llm_model))
    with contextlib.nullcontext() if extra_buffers_ok(path) else plain_cpu_kernels():
        return Llama(
            model_path=str(path),
            n_ctx=settings.n_ctx,
            n_threads=settings.threads,
            seed=settings.seed,
            verbose=False,
        )


def _bare_answer(llm: Any, settings: Settings, messages: list[Message]) -> dict[str, float]:
    """:func:`timed` ``create_chat_completion`` answering ``messages`` with the pipeline's
    sampling settings."""
    return timed(
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


def alone_on_each_turn(settings: Settings, asked: list[Conversation]) -> list[dict[str, Any]]:
    """Each of ``asked`` (the conversations the pipeline answered, each ending with a
    question, trimmed as the LLM stage trims them) answered with nothing else running:
    by llama-cpp-python's own ``create_chat_completion`` (``bare``) and by voicegrok's LLM
    engine (``engine``), each as :func:`timed` gives it. The pipeline's figure against
    these is what the rest of the live loop costs the LLM.

    Both run on the one thread that calls this (as the pipeline's LLM runs on one), so
    llama.cpp keeps one OpenMP pool: a second one makes its workers stop spinning between
    operations."""
    from .. import models
    from ..engines.llama import LlamaEngine

    path = models.resolve("llm", settings.llm_model)
    engine = LlamaEngine(path, n_ctx=settings.n_ctx, threads=settings.threads, seed=settings.seed)
    bare = _bare_llama(settings)
    out = []
    for conversation in asked:
        messages = conversation.messages(engine.count_tokens, engine.n_ctx - settings.max_tokens)
        engine.warm_up(messages[:1])  # the system prompt, as in the pipeline
        mine = timed(
            engine.stream_chat(
                messages, max_tokens=settings.max_tokens, temperature=settings.temperature
            )
        )
        out.append({"engine": mine, "bare": _bare_answer(bare, settings, messages)})
    return out
