"""``voicegrok bench speculative``: the LLM's decoding speed with and without guesses.

The itinerary demo (four turns of one conversation: an itinerary, then the same as a table,
with a cost column, then Atlanta too) and a few short questions are answered greedily by one
engine, once per drafter, the drafters taking turns on each prompt (none, prompt lookup,
the draft model). Each prompt's history is the plain engine's own answers, so every
drafter sees the same prompts; greedy answers must be the same text, and the report says
whether they were. Tokens/s count from the first token to the last (the prompt's
evaluation is the same for all), and each drafter's figure is given as a ratio to none's.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import replace
from typing import Any

from .. import models
from ..config import Settings
from ..conversation import Conversation
from ..engines.llama import LlamaEngine
from ..engines.speculative import Drafter, PromptLookup
from ..errors import ModelError
from ..loading import drafter
from .qa_cases import DEMO_TURNS

__all__ = ["run_speculative_bench"]

QUESTIONS = (
    "What is the capital of Australia?",
    "Why is the sky blue? Answer in two sentences.",
    "List the planets of the solar system.",
)
DRAFT_MODEL = "qwen2.5-coder-0.5b"


def _answer(engine: LlamaEngine, conversation: Conversation, max_tokens: int) -> dict[str, Any]:
    messages = conversation.messages(engine.count_tokens, engine.n_ctx - max_tokens)
    engine.warm_up(messages)  # the prompt is evaluated before the clock starts
    pieces: list[str] = []
    first = last = 0.0
    for piece in engine.stream_chat(messages, max_tokens=max_tokens, temperature=0.0):
        last = time.perf_counter()
        if not pieces:
            first = last
        pieces.append(piece)
    stats = engine.speculation if engine.drafter is not None else None
    n = stats.tokens - 1 if stats is not None else len(pieces)  # not the end token
    return {
        "text": "".join(pieces),
        "tokens": n,
        "decode_s": last - first,
        "tokens_per_s": (n - 1) / (last - first) if last > first else None,
        "acceptance": round(stats.acceptance, 3) if stats is not None else None,
        "drafted": stats.drafted if stats is not None else 0,
        "rounds": stats.rounds if stats is not None else n,
    }


def run_speculative_bench(
    settings: Settings, *, draft: str | None = None, progress: bool = True
) -> dict[str, Any]:
    """Blocking: loads the LLM (and the draft model, if it is installed) and runs the set."""
    say = (lambda m: print(f"… {m}", file=sys.stderr, flush=True)) if progress else None
    path = models.resolve("llm", settings.llm_model)
    engine = LlamaEngine(path, n_ctx=settings.n_ctx, threads=settings.threads, seed=0)
    drafters: dict[str, Drafter | None] = {"none": None, "lookup": PromptLookup()}
    draft_name = draft if draft not in (None, "", "lookup", "none") else DRAFT_MODEL
    if draft not in ("lookup", "none"):
        try:
            drafters[f"model:{draft_name}"] = drafter(replace(settings, draft=draft_name), engine)
        except ModelError as e:
            if say is not None:
                say(f"no draft model: {e}")
    prompts: list[tuple[str, tuple[str, ...]]] = [("demo", DEMO_TURNS)]
    prompts += [(f"question {i + 1}", (q,)) for i, q in enumerate(QUESTIONS)]
    rows: list[dict[str, Any]] = []
    for label, turns in prompts:
        conversation = Conversation(settings.system_prompt)
        for k, text in enumerate(turns):
            conversation.add_user(text)
            results: dict[str, dict[str, Any]] = {}
            for name, guesser in drafters.items():
                engine.drafter = guesser
                results[name] = _answer(engine, conversation, settings.max_tokens)
            plain = results["none"]
            row: dict[str, Any] = {
                "prompt": f"{label}, turn {k + 1}" if len(turns) > 1 else label,
                "tokens": plain["tokens"],
                "same_text": all(r["text"] == plain["text"] for r in results.values()),
            }
            for name, r in results.items():
                row[name] = {key: v for key, v in r.items() if key != "text"}
                if name != "none" and r["tokens_per_s"] and plain["tokens_per_s"]:
                    row[name]["vs_none"] = round(r["tokens_per_s"] / plain["tokens_per_s"], 3)
            rows.append(row)
            if say is not None:
                shown = ", ".join(
                    f"{n} {row[n].get('vs_none', 1.0):.2f}x" for n in drafters if n != "none"
                )
                say(f"{row['prompt']}: {plain['tokens']} tokens, {shown}")
            conversation.add_assistant(plain["text"])
    summary: dict[str, Any] = {}
    for name in drafters:
        if name == "none":
            continue
        ratios: list[float] = [r[name]["vs_none"] for r in rows if "vs_none" in r[name]]
        weighted = sum(r["none"]["decode_s"] for r in rows) / max(
            1e-9, sum(r[name]["decode_s"] for r in rows)
        )
        summary[name] = {
            "vs_none_p50": round(statistics.median(ratios), 3) if ratios else None,
            "vs_none_all_tokens": round(weighted, 3),
            "acceptance": round(
                sum(r[name]["acceptance"] * r[name]["drafted"] for r in rows)
                / max(1, sum(r[name]["drafted"] for r in rows)),
                3,
            ),
        }
    return {
        "bench": "speculative",
        "llm": str(path),
        "threads": settings.threads,
        "max_tokens": settings.max_tokens,
        "same_text_everywhere": all(r["same_text"] for r in rows),
        "none_tokens_per_s_p50": statistics.median(
            float(r["none"]["tokens_per_s"]) for r in rows if r["none"]["tokens_per_s"]
        ),
        "summary": summary,
        "target_vs_none": 1.7,
        "rows": rows,
    }
