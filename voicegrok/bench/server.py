"""``voicegrok bench server``: ``voicegrok serve`` in-process and N websocket clients at
once, each asking one typed question: time to the first audio and to the end of the
response, aggregate speed, and memory per session."""

from __future__ import annotations

import math
import sys
import time
from typing import Any

from ..assistant import load_engines
from ..config import Settings
from .memory import UNAVAILABLE, pss_mb, rss_mb
from .stats import percentiles

__all__ = ["SERVER_QUESTIONS", "run_server_bench", "sessions_report"]

SERVER_QUESTIONS = (
    "What is the capital of France?",
    "Name three things to do in New York City.",
    "How do I boil an egg?",
    "What is a good name for a cat?",
)

Row = dict[str, float | str]
"""One client's response: ``status``, ``first_audio_ms``, ``written_ms`` (its last word
of text: the LLM is done), ``done_ms`` (its last audio), ``tokens``."""

_TEXT_DELTAS = ("response.output_audio_transcript.delta", "response.output_text.delta")


async def _ask(port: int, question: str) -> Row:
    """One websocket session asking ``question`` as typed text; times from response.create."""
    import json

    from websockets.asyncio.client import connect

    async with connect(f"ws://127.0.0.1:{port}/v1/realtime", max_size=None) as ws:
        await ws.recv()  # session.created
        item = {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": question}],
        }
        await ws.send(json.dumps({"type": "conversation.item.create", "item": item}))
        start = time.perf_counter()
        await ws.send(json.dumps({"type": "response.create"}))
        first_audio = None
        last_text = 0.0
        while True:
            event = json.loads(await ws.recv())
            if event["type"] == "response.output_audio.delta" and first_audio is None:
                first_audio = time.perf_counter() - start
            if event["type"] in _TEXT_DELTAS:
                last_text = time.perf_counter() - start
            if event["type"] == "response.done":
                return {
                    "status": event["response"]["status"],
                    "first_audio_ms": 1000 * (first_audio or float("nan")),
                    "written_ms": 1000 * last_text,
                    "done_ms": 1000 * (time.perf_counter() - start),
                    "tokens": event["response"]["usage"]["output_tokens"],
                }


def sessions_report(
    n: int,
    runs: int,
    rows: list[Row],
    peak_mb: float | None,
    loaded_mb: float | None,
    pss: tuple[float | None, float | None] = (None, None),
) -> dict[str, Any]:
    """The results of ``runs`` batches of ``n`` sessions at once (``rows``: every response),
    with the peak resident memory meanwhile and that with the models loaded (MB, None where
    it cannot be measured), and the same two of the proportional set size (``pss``, see
    :func:`~voicegrok.bench.memory.pss_mb`). Speed is the batches' tokens over their slowest
    responses (``aggregate_tokens_per_s``: to their last audio, paced by speech;
    ``..._decode_...``: to their last word written, the LLM's own pace)."""
    completed = [r for r in rows if r["status"] == "completed"]
    tokens = sum(float(r["tokens"]) for r in rows)

    def batches_s(key: str) -> float:
        return sum(
            max(float(r[key]) for r in rows[i : i + n]) / 1000 for i in range(0, len(rows), n)
        )

    wall_s, written_s = batches_s("done_ms"), batches_s("written_ms")
    return {
        "sessions": n,
        "runs": runs,
        "completed": len(completed),
        "first_audio_ms": percentiles(
            [v for r in completed if not math.isnan(v := float(r["first_audio_ms"]))]
        ),
        "completed_without_audio": sum(
            1 for r in completed if math.isnan(float(r["first_audio_ms"]))
        ),
        "response_done_ms": percentiles([float(r["done_ms"]) for r in completed]),
        "aggregate_tokens_per_s": round(tokens / wall_s, 1) if wall_s else 0.0,
        "aggregate_decode_tokens_per_s": round(tokens / written_s, 1) if written_s else 0.0,
        **_memory("rss", n, peak_mb, loaded_mb),
        **_memory("pss", n, *pss),
    }


def _memory(kind: str, n: int, peak: float | None, loaded: float | None) -> dict[str, Any]:
    return {
        f"{kind}_peak_mb": None if peak is None else round(peak, 1),
        f"{kind}_per_session_mb": None
        if peak is None or loaded is None
        else round((peak - loaded) / n, 2),
    }


class _Peaks:
    """The highest resident memory and PSS seen since it was made (MB, None: unmeasured).

    The PSS is read at every ``pss_every``-th look only: the kernel walks every mapping to
    sum it (5 ms here with the models loaded, against 0.02 ms for the resident set), and
    the looks run on the server's event loop."""

    pss_every = 10

    def __init__(self) -> None:
        self.rss: float | None = None
        self.pss: float | None = None
        self._looks = 0
        self.look()

    def look(self) -> None:
        self.rss = _higher(self.rss, rss_mb())
        if self._looks % self.pss_every == 0:
            self.pss = _higher(self.pss, pss_mb())
        self._looks += 1


def _higher(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


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

    from ..server.app import RealtimeServer, ServerOptions
    from ..server.session import Limits

    t = time.perf_counter()
    engines = load_engines(settings, vad=True, sessions=max(sessions))
    load_s = time.perf_counter() - t
    rss_loaded, pss_loaded = rss_mb(), pss_mb()
    results: dict[str, Any] = {}
    try:
        for n in sessions:
            options = ServerOptions(port=0, limits=Limits(max_sessions=max(n, 1)))
            rows: list[Row] = []
            peaks = _Peaks()
            async with RealtimeServer(engines, settings, options) as server:
                for run in range(runs):
                    tasks = [
                        asyncio.create_task(_ask(server.port, SERVER_QUESTIONS[(i + run) % 4]))
                        for i in range(n)
                    ]
                    while not all(task.done() for task in tasks):
                        await asyncio.sleep(0.1)
                        peaks.look()
                    rows += [task.result() for task in tasks]
            results[str(n)] = sessions_report(
                n, runs, rows, peaks.rss, rss_loaded, (peaks.pss, pss_loaded)
            )
            if progress:
                print(f"… {n} sessions done", file=sys.stderr, flush=True)
    finally:
        engines.close(wait=True)
    memory = {} if rss_loaded is not None else {"rss_missing": UNAVAILABLE}
    return {
        "benchmark": "server",
        "what": "N concurrent websocket sessions, one typed question each, spoken answers",
        "load_s": round(load_s, 2),
        "rss_models_loaded_mb": None if rss_loaded is None else round(rss_loaded, 1),
        "pss_models_loaded_mb": None if pss_loaded is None else round(pss_loaded, 1),
        "pss_what": "proportional set size: a page of a file mapped twice (the LLM and the "
        "model of the words read the same GGUF) counted once, unlike the resident set",
        **memory,
        "results": results,
    }
